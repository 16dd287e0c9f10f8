"""Chaos: nothing is lost, whatever the APIs and the process go through.

One emulator plays every provider at once with every fault together: 429s with a short
``Retry-After``, 500/502/503, dropped connections, slow answers, truncated bodies, bad
JSON, events arriving during the sync, late events (in the past, inside the lookback)
added between runs, Torq tokens that expire or die early, and (one seed in two) fields
whose type drifts (``type_drift``). The real ``tap-auditlogs``
command is killed with SIGKILL at random points and resumed from its last STATE until a
run finishes. Then, per stream, the primary keys emitted over all runs are compared with
the emulator's ground truth at or after ``start_date``: none may be missing. Every RECORD
of every run, ``audit_events`` and ``sync_coverage`` included, must fit the SCHEMA its stream
sent. And ``sync_coverage`` holds: the ranges claimed complete over all runs cover
[start_date, last run start - lookback] for every partition, and none holds an event the
emulator has that no run emitted (``coverage_problems``).

``run_seed`` is also what ``scripts/chaos.py`` (``CHAOS_SEEDS=50 make chaos``) runs for many
seeds, printing the table; CI runs ``CI_SEEDS`` here.
"""

from __future__ import annotations

import dataclasses
import json
import random
import tempfile
import time
import typing as t
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tap_auditlogs.core.instants import format_instant, instant_from_datetime, parse_instant
from tap_auditlogs.engine.page_loop import MAX_EMPTY_PAGES_IN_A_ROW
from tap_auditlogs.providers import all_providers
from tests.conftest import (
    TapRun,
    provider_sources,
    run_tap,
    run_tap_cli,
    served_id,
    served_instant,
    tap_config,
)
from tests.emulator import FAULT_KINDS, Emulator, FaultRule, QuotaRule, Scenario
from tests.emulator.configcat import ORG_IDS as CONFIGCAT_ORGS
from tests.emulator.registry import available_providers
from tests.test_coverage import claimed, coverage_rows
from tests.test_errors_and_secrets import forms_on_the_wire, leaked_slices
from tests.test_output_fits_schema import everything, schema_errors

#: Seeds run in CI (each a few kills and resumes of every provider, 2-6 s each).
CI_SEEDS = tuple(range(1, 9))

#: stream -> (provider key, primary-key fields of a record)
STREAMS: dict[str, tuple[str, tuple[str, ...]]] = {
    p.source_class.name: (p.key, tuple(p.source_class.primary_keys)) for p in all_providers()
}
#: Fault kinds the tap must retry (``slow`` only delays the answer).
FAILING = frozenset(kind for kind, spec in FAULT_KINDS.items() if spec.fails)
#: stream -> records it may emit again after resuming from any STATE (a page of a read
#: that checkpoints page by page; streams read in whole windows have no such bound).
RESUME_BOUND = {
    stream: bound
    for stream, (provider, _) in STREAMS.items()
    if (bound := available_providers()[provider].resume_bound) is not None
}


@dataclasses.dataclass
class StreamResult:
    """One stream of one seed: ground truth against what was emitted over all runs."""

    stream: str
    truth: int  # events at or after start_date when the last run ended
    missing: int  # of those, never emitted (must be 0)
    unexpected: int  # emitted but not in the truth, or before start_date (must be 0)
    emitted: int  # records emitted over all runs, duplicates included
    duplicates: int  # emitted - distinct keys
    requests: int  # every call the emulator logged for the provider (token calls included)
    faulted: int  # calls answered with a failing fault, each retried by the tap
    expired: int  # calls refused with Torq's 302 for an expired token (renewed, retried)
    tokens: int  # token requests (Torq)


@dataclasses.dataclass
class SeedResult:
    """What one chaos seed did and found."""

    seed: int
    runs: int  # tap processes, the settling run included
    kills: int  # of those, killed with SIGKILL
    late: int  # late events added between runs
    seconds: float
    streams: list[StreamResult]
    problems: list[str]  # anything that must not happen (tracebacks, exit codes, losses)
    scenario: str = ""

    @property
    def missing(self) -> int:
        """Events lost over all streams."""
        return sum(s.missing for s in self.streams)


def record_key(record: dict, fields: tuple[str, ...]) -> tuple[str, ...]:
    """A record's primary key as strings."""
    return tuple(str(record[name]) for name in fields)


def truth_keys(emu: Emulator, stream: str, since_ns: int) -> set[tuple[str, ...]]:
    """The primary keys of every event of ``stream`` at or after ``since_ns`` (an event served
    without an id: the tap's substitute for it)."""
    provider, fields = STREAMS[stream]
    return {
        (ev.org, served_id(stream, ev))[-len(fields) :]
        for ev in emu.truth(provider)
        if parse_instant(ev.ts, allow_naive=True) >= since_ns
    }


def timeless_keys(emu: Emulator, stream: str) -> set[tuple[str, ...]]:
    """The keys of the events served without a readable instant, at any time: the tap cannot
    tell whether they are older than ``start_date``, so it emits them (not unexpected)."""
    provider, fields = STREAMS[stream]
    return {
        (ev.org, served_id(stream, ev))[-len(fields) :]
        for ev in emu.truth(provider)
        if served_instant(stream, ev) is None
    }


def chaos_setup(seed: int, events: int | None = None) -> tuple[dict, dict, str]:
    """Scenario keywords, tap setting overrides and a one-line description for ``seed``.

    Faults and arrivals are the same for every provider; each provider's emulator module
    draws its own uncertain behaviours (``Provider.chaos``).
    """
    rng = random.Random(f"chaos:{seed}")
    per_org = events or rng.randint(120, 280)
    p = rng.uniform(0.015, 0.035)
    retry_after = rng.choice((0, 0, 1))
    faults = [
        FaultRule("429", probability=p, retry_after=retry_after),
        *(FaultRule(kind, probability=p) for kind in ("500", "502", "503", "drop")),
        FaultRule("truncate", probability=p),
        FaultRule("badjson", probability=p),
        # Answers the tap reads as they are: a BOM first; no envelope where that is safe.
        FaultRule("bom", probability=p),
        FaultRule("no_envelope", probability=p),
        FaultRule("echo200", probability=p),  # its start is quoted: never a piece of a secret
    ]
    slow = round(rng.uniform(0.03, 0.12), 2)
    scenario = {
        "seed": seed,
        "events_per_org": per_org,
        "span_days": 30.0,
        "arrivals_every": rng.randint(3, 10),
        "faults": faults,
        "max_consecutive_faults": 2,
    }
    # Drawn apart, so the other draws of a seed stay what they were.
    scenario["type_drift"] = random.Random(f"chaos-drift:{seed}").random() < 0.5
    start_days = round(rng.uniform(8, 25), 2)
    overrides: dict[str, t.Any] = {"start_days": start_days, "settings": {}}
    words = []
    for name, emulated in sorted(available_providers().items()):
        chaos = emulated.chaos(random.Random(f"chaos:{seed}:{name}"), per_org)
        scenario.update(chaos.switches)
        overrides["settings"][name] = chaos.settings
        delay = slow if chaos.slow_s is None else chaos.slow_s
        faults.append(FaultRule("slow", probability=p, delay_s=delay, provider=name))
        words += [chaos.what] if chaos.what else []
    what = (
        f"{per_org}/org, faults {p:.1%} each (429 Retry-After {retry_after}), "
        f"arrivals every {scenario['arrivals_every']}, {', '.join(words)}, start -{start_days}d"
        + (", type drift" if scenario["type_drift"] else "")
    )
    return scenario, overrides, what


def run_seed(seed: int, *, events: int | None = None, max_kills: int = 6) -> SeedResult:
    """Run the tap under chaos until a run finishes; compare every stream with the truth."""
    started = time.monotonic()
    rng = random.Random(f"chaos-run:{seed}")
    scenario, overrides, what = chaos_setup(seed, events)
    emu = Emulator(Scenario(**scenario)).start()
    tmp = tempfile.TemporaryDirectory()
    try:
        start_at = emu.scenario.now - timedelta(days=overrides["start_days"])
        start_ns = instant_from_datetime(start_at)
        config = tap_config(emu, start_date=format_instant(start_ns), **overrides["settings"])
        expected = sum(len(truth_keys(emu, s, start_ns)) for s in STREAMS)
        # Every stream selected, audit_events too: its records must fit their SCHEMA as well.
        catalog = everything(config)
        catalog_file = Path(tmp.name, "catalog.json")
        catalog_file.write_text(json.dumps(catalog))
        catalog_args = ("--catalog", str(catalog_file))
        runs: list[TapRun] = []
        problems: list[str] = []
        state: dict | None = None
        late = kills = 0
        # Each run reads one partition at a time or several side by side (read-ahead):
        # a kill must be survivable either way, and a resume may switch between them.
        concurrency = random.Random(f"chaos-concurrency:{seed}")
        while True:
            config["concurrency"] = concurrency.choice((1, 2, 8))
            kill = None
            if not runs:  # the first run is always killed
                kill = rng.randint(1, max(2, int(expected * 0.9)))
            elif kills < max_kills and rng.random() < 0.85:
                kill = rng.randint(1, max(2, int(expected * 1.2)))
            run = run_tap_cli(config, state, kill_after_records=kill, args=catalog_args)
            runs.append(run)
            state = run.final_state or state
            if "Traceback" in run.stderr:
                problems.append(f"run {len(runs)}: traceback: {run.stderr[-500:]}")
            if run.exit_code == 0:
                break
            if run.exit_code != -9:
                problems.append(f"run {len(runs)}: exit {run.exit_code}: {_errors(run.stderr)}")
            kills += run.exit_code == -9
            if len(runs) > max_kills + 3:
                problems.append("no run finished")
                break
            if rng.random() < 0.6:  # late events: in the past, inside the lookback
                late += _add_late_events(emu, rng)
        forms = [form for key in emu.providers for form in forms_on_the_wire(key, config[key])]
        leaks = leaked_slices(forms, "".join(run.stderr for run in runs))
        if leaks:
            problems.append(f"pieces of secrets in the output: {leaks[:3]}")
        counts = {s: _request_counts(emu, provider) for s, (provider, _) in STREAMS.items()}
        # Settle: no more faults or arrivals, one more run from the last state. Arrivals
        # after the final run's last request are only read by a later run.
        emu.configure(faults=[], arrivals_every=None)
        settle = run_tap(config, state, catalog=catalog)
        runs.append(settle)
        if settle.exit_code != 0:
            problems.append(f"settling run: exit {settle.exit_code}")
        for number, done in enumerate(runs, 1):
            errors = schema_errors(done.messages)
            if errors:
                problems.append(
                    f"run {number}: {len(errors)} RECORDs break their SCHEMA: {errors[:3]}"
                )
        streams = []
        for stream, (_, fields) in STREAMS.items():
            truth = truth_keys(emu, stream, start_ns)
            emitted = [record_key(r, fields) for run in runs for r in run.records(stream)]
            distinct = set(emitted)
            missing = truth - distinct
            if missing:
                problems.append(f"{stream}: {len(missing)} missing, e.g. {sorted(missing)[:3]}")
            streams.append(
                StreamResult(
                    stream=stream,
                    truth=len(truth),
                    missing=len(missing),
                    unexpected=len(distinct - truth - timeless_keys(emu, stream)),
                    emitted=len(emitted),
                    duplicates=len(emitted) - len(distinct),
                    **counts[stream],
                )
            )
        problems += coverage_problems(emu, runs, start_ns)
        return SeedResult(
            seed=seed,
            runs=len(runs),
            kills=kills,
            late=late,
            seconds=time.monotonic() - started,
            streams=streams,
            problems=problems,
            scenario=what,
        )
    finally:
        emu.stop()
        tmp.cleanup()


def coverage_problems(emu: Emulator, runs: list[TapRun], start_ns: int) -> list[str]:
    """What ``sync_coverage`` got wrong over a killed and resumed sequence of runs.

    Per partition, the union of the ranges every run claimed complete covers
    [start_date, the last run's start - lookback] (less the API's clock where it runs behind:
    the tap follows it), and no claimed range holds an event the emulator has that no run
    emitted.
    """
    problems: list[str] = []
    spans: dict[tuple[str, str], list[tuple[int, int]]] = {}
    emitted = {
        stream: {provider_sources()[stream].id_of(r) for run in runs for r in run.records(stream)}
        for stream in STREAMS
    }
    for run in runs:
        for _, row in coverage_rows(run):
            key = (row["stream"], row["partition"])
            spans.setdefault(key, [])
            if row["covered_from"] is not None:
                low, high = parse_instant(row["covered_from"]), parse_instant(row["covered_to"])
                spans[key].append((low, high))
            lacking = [
                ev.id
                for ev in claimed(emu, row["provider"], row)
                if served_id(row["stream"], ev) not in emitted[row["stream"]]
            ]
            if lacking:
                problems.append(f"coverage {key}: claims {len(lacking)} events never emitted")
    if not spans:
        problems.append("coverage: no sync_coverage row in any run")
    last = {(row["stream"], row["partition"]): row for _, row in coverage_rows(runs[-1])}
    if set(last) != set(spans):
        problems.append(f"coverage: the last run has no row for {sorted(set(spans) - set(last))}")
    for key, row in last.items():
        provider = STREAMS[row["stream"]][0]
        behind_ns = max(0.0, -float(emu.provider(provider).opt("clock_skew_s") or 0)) * 10**9
        lookback = provider_sources()[row["stream"]].lookback_ns
        end = parse_instant(row["run_started_at"]) - lookback - int(behind_ns) - 3 * 10**9
        reached = start_ns
        for low, high in sorted(spans[key]):
            if low > reached:
                break
            reached = max(reached, high)
        if reached < end:
            problems.append(
                f"coverage {key}: proven only to {format_instant(reached)}, not to "
                f"{format_instant(end)} (gap or a partition not read)"
            )
    return problems


def _add_late_events(emu: Emulator, rng: random.Random) -> int:
    """1-3 events 20 s to 4 min in the past for one org of one provider."""
    provider = rng.choice(sorted({p for p, _ in STREAMS.values()}))
    org = rng.choice(emu.provider(provider).orgs)
    n = rng.randint(1, 3)
    for _ in range(n):
        at = datetime.now(timezone.utc)
        emu.add_events(provider, org, 1, ts=at - timedelta(seconds=rng.uniform(20, 240)))
    return n


def _request_counts(emu: Emulator, provider: str) -> dict[str, int]:
    log = emu.requests(provider)
    return {
        "requests": len(log),
        "faulted": sum(r.fault in FAILING for r in log),
        "expired": sum(r.status == 302 and r.fault is None for r in log),
        "tokens": sum(r.method == "POST" and r.path.endswith("/token") for r in log),
    }


def _errors(stderr: str) -> str:
    return " / ".join(
        line.split("|")[-1].strip() for line in stderr.splitlines() if "ERROR" in line
    )


HEADER = (
    f"{'seed':>4} {'stream':<20} {'truth':>6} {'missing':>7} {'unexp':>5} {'emitted':>7} "
    f"{'dups':>5} {'requests':>8} {'retried':>7} {'302':>4} {'tokens':>6} {'runs':>4} "
    f"{'kills':>5} {'late':>4}"
)


def table_rows(result: SeedResult) -> list[str]:
    """The table lines of one seed."""
    return [
        f"{result.seed:>4} {s.stream:<20} {s.truth:>6} {s.missing:>7} {s.unexpected:>5} "
        f"{s.emitted:>7} {s.duplicates:>5} {s.requests:>8} {s.faulted:>7} {s.expired:>4} "
        f"{s.tokens:>6} {result.runs:>4} {result.kills:>5} {result.late:>4}"
        for s in result.streams
    ]


@pytest.mark.parametrize("seed", list(CI_SEEDS))
def test_chaos_loses_nothing(seed: int) -> None:
    result = run_seed(seed)
    print("\n".join(["", result.scenario, HEADER, *table_rows(result)]))
    assert result.problems == [], "\n".join(result.problems)
    assert result.missing == 0
    assert all(s.unexpected == 0 for s in result.streams), "nothing before start_date"
    assert result.kills >= 1, "the seed killed the tap at least once"
    assert sum(s.faulted for s in result.streams) > 0, "faults were injected"


def chaos_json(result: SeedResult) -> dict[str, t.Any]:
    """``result`` as plain data (for ``scripts/chaos.py --json``)."""
    return dataclasses.asdict(result)


def summarize(results: list[SeedResult]) -> list[str]:
    """Totals per stream over many seeds."""
    lines = []
    for stream in STREAMS:
        total = Counter[str]()
        for row in (s for r in results for s in r.streams if s.stream == stream):
            total.update({k: v for k, v in dataclasses.asdict(row).items() if k != "stream"})
        lines.append(
            f"{'all':>4} {stream:<20} {total['truth']:>6} {total['missing']:>7} "
            f"{total['unexpected']:>5} {total['emitted']:>7} {total['duplicates']:>5} "
            f"{total['requests']:>8} {total['faulted']:>7} {total['expired']:>4} "
            f"{total['tokens']:>6}"
        )
    return lines


# ---------------------------------------------------------------------------------------
# Every STATE line is a valid place to resume from, and a kill costs at most one page.


def _positions(run: TapRun) -> list[tuple[int, dict]]:
    """(index in the message list, value) of every STATE line whose value changed."""
    found: list[tuple[int, dict]] = []
    for index, message in enumerate(run.messages):
        if message["type"] == "STATE" and (not found or found[-1][1] != message["value"]):
            found.append((index, message["value"]))
    return found


def _records_between_states(run: TapRun) -> Counter[str]:
    """Per stream, the most records written between two STATE lines (what a kill loses)."""
    worst: Counter[str] = Counter()
    since: Counter[str] = Counter()
    for message in run.messages:
        if message["type"] == "STATE":
            since.clear()
        elif message["type"] == "RECORD":
            since[message["stream"]] += 1
            worst[message["stream"]] = max(worst[message["stream"]], since[message["stream"]])
    return worst


@pytest.mark.parametrize("seed", [21, 22])
def test_every_state_line_of_a_killed_run_resumes_without_loss(seed: int) -> None:
    rng = random.Random(f"every-state:{seed}")
    scenario, _, _ = chaos_setup(seed, events=150)
    scenario.update(torq_events_per_org=4000, arrivals_every=rng.randint(3, 8))
    emu = Emulator(Scenario(**scenario)).start()
    try:
        start_ns = instant_from_datetime(emu.scenario.now - timedelta(days=12))
        config = tap_config(emu, start_date=format_instant(start_ns), configcat={"window_days": 3})
        expected = sum(len(truth_keys(emu, s, start_ns)) for s in STREAMS)
        killed = run_tap_cli(config, kill_after_records=int(expected * rng.uniform(0.6, 0.9)))
        assert killed.exit_code == -9, killed.stderr[-2000:]
        worst = _records_between_states(killed)
        for stream, page in RESUME_BOUND.items():
            assert worst[stream] <= page, f"{stream}: {worst[stream]} records without a STATE"
        emu.configure(arrivals_every=None)  # the truth stays put while we resume
        truth = {s: truth_keys(emu, s, start_ns) for s in STREAMS}
        for index, state in _positions(killed):
            delivered = TapRun(messages=killed.messages[:index], exit_code=0)
            resumed = run_tap(config, state)
            assert resumed.exit_code == 0
            for stream, (_, fields) in STREAMS.items():
                before = {record_key(r, fields) for r in delivered.records(stream)}
                after = [record_key(r, fields) for r in resumed.records(stream)]
                missing = truth[stream] - before - set(after)
                assert not missing, f"STATE #{index}: {stream} lost {len(missing)}"
                again = len(before & set(after))
                assert again <= RESUME_BOUND.get(stream, expected), f"STATE #{index}: {stream}"
    finally:
        emu.stop()


# ---------------------------------------------------------------------------------------
# A quota-limited backfill finishes over several runs, at close to the minimum of calls.


def test_quota_limited_backfill_of_20000_events_finishes_over_several_runs(emulator) -> None:
    emu = emulator(
        providers=("socket",),
        seed=7,
        socket_orgs=("acme", "globex"),
        events_per_org=10_000,
        span_days=365,
        quota={"socket": QuotaRule(calls_per_window=50, window_s=3600)},
    )
    config = tap_config(emu, max_retry_wait=5, socket={"org_slugs": ["acme", "globex"]})
    emitted: list[str] = []
    state = None
    runs = 0
    for runs in range(1, 12):  # noqa: B007
        run = run_tap_cli(config, state)
        emitted += run.ids("socket_audit_log", "event_id")
        state = run.final_state or state
        assert "Traceback" not in run.stderr
        if run.exit_code == 0:
            break
        assert run.exit_code == 3, run.stderr[-2000:]
        assert "max_retry_wait" in run.stderr
        emu.reset_quota("socket")  # an hour later
    truth = {e.id for e in emu.truth("socket")}
    assert len(truth) == 20_000
    assert truth - set(emitted) == set(), "no event lost"
    assert runs >= 5, "50 calls per window cannot read 200 pages in fewer runs"
    # Every call the emulator logged for Socket counts, the refused (429) ones included.
    calls = len(emu.requests("socket"))
    minimum = len(truth) // 100 + runs * 2  # every page once, plus a first page per run and org
    assert calls <= minimum * 1.1, f"{calls} calls for a minimum of {minimum}"
    assert len(emitted) - len(set(emitted)) <= 100 * (runs - 1), "at most a page per stop"


# ---------------------------------------------------------------------------------------
# Broken bodies are retried, then reported; never taken for the last page.

#: provider -> (request number of the first data page, switches for one organization)
FIRST_PAGE = {
    name: (emulated.first_data_request, dict(emulated.one_org))
    for name, emulated in available_providers().items()
}
STREAM_OF = {provider: stream for stream, (provider, _) in STREAMS.items()}


@pytest.mark.parametrize("kind", ["badjson", "truncate"])
@pytest.mark.parametrize("provider", sorted(FIRST_PAGE))
def test_a_broken_body_is_retried_and_the_pass_goes_on(emulator, provider: str, kind: str) -> None:
    first, switches = FIRST_PAGE[provider]
    faults = [FaultRule(kind, nth=(first + 1, first + 2), provider=provider)]  # the 2nd page
    emu = emulator(providers=(provider,), seed=31, events_per_org=500, faults=faults, **switches)
    start = emu.scenario.now - timedelta(days=20)
    run = run_tap(tap_config(emu, start_date=format_instant(instant_from_datetime(start))))
    assert run.exit_code == 0
    stream = STREAM_OF[provider]
    since = instant_from_datetime(start)
    emitted = {record_key(r, STREAMS[stream][1]) for r in run.records(stream)}
    assert truth_keys(emu, stream, since) <= emitted
    assert sum(r.fault == kind for r in emu.requests(provider)) == 2


@pytest.mark.parametrize("kind", ["badjson", "truncate"])
@pytest.mark.parametrize("provider", sorted(FIRST_PAGE))
def test_a_body_that_stays_broken_is_reported_and_the_next_run_reads_on(
    emulator, provider: str, kind: str
) -> None:
    broken, errors, resume = _broken_for_good(emulator, provider, kind, seed=32, max_retries=2)
    expected = "not valid JSON" if kind == "badjson" else "cut off"
    assert any("gave up after 3 attempts" in e and expected in e for e in errors), errors
    resume()
    assert broken.records(STREAM_OF[provider]), "the first page was emitted before the failure"


def _broken_for_good(
    emulator: t.Any, provider: str, kind: str, *, seed: int, max_retries: int
) -> tuple[TapRun, list[str], t.Callable[[], None]]:
    """A run in which every request after the first data page fails with ``kind``, for
    good: it must exit 1 without a traceback. Returns it, its ERROR lines, and a check to
    call after the test's own: the faults gone, a run from its state ends with every event.
    """
    first, switches = FIRST_PAGE[provider]
    faults = [FaultRule(kind, nth=tuple(range(first + 1, first + 200)), provider=provider)]
    emu = emulator(providers=(provider,), seed=seed, events_per_org=500, faults=faults, **switches)
    start_ns = instant_from_datetime(emu.scenario.now - timedelta(days=20))
    config = tap_config(emu, start_date=format_instant(start_ns), max_retries=max_retries)
    broken = run_tap_cli(config)
    assert broken.exit_code == 1, broken.stderr[-2000:]
    assert "Traceback" not in broken.stderr
    errors = [line for line in broken.stderr.splitlines() if "ERROR" in line]

    def resume() -> None:
        emu.configure(faults=[])
        again = run_tap(config, broken.final_state)
        assert again.exit_code == 0
        stream = STREAM_OF[provider]
        fields = STREAMS[stream][1]
        emitted = {record_key(r, fields) for run in (broken, again) for r in run.records(stream)}
        assert truth_keys(emu, stream, start_ns) <= emitted, "the first run's stop lost nothing"

    return broken, errors, resume


#: A 200 that is not the API's JSON: what the error names (Content-Type and the body's start,
#: or that the compressed body is corrupt), instead of a guess.
NOT_JSON_ANSWERS = {
    "maintenance": (
        "the API answered with text/html; charset=utf-8 instead of JSON (",
        "starting '<!DOCTYPE html> <html><head><title>Down for maintenance</title>",
    ),
    "badgzip": ("the compressed response body is corrupt: it could not be decompressed", ""),
    "cutgzip": ("the gzip-compressed response body is corrupt or cut off", "application/json"),
    "badjson": ("the response body is not valid JSON, cut off or malformed", "starting '{"),
}


@pytest.mark.parametrize("kind", sorted(NOT_JSON_ANSWERS))
def test_an_answer_that_is_not_json_says_what_came_and_the_next_run_reads_on(
    emulator, kind: str
) -> None:
    provider = sorted(FIRST_PAGE)[0]
    _, errors, resume = _broken_for_good(emulator, provider, kind, seed=33, max_retries=1)
    what, detail = NOT_JSON_ANSWERS[kind]
    assert any("gave up after 2 attempts" in e and what in e and detail in e for e in errors), (
        errors
    )
    resume()


# ---------------------------------------------------------------------------------------
# Paging that loops is detected and reported, not followed forever.

LOOPS = {
    "socket token repeats": ("socket", {"socket_next_page": "repeat", "socket_orgs": ("acme",)}),
    "socket page goes back": (
        "socket",
        {"socket_next_page": "backwards", "socket_orgs": ("acme",)},
    ),
    "torq token repeats": ("torq", {"torq_page_token": "repeat", "torq_events_per_org": 1600}),
    "nirvana cursor repeats": ("nirvana", {"nirvana_cursor": "repeat"}),
    "nirvana cursor repeats, filters ignored": (
        "nirvana",
        {"nirvana_cursor": "repeat", "nirvana_filters": "ignored"},
    ),
    "configcat ignores pageNumber": (
        "configcat",
        {"configcat_page_number": "ignored", "configcat_orgs": CONFIGCAT_ORGS[:1]},
    ),
}

#: The same switches, playing an API that pages correctly again.
FIXED_PAGING = {
    "socket_next_page": "normal",
    "torq_page_token": "normal",
    "nirvana_cursor": "normal",
    "configcat_page_number": "honoured",
}


@pytest.mark.parametrize("case", list(LOOPS))
def test_paging_that_loops_is_reported_and_the_state_holds(emulator, case: str) -> None:
    provider, switches = LOOPS[case]
    emu = emulator(providers=(provider,), seed=33, events_per_org=450, **switches)
    start_ns = instant_from_datetime(emu.scenario.now - timedelta(days=29))
    config = tap_config(emu, start_date=format_instant(start_ns))
    looped = run_tap_cli(config, timeout=60)
    assert looped.exit_code == 1, looped.stderr[-2000:]
    assert "Traceback" not in looped.stderr
    errors = [line for line in looped.stderr.splitlines() if "ERROR" in line]
    assert any("stopped to avoid an endless loop" in e for e in errors), errors
    assert len(emu.requests(provider)) <= 6, "stopped at the first repeat"
    # The API is fixed: the next run, from the saved state, reads everything.
    emu.configure(**{key: value for key, value in FIXED_PAGING.items() if key in switches})
    fixed = run_tap(config, looped.final_state)
    assert fixed.exit_code == 0
    stream = STREAM_OF[provider]
    fields = STREAMS[stream][1]
    emitted = {record_key(r, fields) for run in (looped, fixed) for r in run.records(stream)}
    assert truth_keys(emu, stream, start_ns) <= emitted


def test_endless_empty_pages_are_reported(emulator) -> None:
    """An API that answers empty pages with fresh tokens forever is not followed forever."""
    emu = emulator(
        providers=("torq",), seed=34, events_per_org=450, torq_page_token="empty_forever"
    )
    start_ns = instant_from_datetime(emu.scenario.now - timedelta(days=29))
    run = run_tap_cli(tap_config(emu, start_date=format_instant(start_ns)), timeout=60)
    assert run.exit_code == 1, run.stderr[-2000:]
    assert "Traceback" not in run.stderr
    errors = [line for line in run.stderr.splitlines() if "ERROR" in line]
    assert any("empty pages in a row" in e for e in errors), errors
    data_pages = 1  # 450 events fit one page of 500
    api_calls = [r for r in emu.requests("torq") if "audit_logs" in r.path]
    assert len(api_calls) <= data_pages + MAX_EMPTY_PAGES_IN_A_ROW
    emitted = {record_key(r, ("id",)) for r in run.records("torq_audit_log")}
    assert truth_keys(emu, "torq_audit_log", start_ns) <= emitted, "the data pages were emitted"


# ---------------------------------------------------------------------------------------
# Found by the chaos runs (seed 57 of 100): a Torq token that dies again while one request
# waits out a Retry-After after the first renewal.


def test_a_token_that_dies_twice_during_one_request_is_renewed_twice(emulator) -> None:
    # 1 token, 2 GET -> 429 (wait 1 s), 3 GET -> 302 (dead), 4 token, 5 GET -> 429 (wait
    # 1 s), 6 GET -> 302 (dead again): the renewed token worked (it got past to a 429), so
    # this is a second expiry, not a refused renewal.
    emu = emulator(
        providers=("torq",),
        seed=57,
        events_per_org=300,
        torq_token_dies_after_s=0.5,
        faults=[FaultRule("429", nth=(2, 5), retry_after=1, provider="torq")],
    )
    start_ns = instant_from_datetime(emu.scenario.now - timedelta(days=20))
    run = run_tap(tap_config(emu, start_date=format_instant(start_ns)))
    assert run.exit_code == 0
    statuses = [r.status for r in emu.requests("torq")]
    assert statuses[:6] == [200, 429, 302, 200, 429, 302], statuses
    assert truth_keys(emu, "torq_audit_log", start_ns) <= {
        record_key(r, ("id",)) for r in run.records("torq_audit_log")
    }
