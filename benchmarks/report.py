"""Reporting shared by the modes: fixed-width tables, ratio cells, the machine and versions
the figures come from, and the results files (JSON, plus the PNG from ``chart.py``).

Each mode prints its own tables (``throughput.py``, ``scale.py``, ``parallel.py``) with
``table`` and ``ratio_text``.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import shutil
from importlib import metadata
from pathlib import Path
from typing import Any

import orjson
from chart import draw_chart
from harness import ROOT


def table(headers: list[str], rows: list[list[Any]]) -> str:
    """A plain fixed-width table (first column left-aligned)."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]

    def line(values: list[str]) -> str:
        return "  ".join(
            v.rjust(w) if i else v.ljust(w)
            for i, (v, w) in enumerate(zip(values, widths, strict=True))
        ).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(r) for r in cells)])


def _cell(value: Any) -> str:
    if isinstance(value, float):
        if value != value:
            return "-"
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def ratio_text(ratio: dict[str, Any] | None) -> str:
    """``1.23x (1.10-1.40)``; a single round: ``1.23x``."""
    if not ratio or ratio["median"] != ratio["median"]:
        return "-"
    if len(ratio["values"]) < 2:
        return f"{ratio['median']:.2f}x"
    return f"{ratio['median']:.2f}x ({ratio['min']:.2f}-{ratio['max']:.2f})"


def print_notes() -> None:
    """What ``emu s``, ``net s`` and ``cpu s`` mean (throughput, latency and scale tables)."""
    print(
        "\nemu s: time the in-process emulator spent answering this run's requests (it filters"
        "\nand sorts an organisation's events once per distinct query, then serves each page"
        "\nas a slice); net s = wall s - emu s, the client's own share. cpu s: user+system time of"
        "\nthe measured process (os.wait4). Ratios are medians of per-round ratios."
    )


def environment(bench_taps: dict[str, list[str]], child_env: dict[str, str]) -> dict[str, Any]:
    """What machine and versions the figures come from."""

    def version(name: str) -> str | None:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return None

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "loadavg_start": os.getloadavg(),
        "singer_sdk": version("singer-sdk"),
        "tap_auditlogs": version("tap-auditlogs"),
        "orjson": version("orjson"),
        "requests": version("requests"),
        "commands": bench_taps,
        # What the measured programs saw. PYTHONUNBUFFERED makes sys.stdout.buffer
        # unbuffered: a writer relying on it for buffering then writes once per message.
        "env": {
            k: child_env.get(k)
            for k in ("PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX")
        },
        "numpy_installed": importlib.util.find_spec("numpy") is not None,
    }


def write_results(result: dict[str, Any], out_dir: Path, chart: bool) -> None:
    """``<timestamp>-<mode>.json`` and ``latest.json`` (and PNGs when matplotlib is there)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = result["started"].replace(":", "").replace("-", "")[:15]
    path = out_dir / f"{stamp}-{result['summary']['mode']}.json"
    path.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS))
    shutil.copyfile(path, out_dir / "latest.json")
    print(f"\nresults: {_shown(path)} (and latest.json)")
    if chart:
        png = draw_chart(result["summary"], path.with_suffix(".png"))
        if png is not None:
            shutil.copyfile(png, out_dir / "latest.png")
            print(f"chart:   {_shown(png)} (and latest.png)")
        else:
            print(f"         (later, with matplotlib: python benchmarks/chart.py {_shown(path)})")


def _shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)
