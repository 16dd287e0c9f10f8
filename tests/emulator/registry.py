"""Provider discovery: every module of this package that defines a module-level `PROVIDER`."""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .provider import Provider


@cache
def available_providers() -> dict[str, type[Provider]]:
    """Provider key -> class, for every provider module in the package."""
    package = __name__.rpartition(".")[0]
    found: dict[str, type[Provider]] = {}
    for info in pkgutil.iter_modules(importlib.import_module(package).__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{package}.{info.name}")
        cls = getattr(module, "PROVIDER", None)
        if cls is not None:
            if cls.name in found:
                raise RuntimeError(f"two provider modules claim the name {cls.name!r}")
            found[cls.name] = cls
    return found
