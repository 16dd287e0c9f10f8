"""Scale mode (``--scale``): how wall time, CPU time and peak RSS grow with size.

Each size in ``--scale-events`` gets its own emulator (Socket only unless ``--only``, with
``--scale-orgs`` organisations); every tap-like program and the baseline read it (one
warm-up pass at the first size, then ``--rounds`` rounds, default 1). The report: one table
per stream and size, then the growth from the smallest size to the largest.
"""

from __future__ import annotations

import argparse
import gc
import random
import resource
import sys
from typing import Any

from harness import BASELINE, Bench
from report import print_notes, ratio_text, table
from stats import compare
from timed_emulator import Stream, TimedEmulator

DEFAULT_SCALE_EVENTS = "200000,1000000"
DEFAULT_SCALE_STREAMS = "socket_audit_log"
DEFAULT_SCALE_ORGS = 100


def scale(args: argparse.Namespace, streams: list[Stream], bench: Bench) -> dict[str, Any]:
    """Scale mode: each size with its own emulator; how time and memory grow."""
    sizes = [int(float(v)) for v in args.scale_events.split(",") if v.strip()]
    rounds = args.rounds or 1
    programs = list(bench.taps)
    rng = random.Random(args.seed)
    summary: dict[str, Any] = {
        "mode": "scale",
        "sizes": sizes,
        "rounds": rounds,
        "programs": programs,
        "streams": {},
    }
    first = True
    for stream in streams:
        entry: dict[str, Any] = {"sizes": {}}
        for size in sizes:
            print(f"scale: generating {size:,} events for {stream.name}", file=sys.stderr)
            gc.collect()
            emu = TimedEmulator([stream], size, seed=args.seed, orgs=args.scale_orgs)
            harness_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(
                f"  generated in {emu.generate_s:.1f} s (harness peak RSS {harness_rss:.0f} MB)",
                file=sys.stderr,
                flush=True,
            )
            entry["orgs"] = emu.orgs[stream.provider]
            variants: list[tuple[str, Stream | None]] = [
                (program, stream) for program in [*programs, BASELINE]
            ]
            with emu:
                bench.rounds(emu, "scale", size, variants, rounds, rng, warmup=first)
            first = False
            sized = compare(bench.runs, programs, stream.name, size)
            sized["generate_s"] = emu.generate_s
            sized["harness_peak_rss_mb"] = harness_rss
            sized["truth"] = len(emu.truth_ids[stream.provider])
            entry["sizes"][size] = sized
            del emu
            gc.collect()
        if len(sizes) >= 2:
            entry["growth"] = growth(
                entry["sizes"][sizes[0]], entry["sizes"][sizes[-1]], sizes, [*programs, BASELINE]
            )
        summary["streams"][stream.name] = entry
    return summary


def growth(low: dict, high: dict, sizes: list[int], programs: list[str]) -> dict[str, Any]:
    """How each figure grew from the smallest size to the largest."""

    def ratio(program: str, key: str) -> float:
        a, b = low["programs"][program][key], high["programs"][program][key]
        a, b = (a["median"], b["median"]) if isinstance(a, dict) else (a, b)
        return b / a if a else float("nan")

    return {
        "from": sizes[0],
        "to": sizes[-1],
        "records": high["programs"][BASELINE]["records"]
        / max(low["programs"][BASELINE]["records"], 1),
        "programs": {
            program: {
                "wall": ratio(program, "wall_s"),
                "net": ratio(program, "net_s"),
                "cpu": ratio(program, "cpu_s"),
                "rss": ratio(program, "peak_rss_mb"),
                "emulator": ratio(program, "emulator_s"),
            }
            for program in programs
        },
    }


def print_scale(summary: dict[str, Any]) -> None:
    """The scale tables."""
    programs = summary["programs"]
    for name, stream in summary["streams"].items():
        print(f"\nScale: {name}, {stream['orgs']} org(s), medians of {summary['rounds']} round(s)")
        rows = []
        for size, entry in stream["sizes"].items():
            for index, program in enumerate([*programs, BASELINE]):
                v = entry["programs"][program]
                ratio = entry["ratios"].get(program, {}).get("net")
                rows.append(
                    [
                        size if index == 0 else "",
                        program,
                        v["records"],
                        v["pages"],
                        v["records_per_s"],
                        v["wall_s"]["median"],
                        v["cpu_s"],
                        v["emulator_s"],
                        v["net_s"],
                        v["net_records_per_s"],
                        v["peak_rss_mb"],
                        ratio_text(ratio) if ratio else "",
                        f"{entry['generate_s']:.1f}" if index == 0 else "",
                    ]
                )
        print(
            table(
                [
                    "events",
                    "program",
                    "records",
                    "pages",
                    "records/s",
                    "wall s",
                    "cpu s",
                    "emu s",
                    "net s",
                    "net rec/s",
                    "peak RSS MB",
                    "net / baseline",
                    "emu gen s",
                ],
                rows,
            )
        )
        grew = stream.get("growth")
        if grew:
            print(
                f"\nGrowth {grew['from']:,} -> {grew['to']:,} events "
                f"(x{grew['records']:.2f} records):"
            )
            grows = [
                [
                    program,
                    f"x{g['wall']:.2f}",
                    f"x{g['net']:.2f}",
                    f"x{g['cpu']:.2f}",
                    f"x{g['rss']:.2f}",
                    f"x{g['emulator']:.2f}",
                ]
                for program, g in grew["programs"].items()
            ]
            print(table(["program", "wall", "net", "cpu", "peak RSS", "emulator s"], grows))
    print_notes()
