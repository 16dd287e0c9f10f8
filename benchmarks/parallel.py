"""Parallel mode (``--parallel``): every provider in one config, at each ``--concurrency`` N.

One emulator plays every stream (Socket and ConfigCat with ``--orgs`` organisations), adds
``--latency-ms`` (default 100) to every response and enforces the documented rate limits.
Each round runs every tap-like program at every N once, in a random order (no warm-up);
each run is verified for every stream at once. The report: wall time against the
sequential lower bound (requests x delay) and against concurrency 1, then each provider's
requests and peak request rate against its documented limit.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
from typing import Any

from harness import Bench, Run, is_page, shuffled_rounds
from report import ratio_text, table
from stats import median, per_round, spread, vs_bound
from timed_emulator import Stream, TimedEmulator, emulator_rate_limits

DEFAULT_EVENTS = 2_000
PARALLEL_TARGET = 0.35  # issue #9: parallel backfill within 0.35x the sequential lower bound
DEFAULT_CONCURRENCY = "1,8"
DEFAULT_PARALLEL_ORGS = 4
DEFAULT_PARALLEL_LATENCY_MS = 100.0


def provider_figures(emu: TimedEmulator, provider: str) -> dict[str, Any]:
    """One provider's requests in the last run: by kind, 429s, and the peak request count
    in its documented window (1 s for a provider without a documented limit)."""
    log = emu.emu.requests(provider)
    pages = sum(1 for r in log if is_page(r))
    org_lists = sum(1 for r in log if r.path.rstrip("/").endswith("/organizations"))
    tokens = sum(1 for r in log if "token" in r.path.lower())
    limit = emu.rate_limits.get(provider) or (emulator_rate_limits() or {}).get(provider)
    window_s = float(limit[1]) if limit else 1.0
    return {
        "requests": len(log),
        "pages": pages,
        "org_lists": org_lists,
        "tokens": tokens,
        "other": len(log) - pages - org_lists - tokens,
        "rate_limited": sum(
            1 for r in log if r.status == 429 or getattr(r, "fault", None) == "rate_limit"
        ),
        "limit": list(limit) if limit else None,
        "enforced": provider in emu.rate_limits,
        "window_s": window_s,
        "peak": emu.peak_requests(provider, window_s),
    }


def run_parallel(
    bench: Bench,
    emu: TimedEmulator,
    size: int,
    round_no: int,
    program: str,
    streams: list[Stream],
    concurrency: int,
) -> Run:
    """One measured run of every stream at once, verified per stream."""
    # Without the setting, concurrency 1 is the tap's sequential read: the key is left
    # out. Any other N is passed as is (a tap that rejects it fails the run, loudly).
    passed = concurrency != 1 or bench.accepts(program, "concurrency")
    run, spawned = bench.spawn(
        emu,
        program,
        emu.config_all({"concurrency": concurrency} if passed else {}),
        mode="parallel",
        size=size,
        round_no=round_no,
        concurrency=concurrency,
    )
    if run.exit_code != 0:
        hint = ""
        if passed and not bench.accepts(program, "concurrency"):
            hint = " (it declares no `concurrency` setting: try --concurrency 1)"
        bench.fail(run, f"exit code {run.exit_code}{hint}")
    counts = bench.check(emu, run, streams, named=True)
    run.records = sum(counts.get(s.name, 0) for s in streams)
    stamps = emu.taken()
    for stream in streams:
        figures = provider_figures(emu, stream.provider)
        mine = [at - spawned for name, at in stamps if name == stream.provider]
        figures["first_s"], figures["last_s"] = min(mine, default=0.0), max(mine, default=0.0)
        run.providers[stream.provider] = figures
    run.first_request_s = min((at - spawned for _, at in stamps), default=0.0)
    run.last_request_s = max((at - spawned for _, at in stamps), default=0.0)
    run.requests = sum(f["requests"] for f in run.providers.values())
    run.pages = sum(f["pages"] for f in run.providers.values())
    detail = f", {run.records} records, {run.requests} requests, emulator {run.emulator_s:.2f} s"
    return bench.keep(run, f"concurrency {concurrency:<4}", detail)


def parallel(args: argparse.Namespace, streams: list[Stream], bench: Bench) -> dict[str, Any]:
    """Parallel mode: every stream in one config, at each --concurrency N; the summary."""
    events = args.events or DEFAULT_EVENTS
    rounds = args.rounds or 1
    levels = args.concurrency_levels
    programs = list(bench.taps)
    delay = args.latency_ms / 1000
    limits = emulator_rate_limits()
    names = ", ".join(s.name for s in streams)
    print(
        f"parallel: generating {events:,} events per stream for {names} "
        f"({args.orgs} organisations per multi-organisation provider)",
        file=sys.stderr,
    )
    if limits is None:
        print(
            "note: the emulator has no Scenario.rate_limits: the documented rate limits are "
            "reported, not enforced",
            file=sys.stderr,
        )
    emu = TimedEmulator(
        streams, events, seed=args.seed, latency_s=delay, orgs=args.orgs, rate_limits=limits
    )
    print(f"  generated in {emu.generate_s:.1f} s", file=sys.stderr, flush=True)
    declared = {}
    for program in programs:  # --about --format=json: the settings, and the bytecode compiled
        declared[program] = bench.accepts(program, "concurrency")
        if not declared[program]:
            print(
                f"note: {program} declares no `concurrency` setting: concurrency 1 runs without "
                "it (sequential), any other N passes it anyway",
                file=sys.stderr,
            )
    variants = [(program, n) for program in programs for n in levels]
    rng = random.Random(args.seed)
    orders: list[list[str]] = []
    with emu:
        labels = [f"{p}:{n}" for p, n in variants]
        for number, order in shuffled_rounds(variants, labels, rounds, rng, "parallel", orders):
            for program, n in order:
                run_parallel(bench, emu, events, number, program, streams, n)
    summary: dict[str, Any] = {
        "mode": "parallel",
        "events": events,
        "rounds": rounds,
        "latency_ms": args.latency_ms,
        "orgs": emu.orgs,
        "truth": {s.name: len(emu.truth_ids[s.provider]) for s in streams},
        "concurrency": levels,
        "programs": programs,
        "declares_concurrency": declared,
        "rate_limits": {p: list(limit) for p, limit in emu.rate_limits.items()},
        "rate_limits_enforced": limits is not None,
        "peak_source": "Emulator.peak_requests"
        if hasattr(emu.emu, "peak_requests")
        else "harness timestamps",
        "target": PARALLEL_TARGET,
        "generate_s": emu.generate_s,
        "orders": orders,
        "results": {},
    }
    for program in programs:
        mine = [r for r in bench.runs if r.program == program and r.mode == "parallel"]
        sequential = [r for r in mine if r.concurrency == 1]
        summary["results"][program] = {
            str(n): level_summary(
                [r for r in mine if r.concurrency == n and r.round > 0],
                sequential if n != 1 else [],
                streams,
                delay,
            )
            for n in levels
        }
    return summary


def level_summary(
    runs: list[Run], sequential: list[Run], streams: list[Stream], delay: float
) -> dict[str, Any]:
    """One program at one concurrency: medians over its runs (``sequential``: its
    concurrency-1 runs, for the speed-up; empty at concurrency 1)."""
    bound = vs_bound(runs, delay) if delay else None
    providers = {}
    for stream in streams:
        figures = [r.providers[stream.provider] for r in runs]
        first = figures[0]
        providers[stream.provider] = {
            **{k: first[k] for k in ("limit", "enforced", "window_s")},
            **{
                k: statistics.median_low(f[k] for f in figures)
                for k in ("requests", "pages", "org_lists", "tokens", "other")
            },
            "peak": max(f["peak"] for f in figures),  # the worst round
            "rate_limited": max(f["rate_limited"] for f in figures),
            "first_s": median(f["first_s"] for f in figures),
            "last_s": median(f["last_s"] for f in figures),
        }
    return {
        "runs": len(runs),
        "records": runs[0].records,
        "requests": statistics.median_low(r.requests for r in runs),
        "bound_s": median(r.requests * delay for r in runs),
        "wall_s": spread([r.wall_s for r in runs]),
        "cpu_s": median(r.cpu_s for r in runs),
        "peak_rss_mb": median(r.peak_rss_mb for r in runs),
        "emulator_s": median(r.emulator_s for r in runs),
        "first_request_s": median(r.first_request_s for r in runs),
        "last_request_s": median(r.last_request_s for r in runs),
        "vs_bound": bound,
        "vs_sequential": per_round(runs, sequential, lambda r: r.wall_s) if sequential else None,
        "target_met": bound is not None and bound["median"] <= PARALLEL_TARGET,
        "providers": providers,
    }


def print_parallel(summary: dict[str, Any]) -> None:
    """The parallel tables: time per concurrency, then requests and rates per provider."""
    ms = summary["latency_ms"]
    orgs = ", ".join(f"{p} {n}" for p, n in summary["orgs"].items())
    target = summary["target"]
    print(
        f"\nParallel backfill, {ms:g} ms per response: {summary['events']:,} events per stream "
        f"asked; organisations: {orgs}; medians of {summary['rounds']} round(s)"
    )
    rows = []
    for program, entry in summary["results"].items():
        for n, v in entry.items():
            bound = v["vs_bound"]
            rows.append(
                [
                    program,
                    int(n),
                    v["records"],
                    v["requests"],
                    v["bound_s"],
                    v["wall_s"]["median"],
                    v["first_request_s"],
                    v["last_request_s"],
                    ratio_text(bound),
                    ratio_text(v["vs_sequential"]) if v["vs_sequential"] else "-",
                    v["cpu_s"],
                    v["emulator_s"],
                    v["peak_rss_mb"],
                    ("yes" if v["target_met"] else "no") if bound else "-",
                ]
            )
    headers = ["program", "concurrency", "records", "requests", "bound s", "wall s"]
    headers += ["1st req s", "last req s", "wall / bound", "wall / c1 wall", "cpu s", "emu s"]
    headers += ["peak RSS MB"]
    print(table([*headers, f"<= {target}x bound"], rows))
    enforced = "enforced by the emulator" if summary["rate_limits_enforced"] else "NOT enforced"
    print(
        f"\nRequests per provider; peak = most requests in any window of the documented limit "
        f"(1 s where none is documented; worst round; {summary['peak_source']}); limits "
        f"{enforced}; 429s: answers with status 429"
    )
    rate_rows = []
    for program, entry in summary["results"].items():
        for n, v in entry.items():
            for provider, f in v["providers"].items():
                limit = f["limit"]
                rate_rows.append(
                    [
                        program,
                        int(n),
                        provider,
                        f["requests"],
                        f["pages"],
                        f["org_lists"],
                        f["tokens"],
                        f["other"],
                        f"{f['first_s']:.2f}-{f['last_s']:.2f}",
                        f"{limit[0]}/{limit[1]:g} s" if limit else "-",
                        f"{f['peak']}/{f['window_s']:g} s",
                        "yes" if not limit else ("yes" if f["peak"] <= limit[0] else "NO"),
                        f["rate_limited"],
                    ]
                )
    print(
        table(
            [
                "program",
                "concurrency",
                "provider",
                "requests",
                "pages",
                "org lists",
                "token",
                "other",
                "requests at s",
                "limit",
                "peak",
                "within",
                "429s",
            ],
            rate_rows,
        )
    )
    print(
        "\nbound s = requests x delay: the least a one-request-at-a-time client can take. It"
        "\ncounts every API request of the run: audit-log pages, organisation listings"
        "\n(Socket, ConfigCat), Torq's token call, and any retried or 429'd call. wall / c1"
        "\nwall: median of per-round ratios to the same program's concurrency-1 run. 1st req s,"
        "\nlast req s, requests at s: when the emulator took the first and the last request,"
        "\nin seconds after the spawn (before the first: start-up; the last answer comes one"
        "\ndelay later; after it: the end of the run). emu s:"
        "\ntime during which the emulator was answering at least one request (it answers one"
        "\nat a time). cpu s, peak RSS: the tap process (os.wait4)."
    )
