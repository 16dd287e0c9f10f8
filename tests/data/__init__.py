"""Copies of the providers' documented enums, for the tests and the emulator.

Each JSON file names where its values are published (``documentation``, ``published_in``):
the vendor's page and the machine-readable file it was copied from. ``values`` is the
current list; ``earlier`` (ConfigCat) holds values that older generations of the same enum
listed, which logged items keep.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

HERE = Path(__file__).resolve().parent


@cache
def documented(name: str, *, earlier: bool = True) -> tuple[str, ...]:
    """The documented values of ``<name>.json``, with the earlier generations' unless not."""
    data = json.loads((HERE / f"{name}.json").read_text())
    values = list(data["values"])
    if earlier:
        values += [value for group in data.get("earlier", ()) for value in group["values"]]
    return tuple(values)
