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
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timedelta, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

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
from tests.emulator import scenario as scenario_module  # noqa: E402
from tests.emulator.registry import available_providers  # noqa: E402

RESULTS = HERE / "results"
TARGET_RATIO = 1.5  # issue #9: the tap within 1.5x the orjson baseline at zero latency
DEFAULT_EVENTS = {"throughput": 20_000, "latency": 2_000, "parallel": 2_000}
PARALLEL_TARGET = 0.35  # issue #9: parallel backfill within 0.35x the sequential lower bound
DEFAULT_CONCURRENCY = "1,8"
DEFAULT_PARALLEL_ORGS = 4
DEFAULT_PARALLEL_LATENCY_MS = 100.0
#: The providers' published request-rate limits, (max requests, window s), used when the
#: emulator does not export its own ``DOCUMENTED_RATE_LIMITS`` (issue #9's figures).
FALLBACK_RATE_LIMITS: dict[str, tuple[int, float]] = {"socket": (600, 60.0), "torq": (50, 1.0)}
UNTHROTTLED_RPS = 100_000  # throughput and scale modes: the tap's own rate limit, lifted
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


def org_keys(provider: str, count: int) -> tuple[str, ...]:
    """``count`` organisation keys for a multi-organisation provider (ConfigCat's are uuids)."""
    if provider == "configcat":
        return tuple(
            str(uuid.uuid5(uuid.NAMESPACE_URL, f"configcat-org-{i}")) for i in range(count)
        )
    return tuple(f"{provider}-org-{i:03d}" for i in range(count))


def emulator_rate_limits() -> dict[str, tuple[int, float]] | None:
    """The documented limits the emulator can enforce; None if it has no ``rate_limits``."""
    if "rate_limits" not in {f.name for f in fields(Scenario)}:
        return None
    documented = getattr(scenario_module, "DOCUMENTED_RATE_LIMITS", None)
    return dict(documented) if documented else dict(FALLBACK_RATE_LIMITS)


def _provider_of(target: str) -> str:
    """The provider of a request target: ``/socket/v0/...`` -> ``socket``."""
    parts = target.split("?", 1)[0].split("/")
    return parts[1] if len(parts) > 1 else ""


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
        rate_limits: dict[str, tuple[int, float]] | None = None,
    ) -> None:
        registry = available_providers()
        options: dict[str, Any] = {}
        for stream in streams:
            default_orgs = tuple(registry[stream.provider].switches["orgs"].default)
            if orgs and len(default_orgs) > 1:  # single-workspace providers keep their one org
                default_orgs = org_keys(stream.provider, orgs)
                options[f"{stream.provider}_orgs"] = default_orgs
            options[f"{stream.provider}_events_per_org"] = max(1, events // len(default_orgs))
        played = [s.provider for s in streams]
        #: the limits the emulator enforces (429 with Retry-After), by provider
        self.rate_limits = {p: limit for p, limit in (rate_limits or {}).items() if p in played}
        if self.rate_limits:
            options["rate_limits"] = self.rate_limits
        scenario = Scenario(seed=seed, providers=played, latency_s=latency_s, **options)
        started = time.perf_counter()
        self.emu = Emulator(scenario)
        self.generate_s = time.perf_counter() - started
        self.orgs = {s.provider: len(self.emu.provider(s.provider).orgs) for s in streams}
        self.truth_ids = {s.provider: {ev.id for ev in self.emu.truth(s.provider)} for s in streams}
        self.busy_s = 0.0
        self.busy_cpu_s = 0.0
        self._active = 0  # requests being answered right now
        self._busy_since = 0.0
        #: (provider, perf_counter) of every request taken since the last reset: the peak
        #: request rate when the emulator has no ``peak_requests``
        self.stamps: list[tuple[str, float]] = []
        self._lock = threading.Lock()
        dispatch = self.emu._dispatch

        def timed(method: str, target: str, *args: Any, **kwargs: Any) -> Any:
            # busy_s is the union of the answering intervals (wall time during which at
            # least one request was being answered), so concurrent requests are not
            # counted twice; busy_cpu_s is every answering thread's own CPU time.
            with self._lock:
                wall = time.perf_counter()
                self.stamps.append((_provider_of(target), wall))
                if self._active == 0:
                    self._busy_since = wall
                self._active += 1
            cpu = time.thread_time()
            try:
                return dispatch(method, target, *args, **kwargs)
            finally:
                spent = time.thread_time() - cpu
                with self._lock:
                    self.busy_cpu_s += spent
                    self._active -= 1
                    if self._active == 0:
                        self.busy_s += time.perf_counter() - self._busy_since

        self.emu._dispatch = timed  # type: ignore[method-assign]

    def __enter__(self) -> TimedEmulator:
        self.emu.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.emu.stop()

    def reset(self) -> None:
        """Forget the request log, the busy time and the rate windows before a run."""
        self.emu.reset_requests()
        if self.rate_limits:  # fresh sliding windows: the last run's calls do not count
            self.emu.configure(rate_limits=self.rate_limits)
        with self._lock:
            self.busy_s = self.busy_cpu_s = 0.0
            self._busy_since = time.perf_counter()
            self.stamps = []

    def busy(self) -> tuple[float, float]:
        """Seconds spent answering since the last reset: wall and CPU."""
        with self._lock:
            return self.busy_s, self.busy_cpu_s

    def taken(self) -> list[tuple[str, float]]:
        """(provider, perf_counter) of every request taken since the last reset."""
        with self._lock:
            return list(self.stamps)

    def peak_requests(self, provider: str, window_s: float) -> int:
        """The most requests to ``provider`` within any ``window_s`` seconds since the reset."""
        if hasattr(self.emu, "peak_requests"):
            return int(self.emu.peak_requests(provider, window_s))
        with self._lock:
            times = sorted(at for name, at in self.stamps if name == provider)
        peak, first = 0, 0
        for last, at in enumerate(times):
            while at - times[first] >= window_s:
                first += 1
            peak = max(peak, last - first + 1)
        return peak

    def start_date(self) -> str:
        """A ``start_date`` before every event."""
        scenario = self.emu.scenario
        start = scenario.now - timedelta(days=float(scenario.span_days) + 1)
        return start.strftime("%Y-%m-%dT%H:%M:%SZ")

    def config(self, stream: Stream, extra: dict[str, Any] | None = None) -> dict:
        """The tap config of one stream: its provider block (plus ``extra``) and a start
        before every event."""
        return {
            stream.provider: {**self.emu.tap_config()[stream.provider], **(extra or {})},
            "start_date": self.start_date(),
        }

    def config_all(self, extra: dict[str, Any] | None = None) -> dict:
        """Every provider block, a start before every event, and ``extra`` top-level keys."""
        return {**self.emu.tap_config(), "start_date": self.start_date(), **(extra or {})}


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
    concurrency: int | None = None  # parallel mode: the tap's ``concurrency`` setting
    first_request_s: float = 0.0  # parallel mode: first and last request, s after the spawn
    last_request_s: float = 0.0
    #: parallel mode, per provider: requests by kind, 429s, peak requests in the window
    providers: dict[str, dict[str, Any]] = field(default_factory=dict)

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


def count_sink(
    sink: Path, id_fields: dict[str, str]
) -> tuple[dict[str, int], dict[str, set[str]], int]:
    """RECORD lines per stream, the ids emitted per stream (the record field ``id_fields``
    names for that stream), and the STATE line count."""
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
            id_field = id_fields.get(name, "id")
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
        #: throughput and scale modes: lift the tap's own request-rate limit (when it has one)
        self.unthrottled = False
        self._settings: dict[str, dict[str, Any]] = {}

    def settings(self, program: str) -> dict[str, Any]:
        """The settings a tap-like program declares (``--about --format=json``), once each;
        empty if it cannot say. Run through the spawner, so it also compiles the bytecode."""
        if program not in self._settings:
            sink, errors = self.workdir / "about.json", self.workdir / "about.txt"
            used = self.spawner.run([*self.taps[program], "--about", "--format=json"], sink, errors)
            try:
                about = json.loads(sink.read_text()) if used["status"] == 0 else {}
                properties = dict(about["settings"]["properties"])
            except (ValueError, KeyError, TypeError):
                properties = {}
            self._settings[program] = properties
        return self._settings[program]

    def accepts(self, program: str, key: str, block: str | None = None) -> bool:
        """True if the program declares setting ``key`` (top level, or in provider ``block``)."""
        if program not in self.taps:
            return False
        properties = self.settings(program)
        if block is not None:
            properties = (properties.get(block) or {}).get("properties") or {}
        return key in properties

    def block_extra(self, program: str, provider: str) -> dict[str, Any]:
        """Settings added to the provider block: the rate limit lifted when unthrottled."""
        if self.unthrottled and self.accepts(program, "max_requests_per_second", provider):
            return {"max_requests_per_second": UNTHROTTLED_RPS}
        return {}

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
        block = self.block_extra(program, stream.provider) if stream else {}
        config.write_bytes(orjson.dumps(emu.config(stream, block) if stream else {}))
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
        run.pages = sum(1 for r in log if _is_page(r))
        run.latency_s = float(emu.emu.scenario.latency_s)
        counts, ids, run.states = count_sink(sink, {stream.name: stream.id_field})
        run.records = counts.get(stream.name, 0)
        others = {name: n for name, n in counts.items() if name != stream.name}
        problems = [f"records of other streams {others}"] if others else []
        problems += stream_problems(emu, stream, counts, ids)
        if problems:
            self.fail(run, "; ".join(problems), errors)

    def run_parallel(
        self,
        emu: TimedEmulator,
        size: int,
        round_no: int,
        program: str,
        streams: list[Stream],
        concurrency: int,
    ) -> Run:
        """Parallel mode: one measured run of every stream at once, verified per stream."""
        config = self.workdir / "config.json"
        sink = self.workdir / "sink.jsonl"
        errors = self.workdir / "stderr.txt"
        # Without the setting, concurrency 1 is the tap's sequential read: the key is left
        # out. Any other N is passed as is (a tap that rejects it fails the run, loudly).
        passed = concurrency != 1 or self.accepts(program, "concurrency")
        config.write_bytes(
            orjson.dumps(emu.config_all({"concurrency": concurrency} if passed else {}))
        )
        emu.reset()
        spawned = time.perf_counter()
        used = self.spawner.run(self.command(program, config), sink, errors)
        run = Run(
            mode="parallel",
            size=size,
            round=round_no,
            program=program,
            stream=None,
            wall_s=used["wall_s"],
            cpu_s=used["user_s"] + used["sys_s"],
            user_s=used["user_s"],
            sys_s=used["sys_s"],
            peak_rss_mb=used["maxrss_kb"] / 1024,
            exit_code=int(used["status"]),
            concurrency=concurrency,
        )
        if run.exit_code != 0:
            hint = ""
            if passed and not self.accepts(program, "concurrency"):
                hint = " (it declares no `concurrency` setting: try --concurrency 1)"
            self.fail(run, f"exit code {run.exit_code}{hint}", errors)
        run.emulator_s, run.emulator_cpu_s = emu.busy()
        run.latency_s = float(emu.emu.scenario.latency_s)
        counts, ids, run.states = count_sink(sink, {s.name: s.id_field for s in streams})
        known = {s.name for s in streams}
        others = {name: n for name, n in counts.items() if name not in known}
        problems = [f"records of other streams {others}"] if others else []
        for stream in streams:
            problems += [f"{stream.name}: {p}" for p in stream_problems(emu, stream, counts, ids)]
        if problems:
            self.fail(run, "; ".join(problems), errors)
        run.records = sum(counts.get(name, 0) for name in known)
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
        sink.unlink(missing_ok=True)
        self.runs.append(run)
        if self.verbose:
            label = "warm-up" if round_no == 0 else f"round {round_no}"
            print(
                f"  [{label}] {program:<18} concurrency {concurrency:<4} {run.wall_s:7.2f} s, "
                f"{run.records} records, {run.requests} requests, "
                f"emulator {run.emulator_s:.2f} s",
                file=sys.stderr,
                flush=True,
            )
        return run

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
        orders: list[list[str]] = []
        if warmup:
            print(f"{mode}: warm-up", file=sys.stderr, flush=True)
            for program, stream in variants:
                self.run(emu, mode, size, 0, program, stream)
        names = [f"{p}:{s.name if s else ''}" for p, s in variants]
        for number, order in shuffled_rounds(variants, names, rounds, rng, mode, orders):
            for program, stream in order:
                self.run(emu, mode, size, number, program, stream)
        return orders


V = TypeVar("V")


def shuffled_rounds(
    variants: list[V],
    names: list[str],
    rounds: int,
    rng: random.Random,
    mode: str,
    orders: list[list[str]],
) -> Iterator[tuple[int, list[V]]]:
    """Each round's number and its variants in a new random order (named into ``orders``)."""
    for number in range(1, rounds + 1):
        picks = list(range(len(variants)))
        rng.shuffle(picks)
        orders.append([names[i] for i in picks])
        print(f"{mode}: round {number}/{rounds}", file=sys.stderr, flush=True)
        yield number, [variants[i] for i in picks]


def _is_page(record: Any) -> bool:
    """An audit-log page the emulator answered (every provider's path names its audit log)."""
    return "audit" in record.path.lower() and record.status == 200


def stream_problems(
    emu: TimedEmulator, stream: Stream, counts: dict[str, int], ids: dict[str, set[str]]
) -> list[str]:
    """What differs between the stream's RECORDs and the emulator's events (empty: none)."""
    truth = emu.truth_ids[stream.provider]
    records = counts.get(stream.name, 0)
    problems = []
    if records != len(truth):
        problems.append(f"{records} RECORD lines, the emulator holds {len(truth)} events")
    emitted = ids.get(stream.name, set())
    if emitted != truth:
        missing, extra = len(truth - emitted), len(emitted - truth)
        problems.append(f"ids differ from the truth: {missing} missing, {extra} unknown")
    return problems


def provider_figures(emu: TimedEmulator, provider: str) -> dict[str, Any]:
    """One provider's requests in the last run: by kind, 429s, and the peak request count
    in its documented window (1 s for a provider without a documented limit)."""
    log = emu.emu.requests(provider)
    pages = sum(1 for r in log if _is_page(r))
    org_lists = sum(1 for r in log if r.path.rstrip("/").endswith("/organizations"))
    tokens = sum(1 for r in log if "token" in r.path.lower())
    limit = emu.rate_limits.get(provider) or FALLBACK_RATE_LIMITS.get(provider)
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


def parallel(args: argparse.Namespace, streams: list[Stream], bench: Bench) -> dict[str, Any]:
    """Parallel mode: every stream in one config, at each --concurrency N; the summary."""
    events = args.events or DEFAULT_EVENTS["parallel"]
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
                bench.run_parallel(emu, events, number, program, streams, n)
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
        entry: dict[str, Any] = {}
        for n in levels:
            runs = [r for r in mine if r.concurrency == n and r.round > 0]
            vs_bound = spread([r.wall_s / (r.requests * delay) for r in runs]) if delay else None
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
            entry[str(n)] = {
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
                "vs_bound": vs_bound,
                "vs_sequential": per_round(runs, sequential, lambda r: r.wall_s)
                if sequential and n != 1
                else None,
                "target_met": vs_bound is not None and vs_bound["median"] <= PARALLEL_TARGET,
                "providers": providers,
            }
        summary["results"][program] = entry
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
