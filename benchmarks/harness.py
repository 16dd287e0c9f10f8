"""The harness: spawns the measured programs, times them and verifies their output.

``Spawner`` runs each command through ``_spawn.py`` (so ``os.wait4``'s peak RSS is the
command's own); ``Bench`` writes a program's config, runs it against a ``TimedEmulator``,
checks its sink (exactly the emulator's events, by count and by id, per stream; anything
else stops the benchmark with exit 1) and keeps one ``Run`` per measured run. ``rounds``
is the warm-up pass and the shuffled rounds every single-stream mode shares.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import orjson
from timed_emulator import Stream, TimedEmulator

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
UNTHROTTLED_RPS = 100_000  # throughput and scale modes: the tap's own rate limit, lifted
TAP = "tap"
BASELINE = "baseline"
TAP_STARTUP = "tap --about"  # imports and CLI only: the tap's fixed cost
BASELINE_STARTUP = "baseline --startup"  # the baseline with no provider: its fixed cost
#: program names a --variant may not take
RESERVED = (TAP, BASELINE, TAP_STARTUP, BASELINE_STARTUP)


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


def is_page(record: Any) -> bool:
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
        self.config = workdir / "config.json"
        self.sink = workdir / "sink.jsonl"
        self.errors = workdir / "stderr.txt"

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

    def spawn(
        self,
        emu: TimedEmulator,
        program: str,
        config: dict[str, Any],
        *,
        mode: str,
        size: int,
        round_no: int,
        stream: str | None = None,
        concurrency: int | None = None,
    ) -> tuple[Run, float]:
        """Write ``config``, reset the emulator and run the program into the sink: its
        ``Run`` (times, peak RSS, exit code; nothing checked yet) and when it was spawned
        (``perf_counter``)."""
        self.config.write_bytes(orjson.dumps(config))
        emu.reset()
        spawned = time.perf_counter()
        used = self.spawner.run(self.command(program, self.config), self.sink, self.errors)
        run = Run(
            mode=mode,
            size=size,
            round=round_no,
            program=program,
            stream=stream,
            wall_s=used["wall_s"],
            cpu_s=used["user_s"] + used["sys_s"],
            user_s=used["user_s"],
            sys_s=used["sys_s"],
            peak_rss_mb=used["maxrss_kb"] / 1024,
            exit_code=int(used["status"]),
            concurrency=concurrency,
        )
        return run, spawned

    def check(
        self, emu: TimedEmulator, run: Run, streams: list[Stream], *, named: bool
    ) -> dict[str, int]:
        """Fill in the emulator's time and the sink's STATE count; stop unless the sink
        holds exactly the emulator's events of each stream and no other stream (``named``:
        each problem names its stream). The RECORD counts per stream."""
        run.emulator_s, run.emulator_cpu_s = emu.busy()
        run.latency_s = float(emu.emu.scenario.latency_s)
        counts, ids, run.states = count_sink(self.sink, {s.name: s.id_field for s in streams})
        known = {s.name for s in streams}
        others = {name: n for name, n in counts.items() if name not in known}
        problems = [f"records of other streams {others}"] if others else []
        for stream in streams:
            found = stream_problems(emu, stream, counts, ids)
            problems += [f"{stream.name}: {p}" for p in found] if named else found
        if problems:
            self.fail(run, "; ".join(problems))
        return counts

    def keep(self, run: Run, what: str, detail: str) -> Run:
        """Keep a verified run (and say so when verbose); the sink goes."""
        self.sink.unlink(missing_ok=True)
        self.runs.append(run)
        if self.verbose:
            label = "warm-up" if run.round == 0 else f"round {run.round}"
            print(
                f"  [{label}] {run.program:<18} {what} {run.wall_s:7.2f} s{detail}",
                file=sys.stderr,
                flush=True,
            )
        return run

    def run(
        self,
        emu: TimedEmulator,
        mode: str,
        size: int,
        round_no: int,
        program: str,
        stream: Stream | None,
    ) -> Run:
        """One measured, verified run of one stream (None: a start-up reference)."""
        block = self.block_extra(program, stream.provider) if stream else {}
        run, _ = self.spawn(
            emu,
            program,
            emu.config(stream, block) if stream else {},
            mode=mode,
            size=size,
            round_no=round_no,
            stream=stream.name if stream else None,
        )
        if run.exit_code != 0:
            self.fail(run, f"exit code {run.exit_code}")
        detail = ""
        if stream is not None:
            run.records = self.check(emu, run, [stream], named=False).get(stream.name, 0)
            log = emu.emu.requests(stream.provider)
            run.requests = len(log)
            run.pages = sum(1 for r in log if is_page(r))
            detail = f", {run.records} records, emulator {run.emulator_s:.2f} s"
        return self.keep(run, f"{run.stream or '':<20}", detail)

    def fail(self, run: Run, why: str) -> None:
        """Stop the benchmark loudly, with the end of the program's stderr."""
        tail = self.errors.read_text(errors="replace").strip().splitlines()[-15:]
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
