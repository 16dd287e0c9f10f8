"""Benchmark the tap against the emulator, and against a plain orjson script in the same run.

One command (see benchmarks/README.md)::

    python benchmarks/run.py [--rounds N] [--events N] [--latency-ms N] [--scale] [--only s,...]
    python benchmarks/run.py --parallel [--concurrency 1,8] [--orgs N] [--latency-ms N]

Four modes:

* throughput (default): every stream at zero latency; the tap's time as a ratio to
  ``benchmarks/baseline.py`` (median of per-round ratios);
* latency (``--latency-ms N``): the emulator delays every response by N ms; the wall time
  as a ratio to the sequential lower bound (requests x delay);
* scale (``--scale``): a few sizes (``--scale-events``, default 200k and 1M events, Socket
  only unless ``--only``); how wall time, CPU time and peak RSS grow with size;
* parallel (``--parallel``): every provider in one config, several organisations, 100 ms
  per response; the tap at each ``--concurrency`` N: wall time against the sequential lower
  bound (requests x delay) and against concurrency 1, and each provider's peak request rate
  against its documented limit (enforced by the emulator).

Every run is the real command in a subprocess (``tap-auditlogs --config c.json > sink``,
``baseline.py --config c.json > sink``), timed with ``perf_counter``; CPU time and peak RSS
come from ``os.wait4``. Each round runs every variant once in a new random order, after one
warm-up pass. Every run's sink is checked: exactly the emulator's events, by count and by
id, per stream (a mismatch stops the benchmark with exit 1).

The emulator is a Python server inside this process. Its handlers filter and sort an
organisation's whole event list for every page, so its own time grows with the data; it is
measured per run (``emu s``: time spent answering) and ``net`` figures subtract it. Results
go to ``benchmarks/results/<timestamp>-<mode>.json`` and ``latest.json``, plus a PNG chart
(``chart.py``) when matplotlib is installed.

This file is the command line; the rest lives beside it (benchmarks/README.md, "Files"):
``timed_emulator.py`` (streams, timed emulator), ``harness.py`` (spawn, measure, verify),
``stats.py`` (medians, ratios), ``throughput.py`` (throughput and latency modes),
``scale.py``, ``parallel.py``, ``report.py`` (tables, results files).
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
for entry in (str(ROOT), str(HERE)):
    if entry not in sys.path:
        sys.path.insert(0, entry)

from harness import RESERVED, Bench, Spawner  # noqa: E402
from parallel import (  # noqa: E402
    DEFAULT_CONCURRENCY,
    DEFAULT_PARALLEL_LATENCY_MS,
    DEFAULT_PARALLEL_ORGS,
    parallel,
    print_parallel,
)
from report import environment, write_results  # noqa: E402
from scale import (  # noqa: E402
    DEFAULT_SCALE_EVENTS,
    DEFAULT_SCALE_ORGS,
    DEFAULT_SCALE_STREAMS,
    print_scale,
    scale,
)
from throughput import print_latency, print_throughput, throughput_or_latency  # noqa: E402
from timed_emulator import select_streams  # noqa: E402

RESULTS = HERE / "results"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python benchmarks/run.py",
        description="Benchmark tap-auditlogs against the emulator and a plain orjson baseline.",
    )
    add = parser.add_argument
    add(
        "--rounds",
        type=int,
        default=None,
        help="measured rounds after the warm-up (default 3; scale mode 1)",
    )
    add(
        "--events",
        type=int,
        default=None,
        help="events per stream (default 20000; latency and parallel modes 2000)",
    )
    add(
        "--latency-ms",
        type=float,
        default=None,
        help="latency mode: the emulator delays every response by this much "
        f"(parallel mode: default {DEFAULT_PARALLEL_LATENCY_MS:g})",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--scale",
        action="store_true",
        help="scale mode: the --scale-events sizes, Socket unless --only",
    )
    mode.add_argument(
        "--parallel",
        action="store_true",
        help="parallel mode: every stream in one config, several organisations, the tap at "
        "each --concurrency",
    )
    add(
        "--concurrency",
        default=DEFAULT_CONCURRENCY,
        help="parallel mode: the tap's `concurrency` settings to run, comma-separated "
        f"(default {DEFAULT_CONCURRENCY}; 1 is the sequential reference)",
    )
    add(
        "--orgs",
        type=int,
        default=DEFAULT_PARALLEL_ORGS,
        help="parallel mode: organisations of each multi-organisation provider (Socket, "
        f"ConfigCat; default {DEFAULT_PARALLEL_ORGS})",
    )
    add(
        "--only",
        default=None,
        help="stream names or provider keys, comma-separated (default: every stream; "
        f"scale mode: {DEFAULT_SCALE_STREAMS})",
    )
    add(
        "--scale-events",
        default=DEFAULT_SCALE_EVENTS,
        help=f"scale mode: sizes, comma-separated (default {DEFAULT_SCALE_EVENTS})",
    )
    add(
        "--scale-orgs",
        type=int,
        default=DEFAULT_SCALE_ORGS,
        help="scale mode: organisations of multi-organisation providers (default "
        f"{DEFAULT_SCALE_ORGS}; 0 keeps the emulator's); bounds the emulator's per-page "
        "cost, which grows with the events of one organisation",
    )
    add(
        "--variant",
        action="append",
        default=[],
        metavar="NAME=COMMAND",
        help="also run COMMAND --config <file> as a tap-like program named NAME "
        "(repeatable), e.g. a patched tap: checked and compared like the tap",
    )
    add("--seed", type=int, default=1, help="emulator data and round orders (default 1)")
    add("--out", type=Path, default=RESULTS, help="results directory (default benchmarks/results)")
    add("--no-chart", action="store_true", help="do not draw the PNG")
    args = parser.parse_args(argv)
    if args.rounds is not None and args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if args.scale and args.latency_ms is not None:
        parser.error("argument --latency-ms: not allowed with argument --scale")
    if args.latency_ms is None:
        args.latency_ms = DEFAULT_PARALLEL_LATENCY_MS if args.parallel else 0.0
    if args.latency_ms < 0:
        parser.error("--latency-ms must not be negative")
    try:
        levels = [int(v) for v in args.concurrency.split(",") if v.strip()]
    except ValueError:
        parser.error(f"--concurrency {args.concurrency!r}: expected integers, e.g. 1,8")
    if not levels or min(levels) < 1:
        parser.error("--concurrency: at least one value, each at least 1")
    args.concurrency_levels = list(dict.fromkeys(levels))
    if args.orgs < 1:
        parser.error("--orgs must be at least 1")
    variants = {}
    for item in args.variant:
        name, sep, command = item.partition("=")
        if not sep or not name.strip() or not command.strip():
            parser.error(f"--variant {item!r}: expected NAME=COMMAND")
        if name.strip() in RESERVED:
            parser.error(f"--variant: {name!r} is reserved")
        variants[name.strip()] = shlex.split(command)
    args.variants = variants
    return args


def main(argv: list[str] | None = None) -> int:
    """Run one mode, print its tables, write the results."""
    args = parse_args(argv)
    started = datetime.now(timezone.utc)
    streams = select_streams(args.only or (DEFAULT_SCALE_STREAMS if args.scale else None))
    with tempfile.TemporaryDirectory(prefix="tap-auditlogs-bench-") as tmp:
        spawner = Spawner(Path(tmp, "pycache"))  # before the emulator's data exists
        try:
            bench = Bench(Path(tmp), spawner, args.variants)
            env = environment(bench.taps, spawner.env)
            # Throughput and scale modes measure reading, not waiting: a tap that limits its
            # own request rate (Socket: 600/min by default) gets the limit lifted.
            bench.unthrottled = args.scale or not (args.latency_ms or args.parallel)
            if args.scale:
                summary = scale(args, streams, bench)
            elif args.parallel:
                summary = parallel(args, streams, bench)
            else:
                summary = throughput_or_latency(args, streams, bench)
            lifted = {
                program: [s.provider for s in streams if bench.block_extra(program, s.provider)]
                for program in bench.taps
                if bench.unthrottled
            }
        finally:
            spawner.close()
    env["loadavg_end"] = os.getloadavg()
    result = {
        "started": started.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "elapsed_s": (datetime.now(timezone.utc) - started).total_seconds(),
        "command": ["benchmarks/run.py", *(sys.argv[1:] if argv is None else argv)],
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "environment": env,
        "summary": summary,
        # Providers whose `max_requests_per_second` was lifted, per tap-like program.
        "rate_limit_lifted": lifted,
        "runs": [{**asdict(r), "net_s": r.net_s} for r in bench.runs],
    }
    printers = {
        "throughput": print_throughput,
        "latency": print_latency,
        "scale": print_scale,
        "parallel": print_parallel,
    }
    printers[summary["mode"]](summary)
    write_results(result, args.out, chart=not args.no_chart)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
