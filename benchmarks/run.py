"""Benchmark the tap against the emulator, and against a plain orjson script in the same run.

One command (see benchmarks/README.md)::

    python benchmarks/run.py [--rounds N] [--events N] [--latency-ms N] [--scale] [--only s,...]

Three modes:

* throughput (default): every stream at zero latency; the tap's time as a ratio to
  ``benchmarks/baseline.py`` (median of per-round ratios);
* latency (``--latency-ms N``): the emulator delays every response by N ms; the wall time
  as a ratio to the sequential lower bound (requests x delay);
* scale (``--scale``): a few sizes (``--scale-events``, default 200k and 1M events, Socket
  only unless ``--only``); how wall time, CPU time and peak RSS grow with size.

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
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import os
import platform
import random
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
for entry in (str(ROOT), str(HERE)):
    if entry not in sys.path:
        sys.path.insert(0, entry)

import baseline  # noqa: E402
import orjson  # noqa: E402
from chart import draw_chart  # noqa: E402

from tap_auditlogs.providers import all_providers  # noqa: E402
from tests.emulator import Emulator, Scenario  # noqa: E402
from tests.emulator.registry import available_providers  # noqa: E402

RESULTS = HERE / "results"
TARGET_RATIO = 1.5  # issue #9: the tap within 1.5x the orjson baseline at zero latency
DEFAULT_EVENTS = {"throughput": 20_000, "latency": 2_000}
DEFAULT_SCALE_EVENTS = "200000,1000000"
DEFAULT_SCALE_STREAMS = "socket_audit_log"
DEFAULT_SCALE_ORGS = 100
TAP = "tap"
BASELINE = "baseline"
TAP_STARTUP = "tap --about"  # imports and CLI only: the tap's fixed cost
BASELINE_STARTUP = "baseline --startup"  # the baseline with no provider: its fixed cost


# ----------------------------------------------------------------------------- setup


@dataclass(frozen=True)
class Stream:
    """One provider the emulator plays and the tap reads."""

    provider: str  # provider key: settings block and emulator prefix
    name: str  # the tap's stream name
    id_field: str  # the record field that holds the provider's event id


def tap_command() -> list[str]:
    """``tap-auditlogs`` from this interpreter's environment (else ``python -m``)."""
    for candidate in (
        Path(sys.executable).parent / "tap-auditlogs",
        ROOT / ".venv/bin/tap-auditlogs",
    ):
        if candidate.exists():
            return [str(candidate)]
    found = shutil.which("tap-auditlogs")
    return [found] if found else [sys.executable, "-m", "tap_auditlogs"]


def select_streams(only: str | None) -> list[Stream]:
    """The providers both the emulator and the tap know, narrowed by ``--only``."""
    tap = {p.key: p.stream_class for p in all_providers()}
    played = list(available_providers())
    streams = []
    for key in played:
        if key not in tap:
            print(
                f"note: the emulator plays {key!r}, which the tap does not read; skipped",
                file=sys.stderr,
            )
            continue
        cls = tap[key]
        streams.append(Stream(key, cls.name, str(cls.primary_keys[-1])))
    if only:
        wanted = [w.strip() for w in only.split(",") if w.strip()]
        known = {s.name: s for s in streams} | {s.provider: s for s in streams}
        unknown = [w for w in wanted if w not in known]
        if unknown:
            raise SystemExit(f"--only: unknown stream(s) {unknown}; known: {sorted(known)}")
        streams = list({known[w].name: known[w] for w in wanted}.values())
    for stream in streams:
        if stream.provider not in baseline.PAGERS:
            raise SystemExit(
                f"benchmarks/baseline.py has no pager for {stream.provider!r}: add one to "
                "baseline.PAGERS (every provider the emulator plays needs a baseline)"
            )
        if baseline.STREAMS[stream.provider][0] != stream.name:
            raise SystemExit(
                f"baseline.STREAMS names {stream.provider!r} "
                f"{baseline.STREAMS[stream.provider][0]!r}, the tap {stream.name!r}"
            )
    if not streams:
        raise SystemExit("no stream to benchmark")
    return streams


class TimedEmulator:
    """An emulator whose time spent answering requests is measured (not changed)."""

    def __init__(
        self,
        streams: Sequence[Stream],
        events: int,
        *,
        seed: int,
        latency_s: float = 0.0,
        orgs: int | None = None,
    ) -> None:
        registry = available_providers()
        options: dict[str, Any] = {}
        for stream in streams:
            default_orgs = tuple(registry[stream.provider].switches["orgs"].default)
            if orgs and len(default_orgs) > 1:  # single-workspace providers keep their one org
                default_orgs = tuple(f"{stream.provider}-org-{i:03d}" for i in range(orgs))
                options[f"{stream.provider}_orgs"] = default_orgs
            options[f"{stream.provider}_events_per_org"] = max(1, events // len(default_orgs))
        scenario = Scenario(
            seed=seed, providers=[s.provider for s in streams], latency_s=latency_s, **options
        )
        started = time.perf_counter()
        self.emu = Emulator(scenario)
        self.generate_s = time.perf_counter() - started
        self.orgs = {s.provider: len(self.emu.provider(s.provider).orgs) for s in streams}
        self.truth_ids = {s.provider: {ev.id for ev in self.emu.truth(s.provider)} for s in streams}
        self.busy_s = 0.0
        self.busy_cpu_s = 0.0
        self._lock = threading.Lock()
        dispatch = self.emu._dispatch

        def timed(*args: Any, **kwargs: Any) -> Any:
            wall, cpu = time.perf_counter(), time.thread_time()
            try:
                return dispatch(*args, **kwargs)
            finally:
                with self._lock:
                    self.busy_s += time.perf_counter() - wall
                    self.busy_cpu_s += time.thread_time() - cpu

        self.emu._dispatch = timed  # type: ignore[method-assign]

    def __enter__(self) -> TimedEmulator:
        self.emu.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.emu.stop()

    def reset(self) -> None:
        """Forget the request log and the busy time before a run."""
        self.emu.reset_requests()
        with self._lock:
            self.busy_s = self.busy_cpu_s = 0.0

    def busy(self) -> tuple[float, float]:
        """Seconds spent answering since the last reset: wall and CPU."""
        with self._lock:
            return self.busy_s, self.busy_cpu_s

    def config(self, stream: Stream) -> dict:
        """The tap config of one stream: its provider block and a start before every event."""
        scenario = self.emu.scenario
        start = scenario.now - timedelta(days=float(scenario.span_days) + 1)
        return {
            stream.provider: self.emu.tap_config()[stream.provider],
            "start_date": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }


# ------------------------------------------------------------------------------ runs


@dataclass
class Run:
    """One measured run of one variant."""

    mode: str
    size: int  # events per stream asked for
    round: int  # 0: warm-up
    program: str  # tap, a --variant, baseline, or one of the startup references
    stream: str | None
    wall_s: float
    cpu_s: float
    user_s: float
    sys_s: float
    peak_rss_mb: float
    exit_code: int
    records: int = 0
    pages: int = 0
    requests: int = 0
    states: int = 0
    emulator_s: float = 0.0  # time the emulator spent answering this run's requests
    emulator_cpu_s: float = 0.0
    latency_s: float = 0.0

    @property
    def net_s(self) -> float:
        """Wall time minus the emulator's answering time: the client's own share."""
        return self.wall_s - self.emulator_s


class Spawner:
    """Runs commands through ``_spawn.py``, a small process, so peak RSS is the command's own."""

    def __init__(self, pycache: Path) -> None:
        # Bytecode is cached (in the work directory, not the source tree) as on a user's
        # machine: the warm-up pass compiles, the measured runs load the cache. A
        # PYTHONDONTWRITEBYTECODE in this environment would make every run compile afresh.
        self.env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        self.env["PYTHONPYCACHEPREFIX"] = str(pycache)
        self.process = subprocess.Popen(
            [sys.executable, "-I", "-S", str(HERE / "_spawn.py")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=ROOT,
            env=self.env,
            text=True,
        )

    def run(self, command: list[str], sink: Path, errors: Path) -> dict[str, Any]:
        """Run ``command > sink 2> errors``: wall_s, status, user_s, sys_s, maxrss_kb."""
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        job = {"argv": command, "stdout": str(sink), "stderr": str(errors)}
        self.process.stdin.write(json.dumps(job) + "\n")
        self.process.stdin.flush()
        answer = self.process.stdout.readline()
        if not answer:
            raise SystemExit("benchmarks/_spawn.py stopped unexpectedly")
        return dict(json.loads(answer))

    def close(self) -> None:
        """Let the spawner end (stdin closed) and reap it."""
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(timeout=10)


def count_sink(sink: Path, id_field: str) -> tuple[dict[str, int], dict[str, set[str]], int]:
    """RECORD lines per stream, the ids emitted per stream, and the STATE line count."""
    counts: dict[str, int] = {}
    ids: dict[str, set[str]] = {}
    states = 0
    with sink.open("rb") as handle:
        for line in handle:
            if b'"RECORD"' not in line:
                states += b'"STATE"' in line
                continue
            message = orjson.loads(line)
            if message.get("type") != "RECORD":
                states += message.get("type") == "STATE"
                continue
            name = message["stream"]
            counts[name] = counts.get(name, 0) + 1
            ids.setdefault(name, set()).add(str(message["record"].get(id_field)))
    return counts, ids, states


class Bench:
    """Runs programs against one emulator, verifies their output, and keeps the results."""

    def __init__(
        self,
        workdir: Path,
        spawner: Spawner,
        variants: dict[str, list[str]],
        *,
        verbose: bool = True,
    ) -> None:
        self.workdir = workdir
        self.spawner = spawner
        self.verbose = verbose
        self.runs: list[Run] = []
        #: tap-like programs: the tap itself, then each --variant (all get ``--config path``)
        self.taps: dict[str, list[str]] = {TAP: tap_command(), **variants}

    def command(self, program: str, config: Path) -> list[str]:
        """The command line of a program."""
        if program == TAP_STARTUP:
            return [*self.taps[TAP], "--about"]
        if program in (BASELINE, BASELINE_STARTUP):
            return [sys.executable, str(HERE / "baseline.py"), "--config", str(config)]
        return [*self.taps[program], "--config", str(config)]

    def run(
        self,
        emu: TimedEmulator,
        mode: str,
        size: int,
        round_no: int,
        program: str,
        stream: Stream | None,
    ) -> Run:
        """One measured, verified run."""
        config = self.workdir / "config.json"
        sink = self.workdir / "sink.jsonl"
        errors = self.workdir / "stderr.txt"
        config.write_bytes(orjson.dumps(emu.config(stream) if stream else {}))
        emu.reset()
        used = self.spawner.run(self.command(program, config), sink, errors)
        run = Run(
            mode=mode,
            size=size,
            round=round_no,
            program=program,
            stream=stream.name if stream else None,
            wall_s=used["wall_s"],
            cpu_s=used["user_s"] + used["sys_s"],
            user_s=used["user_s"],
            sys_s=used["sys_s"],
            peak_rss_mb=used["maxrss_kb"] / 1024,
            exit_code=int(used["status"]),
        )
        if run.exit_code != 0:
            self.fail(run, f"exit code {run.exit_code}", errors)
        if stream is not None:
            self.verify(emu, stream, run, sink, errors)
        sink.unlink(missing_ok=True)
        self.runs.append(run)
        if self.verbose:
            label = "warm-up" if round_no == 0 else f"round {round_no}"
            extra = f", {run.records} records, emulator {run.emulator_s:.2f} s" if stream else ""
            print(
                f"  [{label}] {program:<18} {run.stream or '':<20} {run.wall_s:7.2f} s{extra}",
                file=sys.stderr,
                flush=True,
            )
        return run

    def verify(
        self, emu: TimedEmulator, stream: Stream, run: Run, sink: Path, errors: Path
    ) -> None:
        """Exactly the emulator's events of this stream, nothing else; fill in the counts."""
        run.emulator_s, run.emulator_cpu_s = emu.busy()
        log = emu.emu.requests(stream.provider)
        run.requests = len(log)
        run.pages = sum(1 for r in log if "audit" in r.path.lower() and r.status == 200)
        run.latency_s = float(emu.emu.scenario.latency_s)
        counts, ids, run.states = count_sink(sink, stream.id_field)
        truth = emu.truth_ids[stream.provider]
        run.records = counts.get(stream.name, 0)
        others = {name: n for name, n in counts.items() if name != stream.name}
        problems = []
        if others:
            problems.append(f"records of other streams {others}")
        if run.records != len(truth):
            problems.append(f"{run.records} RECORD lines, the emulator holds {len(truth)} events")
        emitted = ids.get(stream.name, set())
        if emitted != truth:
            missing, extra = len(truth - emitted), len(emitted - truth)
            problems.append(f"ids differ from the truth: {missing} missing, {extra} unknown")
        if problems:
            self.fail(run, "; ".join(problems), errors)

    def fail(self, run: Run, why: str, errors: Path) -> None:
        """Stop the benchmark loudly, with the end of the program's stderr."""
        tail = errors.read_text(errors="replace").strip().splitlines()[-15:]
        print(
            f"\nFAILED: {run.program} {run.stream or ''} (round {run.round}): {why}",
            file=sys.stderr,
        )
        print("  stderr (last lines):\n    " + "\n    ".join(tail), file=sys.stderr)
        raise SystemExit(1)

    def rounds(
        self,
        emu: TimedEmulator,
        mode: str,
        size: int,
        variants: list[tuple[str, Stream | None]],
        rounds: int,
        rng: random.Random,
        *,
        warmup: bool = True,
    ) -> list[list[str]]:
        """A warm-up pass, then ``rounds`` rounds in a new random order each; the orders."""
        orders = []
        if warmup:
            print(f"{mode}: warm-up", file=sys.stderr, flush=True)
            for program, stream in variants:
                self.run(emu, mode, size, 0, program, stream)
        for number in range(1, rounds + 1):
            order = list(variants)
            rng.shuffle(order)
            orders.append([f"{p}:{s.name if s else ''}" for p, s in order])
            print(f"{mode}: round {number}/{rounds}", file=sys.stderr, flush=True)
            for program, stream in order:
                self.run(emu, mode, size, number, program, stream)
        return orders


# --------------------------------------------------------------------------- summary


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


def per_round(num: list[Run], den: list[Run], value: Callable[[Run], float]) -> dict[str, Any]:
    """Median (min, max) over rounds of value(num) / value(den), both from the same round."""
    by_round = {r.round: r for r in den}
    return spread([value(r) / value(by_round[r.round]) for r in num if r.round in by_round])


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
            def per_record(r: Run, fixed: float) -> float:
                return max(r.cpu_s - fixed, 1e-9)

            by_round = {r.round: r for r in base}
            ratios["per_record"] = spread(
                [
                    per_record(r, startup[TAP_STARTUP])
                    / per_record(by_round[r.round], startup[BASELINE_STARTUP])
                    for r in mine
                    if r.round in by_round
                ]
            )
        out["ratios"][program] = ratios
    return out


# ---------------------------------------------------------------------------- tables


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


def program_rows(name: str, entry: dict[str, Any], programs: list[str]) -> list[list[Any]]:
    """Per-stream rows: every tap-like program, then the baseline."""
    rows = []
    for index, program in enumerate([*programs, BASELINE]):
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
    return rows


def print_throughput(summary: dict[str, Any]) -> None:
    """The throughput tables."""
    programs = summary["programs"]
    rows = [r for n, e in summary["streams"].items() for r in program_rows(n, e, programs)]
    print(
        f"\nThroughput at zero latency: {summary['events']:,} events per stream asked, "
        f"medians of {summary['rounds']} rounds"
    )
    print(table(PROGRAM_HEADERS, rows))
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
    _print_notes()


def print_latency(summary: dict[str, Any]) -> None:
    """The latency tables."""
    ms = summary["latency_ms"]
    programs = summary["programs"]
    rows = [r for n, e in summary["streams"].items() for r in program_rows(n, e, programs)]
    print(
        f"\nLatency {ms:g} ms per response: {summary['events']:,} events per stream asked, "
        f"medians of {summary['rounds']} rounds"
    )
    print(table(PROGRAM_HEADERS, rows))
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
    _print_notes()


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
        growth = stream.get("growth")
        if growth:
            print(
                f"\nGrowth {growth['from']:,} -> {growth['to']:,} events "
                f"(x{growth['records']:.2f} records):"
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
                for program, g in growth["programs"].items()
            ]
            print(table(["program", "wall", "net", "cpu", "peak RSS", "emulator s"], grows))
    _print_notes()


def _print_notes() -> None:
    print(
        "\nemu s: time the in-process emulator spent answering this run's requests (it filters"
        "\nand sorts an organisation's whole event list for every page, so it grows with the"
        "\ndata); net s = wall s - emu s, the client's own share. cpu s: user+system time of"
        "\nthe measured process (os.wait4). Ratios are medians of per-round ratios."
    )


# ----------------------------------------------------------------------------- modes


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
                entry["vs_bound"][program] = spread([r.wall_s / (r.requests * delay) for r in mine])
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


# ---------------------------------------------------------------------------- output


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
        help="events per stream (default 20000; latency mode 2000)",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--latency-ms",
        type=float,
        default=0.0,
        help="latency mode: the emulator delays every response by this much",
    )
    mode.add_argument(
        "--scale",
        action="store_true",
        help="scale mode: the --scale-events sizes, Socket unless --only",
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
    if args.latency_ms < 0:
        parser.error("--latency-ms must not be negative")
    variants = {}
    for item in args.variant:
        name, sep, command = item.partition("=")
        if not sep or not name.strip() or not command.strip():
            parser.error(f"--variant {item!r}: expected NAME=COMMAND")
        if name.strip() in (TAP, BASELINE, TAP_STARTUP, BASELINE_STARTUP):
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
            if args.scale:
                summary = scale(args, streams, bench)
            else:
                summary = throughput_or_latency(args, streams, bench)
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
        "runs": [{**asdict(r), "net_s": r.net_s} for r in bench.runs],
    }
    printers = {"throughput": print_throughput, "latency": print_latency, "scale": print_scale}
    printers[summary["mode"]](summary)
    write_results(result, args.out, chart=not args.no_chart)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
