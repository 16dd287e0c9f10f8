"""Throughput mode (the default) and latency mode (``--latency-ms N``): one loop, two reports.

Each stream at ``--events`` events; every tap-like program and the baseline read it once
per round (after a warm-up pass). Throughput mode also runs each program's start-up alone
(``tap --about``, ``baseline --startup``) and reports time / baseline time; latency mode
has the emulator delay every response and also reports wall time / the sequential lower
bound (requests x delay).
"""

from __future__ import annotations

import argparse
import random
import sys
from typing import Any

from harness import BASELINE, BASELINE_STARTUP, TAP_STARTUP, Bench
from report import print_notes, ratio_text, table
from stats import compare, measured, median, vs_bound
from timed_emulator import Stream, TimedEmulator

DEFAULT_EVENTS = {"throughput": 20_000, "latency": 2_000}
TARGET_RATIO = 1.5  # issue #9: the tap within 1.5x the orjson baseline at zero latency


def throughput_or_latency(
    args: argparse.Namespace, streams: list[Stream], bench: Bench
) -> dict[str, Any]:
    """Default mode (zero latency) or latency mode: the summary."""
    mode = "latency" if args.latency_ms else "throughput"
    events = args.events or DEFAULT_EVENTS[mode]
    rounds = args.rounds or 3
    programs = list(bench.taps)
    names = ", ".join(s.name for s in streams)
    print(f"{mode}: generating {events:,} events per stream for {names}", file=sys.stderr)
    emu = TimedEmulator(streams, events, seed=args.seed, latency_s=args.latency_ms / 1000)
    print(f"  generated in {emu.generate_s:.1f} s", file=sys.stderr, flush=True)
    variants: list[tuple[str, Stream | None]] = [
        (program, stream) for stream in streams for program in [*programs, BASELINE]
    ]
    if mode == "throughput":
        variants += [(TAP_STARTUP, None), (BASELINE_STARTUP, None)]
    with emu:
        orders = bench.rounds(emu, mode, events, variants, rounds, random.Random(args.seed))
    summary: dict[str, Any] = {
        "mode": mode,
        "events": events,
        "rounds": rounds,
        "latency_ms": args.latency_ms,
        "programs": programs,
        "generate_s": emu.generate_s,
        "orders": orders,
        "streams": {},
    }
    runs = bench.runs
    for stream in streams:
        entry = compare(runs, programs, stream.name)
        entry["orgs"] = emu.orgs[stream.provider]
        entry["truth"] = len(emu.truth_ids[stream.provider])
        if mode == "latency":
            delay = args.latency_ms / 1000
            entry["bound_s"], entry["vs_bound"] = {}, {}
            for program in [*programs, BASELINE]:
                mine = measured(runs, program, stream.name)
                entry["bound_s"][program] = mine[0].requests * delay if mine else float("nan")
                entry["vs_bound"][program] = vs_bound(mine, delay)
        summary["streams"][stream.name] = entry
    summary["startup"] = {
        program: {
            "wall_s": median(r.wall_s for r in mine),
            "cpu_s": median(r.cpu_s for r in mine),
            "peak_rss_mb": median(r.peak_rss_mb for r in mine),
        }
        for program in (TAP_STARTUP, BASELINE_STARTUP)
        if (mine := measured(runs, program, None))
    }
    return summary


PROGRAM_HEADERS = [
    "stream",
    "program",
    "records",
    "pages",
    "requests",
    "records/s",
    "wall s",
    "cpu s",
    "emu s",
    "net s",
    "peak RSS MB",
]


def program_table(summary: dict[str, Any]) -> str:
    """One row per stream and program (every tap-like program, then the baseline)."""
    rows = []
    for name, entry in summary["streams"].items():
        for index, program in enumerate([*summary["programs"], BASELINE]):
            s = entry["programs"][program]
            rows.append(
                [
                    name if index == 0 else "",
                    program,
                    s["records"],
                    s["pages"],
                    s["requests"],
                    s["records_per_s"],
                    s["wall_s"]["median"],
                    s["cpu_s"],
                    s["emulator_s"],
                    s["net_s"],
                    s["peak_rss_mb"],
                ]
            )
    return table(PROGRAM_HEADERS, rows)


def print_throughput(summary: dict[str, Any]) -> None:
    """The throughput tables."""
    programs = summary["programs"]
    print(
        f"\nThroughput at zero latency: {summary['events']:,} events per stream asked, "
        f"medians of {summary['rounds']} rounds"
    )
    print(program_table(summary))
    print(
        "\nTime / baseline time: median of per-round ratios (min-max). "
        f"Target (issue #9): <= {TARGET_RATIO}x"
    )
    ratio_rows = []
    for name, entry in summary["streams"].items():
        for index, program in enumerate(programs):
            r = entry["ratios"][program]
            ratio_rows.append(
                [
                    name if index == 0 else "",
                    program,
                    ratio_text(r["wall"]),
                    ratio_text(r["net"]),
                    ratio_text(r["cpu"]),
                    ratio_text(r.get("per_record")),
                    "yes" if r["net"]["median"] <= TARGET_RATIO else "no",
                ]
            )
    print(
        table(
            ["stream", "program", "wall", "net", "cpu", "cpu excl. start-up", "net <= target"],
            ratio_rows,
        )
    )
    startup = summary.get("startup") or {}
    for program, s in startup.items():
        print(
            f"{program}: {s['wall_s']:.2f} s wall, {s['cpu_s']:.2f} s cpu, "
            f"{s['peak_rss_mb']:.0f} MB peak RSS (fixed start-up cost)"
        )
    print_notes()


def print_latency(summary: dict[str, Any]) -> None:
    """The latency tables."""
    ms = summary["latency_ms"]
    programs = summary["programs"]
    print(
        f"\nLatency {ms:g} ms per response: {summary['events']:,} events per stream asked, "
        f"medians of {summary['rounds']} rounds"
    )
    print(program_table(summary))
    print("\nWall time / sequential lower bound (requests x delay): median of runs (min-max)")
    out = []
    for name, entry in summary["streams"].items():
        for index, program in enumerate([*programs, BASELINE]):
            ratio = entry["vs_bound"][program]
            out.append(
                [
                    name if index == 0 else "",
                    program,
                    entry["programs"][program]["requests"],
                    entry["bound_s"][program],
                    entry["programs"][program]["wall_s"]["median"],
                    ratio_text(ratio),
                    ratio_text(entry["ratios"][program]["wall"]) if program != BASELINE else "",
                ]
            )
    print(
        table(
            [
                "stream",
                "program",
                "requests",
                "bound s",
                "wall s",
                "wall / bound",
                "wall / baseline",
            ],
            out,
        )
    )
    print_notes()
