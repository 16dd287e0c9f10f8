"""Chaos runs over many seeds, as a table: ``CHAOS_SEEDS=50 make chaos``.

    python scripts/chaos.py [--seeds N] [--first SEED] [--events N] [--json FILE]

Each seed is what ``tests/test_chaos.py`` runs in CI: all four providers on one emulator
with every fault at once, arrivals during the sync, late events between runs, Torq tokens
that die early, and the real tap killed with SIGKILL at random points and resumed from its
last STATE until a run finishes. Per seed and stream it prints the events at or after
start_date (truth), how many were never emitted (missing: must be 0), emitted records that
are not in the truth (unexp: must be 0), records and duplicates emitted over all runs, the
calls the emulator logged (requests), how many of those it faulted (retried), Torq's 302s
for dead tokens, token requests, runs, kills and late events. Exit 1 if anything was lost.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.test_chaos import (  # noqa: E402
    HEADER,
    SeedResult,
    chaos_json,
    run_seed,
    summarize,
    table_rows,
)


def main() -> int:
    """Run the seeds; 0 when no event was lost and nothing went wrong."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=int(os.environ.get("CHAOS_SEEDS", "20")))
    parser.add_argument("--first", type=int, default=int(os.environ.get("CHAOS_FIRST", "1")))
    parser.add_argument("--events", type=int, default=None, help="events per org (default: random)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # the in-process settling run's retry warnings

    started = time.monotonic()
    results: list[SeedResult] = []
    print(HEADER, flush=True)
    for seed in range(args.first, args.first + args.seeds):
        result = run_seed(seed, events=args.events)
        results.append(result)
        print("\n".join(table_rows(result)), flush=True)
        for problem in result.problems:
            print(f"     PROBLEM seed {seed}: {problem}", flush=True)
    print("-" * len(HEADER))
    print("\n".join(summarize(results)))
    runs = sum(r.runs for r in results)
    kills = sum(r.kills for r in results)
    late = sum(r.late for r in results)
    missing = sum(r.missing for r in results)
    bad = [r.seed for r in results if r.problems]
    print(
        f"{len(results)} seeds, {runs} runs, {kills} kills, {late} late events, "
        f"{missing} missing, seeds with problems: {bad or 'none'}, "
        f"{time.monotonic() - started:.0f} s"
    )
    if args.json:
        args.json.write_text(json.dumps([chaos_json(r) for r in results], indent=1))
    return 1 if missing or bad else 0


if __name__ == "__main__":
    sys.exit(main())
