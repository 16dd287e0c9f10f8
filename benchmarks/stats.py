"""Figures from runs: medians, spreads, and per-round ratios against the baseline.

Every figure is a median over the measured rounds (the warm-up, round 0, is left out);
every ratio is the median of per-round ratios, both runs from the same round, so slow
drifts of the machine cancel.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable
from typing import Any

from harness import BASELINE, BASELINE_STARTUP, TAP_STARTUP, Run


def median(values: Iterable[float]) -> float:
    """Median of what there is (nan when nothing)."""
    values = list(values)
    return statistics.median(values) if values else float("nan")


def spread(values: list[float]) -> dict[str, Any]:
    """Median, min, max and the values."""
    return {
        "median": median(values),
        "min": min(values, default=float("nan")),
        "max": max(values, default=float("nan")),
        "values": values,
    }


def measured(
    runs: list[Run], program: str, stream: str | None, size: int | None = None
) -> list[Run]:
    """The measured (non-warm-up) runs of one program on one stream."""
    return [
        r
        for r in runs
        if r.round > 0
        and r.program == program
        and r.stream == stream
        and (size is None or r.size == size)
    ]


def program_summary(runs: list[Run]) -> dict[str, Any]:
    """Medians of one program's runs on one stream."""
    wall = median(r.wall_s for r in runs)
    net = median(r.net_s for r in runs)
    records = runs[0].records if runs else 0
    return {
        "runs": len(runs),
        "records": records,
        "pages": runs[0].pages if runs else 0,
        "requests": runs[0].requests if runs else 0,
        "states": runs[0].states if runs else 0,
        "wall_s": spread([r.wall_s for r in runs]),
        "cpu_s": median(r.cpu_s for r in runs),
        "peak_rss_mb": median(r.peak_rss_mb for r in runs),
        "emulator_s": median(r.emulator_s for r in runs),
        "net_s": net,
        "records_per_s": records / wall if wall > 0 else float("nan"),
        "net_records_per_s": records / net if net > 0 else float("nan"),
    }


def per_round(
    num: list[Run],
    den: list[Run],
    value: Callable[[Run], float],
    den_value: Callable[[Run], float] | None = None,
) -> dict[str, Any]:
    """Median (min, max) over rounds of value(num) / value(den) (``den_value(den)`` when
    given), both from the same round."""
    by_round = {r.round: r for r in den}
    of_den = den_value or value
    return spread([value(r) / of_den(by_round[r.round]) for r in num if r.round in by_round])


def vs_bound(runs: list[Run], delay: float) -> dict[str, Any]:
    """Wall time / the sequential lower bound (requests x delay), over ``runs``."""
    return spread([r.wall_s / (r.requests * delay) for r in runs])


def compare(
    runs: list[Run], programs: list[str], stream: str, size: int | None = None
) -> dict[str, Any]:
    """Every tap-like program against the baseline on one stream, per round."""
    base = measured(runs, BASELINE, stream, size)
    out: dict[str, Any] = {"programs": {BASELINE: program_summary(base)}, "ratios": {}}
    startup = {
        p: median(r.cpu_s for r in measured(runs, p, None, size))
        for p in (TAP_STARTUP, BASELINE_STARTUP)
    }
    for program in programs:
        mine = measured(runs, program, stream, size)
        out["programs"][program] = program_summary(mine)
        ratios = {
            "wall": per_round(mine, base, lambda r: r.wall_s),
            "net": per_round(mine, base, lambda r: r.net_s),
            "cpu": per_round(mine, base, lambda r: r.cpu_s),
        }
        if startup[TAP_STARTUP] == startup[TAP_STARTUP]:  # measured (not nan)
            # The per-record share: CPU time less each program's median start-up CPU time.
            ratios["per_record"] = per_round(
                mine,
                base,
                lambda r: max(r.cpu_s - startup[TAP_STARTUP], 1e-9),
                lambda r: max(r.cpu_s - startup[BASELINE_STARTUP], 1e-9),
            )
        out["ratios"][program] = ratios
    return out
