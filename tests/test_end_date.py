"""``end_date``: one period, exactly, for every provider (issue 21, item 4).

Through the emulator, for every provider of the registry: a bounded run emits exactly the
events in ``[start_date, end_date)``, sends the upper bound where the provider declares one
(``upper_bound_param``), writes no bookmark at or after ``end_date``; running it again adds
nothing, a later unbounded run from its state reads on without loss, a killed bounded run
resumes to every event of the period, and an ``end_date`` after the run's start reads like none.
"""

from __future__ import annotations

import typing as t
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tap_auditlogs.cli.settings import settings_warnings, validate_settings
from tap_auditlogs.core.instants import NS_PER_SECOND, format_instant, parse_instant
from tap_auditlogs.engine.state import state_problems
from tap_auditlogs.engine.strategies import Ascending
from tap_auditlogs.engine.verified import VerifiedAscending
from tap_auditlogs.providers import all_providers
from tests.conftest import run_tap, run_tap_cli, served_id, tap_config
from tests.emulator.registry import available_providers
from tests.test_chaos import STREAMS
from tests.test_clock import (
    EVENTS,
    NOW,
    READS,
    YEAR,
    Recorder,
    _bookmarks,
    _fake,
    _log,
)

if t.TYPE_CHECKING:
    from tests.conftest import TapRun
    from tests.emulator import Emulator

PROVIDERS = sorted(available_providers())
STREAM_OF = {provider: stream for stream, (provider, _) in STREAMS.items()}
DECLARED = {p.key: p.source_class for p in all_providers()}
LATEST = parse_instant("9999-12-31T23:59:59Z")
#: Readings that send a provider's read down another path (verified.py, NewestFirst's checks).
PATHS: list[tuple[str, dict[str, t.Any]]] = [
    *((provider, {}) for provider in PROVIDERS),
    ("nirvana", {"nirvana_filters": "ignored", "nirvana_order": "desc"}),
    ("nirvana", {"nirvana_filters": "ignored", "nirvana_order": "random"}),
    ("nirvana", {"nirvana_filters": "ignored", "nirvana_order": "asc"}),
    ("socket", {"socket_order": "random"}),
    ("configcat", {"configcat_bounds": "exclusive"}),
]


#: Providers whose long ascending reads are split into ranges read side by side (read_ahead.py).
SPLIT = [p for p in PROVIDERS if isinstance(DECLARED[p].strategy, (Ascending, VerifiedAscending))]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    events=EVENTS,
    name=st.sampled_from(sorted(READS)),
    lookback=st.sampled_from([0, 300 * NS_PER_SECOND]),
    page_size=st.integers(1, 7),
    kills=st.lists(st.integers(0, 30), max_size=4),
    cut=st.integers(0, 40),
)
def test_every_strategy_stops_at_end_date_and_resumes_within_it(
    events: list[tuple[int, int, bool]],
    name: str,
    lookback: int,
    page_size: int,
    kills: list[int],
    cut: int,
) -> None:
    """Every strategy, killed anywhere: nothing at or after end_date comes out, no state
    reaches it, and the resumed runs end with every event before it."""
    strategy, mode = READS[name]
    log = _log(events)
    stamps = sorted(event["ts"] for event in log.events)
    end = stamps[min(cut, len(stamps) - 1)]  # exactly at an event (or a tie of events)
    assume(end < NOW)  # a later end_date reads like none (tested through the emulator)
    first = NOW - 11 * YEAR if name == "windows" else -1  # windows reach back 11 years
    in_period = {e["id"] for e in log.events if first <= e["ts"] < end}

    def bounded() -> t.Any:
        fake = _fake(mode, log, lookback, page_size)
        fake.end_ns = end
        return fake

    recorder = Recorder(bounded, strategy)
    state: dict = {}
    emitted: set[str] = set()
    for kill in [*kills, None]:
        ids, saved, _ = recorder.run(state, kill)
        assert set(ids) <= in_period, "an event at or after end_date"
        emitted |= set(ids)
        for _, written in saved:
            assert all(value < end for value in _bookmarks({"bookmarks": {"s": written}}))
        state = saved[-1][1] if saved else state
    assert emitted == in_period


def _start(emulator: t.Callable[..., Emulator], provider: str, **switches: t.Any) -> Emulator:
    one_org = available_providers()[provider].one_org
    return emulator(seed=23, providers=[provider], events_per_org=150, **one_org, **switches)


def _instant(emu: Emulator, provider: str, event: t.Any) -> int:
    return parse_instant(event.ts, allow_naive=True)


def _period(emu: Emulator, provider: str) -> tuple[int, int]:
    """start_date before every event; end_date exactly at an event some way into the log."""
    start = emu.scenario.now - timedelta(days=40)
    stamps = sorted(_instant(emu, provider, e) for e in emu.truth(provider))
    return int(start.timestamp()) * NS_PER_SECOND, stamps[len(stamps) * 3 // 5]


def _truth(emu: Emulator, provider: str, start: int, end: int | None = None) -> set[str]:
    stream = STREAM_OF[provider]
    return {
        served_id(stream, event)
        for event in emu.truth(provider)
        if start <= _instant(emu, provider, event)
        and (end is None or _instant(emu, provider, event) < end)
    }


def _ids(run: TapRun, provider: str) -> list[str]:
    stream = STREAM_OF[provider]
    return [str(record[STREAMS[stream][1][-1]]) for record in run.records(stream)]


def _config(emu: Emulator, start: int, end: int | None) -> dict:
    dates = {"start_date": format_instant(start)}
    if end is not None:
        dates["end_date"] = format_instant(end)
    return tap_config(emu, **dates)


def _data_requests(emu: Emulator, provider: str) -> list[dict[str, str]]:
    return [r.query for r in emu.requests(provider) if "audit" in r.path.lower()]


def _check_states(run: TapRun, end: int) -> None:
    assert run.exit_code == 0, run.stderr
    for state in run.states:
        assert state_problems(state, list(STREAMS)) == []
        assert all(value < end for value in _bookmarks(state)), "a bookmark at or past end_date"


@pytest.mark.parametrize(("provider", "switches"), PATHS, ids=lambda v: str(v or "") or None)
def test_a_bounded_run_reads_exactly_its_period_and_the_next_runs_read_on(
    emulator: t.Callable[..., Emulator], provider: str, switches: dict[str, t.Any]
) -> None:
    emu = _start(emulator, provider, **switches)
    start, end = _period(emu, provider)
    period = _truth(emu, provider, start, end)
    assert 0 < len(period) < len(emu.truth(provider))

    bounded = run_tap(_config(emu, start, end))
    _check_states(bounded, end)
    assert set(_ids(bounded, provider)) == period

    # The upper bound goes to the API as the provider declares it; never Socket's `from`.
    declared = DECLARED[provider]
    queries = _data_requests(emu, provider)
    sent = [q[declared.upper_bound_param] for q in queries if declared.upper_bound_param in q]
    if declared.upper_bound_trusted:
        assert len(sent) == len(queries), "every request bounded"
    # Rounded up at most to the API's precision (Nirvana: whole seconds).
    assert all(parse_instant(value) < end + NS_PER_SECOND for value in sent)
    assert all("from" not in query for query in queries)

    # Run again from its state: nothing new.
    again = run_tap(_config(emu, start, end), state=bounded.final_state)
    _check_states(again, end)
    assert _ids(again, provider) == []

    # The scheduled (unbounded) run from that state reads on from end_date, new events too.
    emu.add_events(provider, emu.provider(provider).orgs[0], 3)
    unbounded = run_tap(_config(emu, start, None), state=again.final_state)
    assert unbounded.exit_code == 0
    later = set(_ids(unbounded, provider))
    assert later >= _truth(emu, provider, end)
    assert later <= _truth(emu, provider, start), "nothing outside the truth"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_an_end_date_after_the_run_start_reads_like_none(
    emulator: t.Callable[..., Emulator], provider: str
) -> None:
    emu = _start(emulator, provider)
    start, _ = _period(emu, provider)
    future = parse_instant(format_instant(int(emu.scenario.now.timestamp()) * NS_PER_SECOND))
    future += 86_400 * NS_PER_SECOND
    run = run_tap(_config(emu, start, future))
    assert run.exit_code == 0
    assert set(_ids(run, provider)) == _truth(emu, provider, start)
    param = DECLARED[provider].upper_bound_param
    sent = [q[param] for q in _data_requests(emu, provider) if param in q]
    assert all(parse_instant(value) < future - 3600 * NS_PER_SECOND for value in sent)


@pytest.mark.parametrize("provider", SPLIT)
def test_a_bounded_read_split_into_ranges_ends_its_last_range_at_end_date(
    emulator: t.Callable[..., Emulator], provider: str
) -> None:
    """Ranges (the sort and bound documented, or proven by the first page) end at end_date:
    Nirvana's created_at_max goes out only there."""
    pages = 120  # enough for a split to pay off before end_date (page_chains.py)
    events = pages * t.cast("int", DECLARED[provider].page_size)
    emu = emulator(providers=(provider,), seed=37, events_per_org=events, span_days=30,
                   latency_s=0.03)  # fmt: skip
    start, end = _period(emu, provider)
    run = run_tap({**_config(emu, start, end), "concurrency": 8})
    _check_states(run, end)
    assert set(_ids(run, provider)) == _truth(emu, provider, start, end)
    param = t.cast("str", DECLARED[provider].upper_bound_param)
    sent = [parse_instant(q[param]) for q in _data_requests(emu, provider) if param in q]
    assert len(sent) > 1, "the read was split"
    assert max(sent) < end + NS_PER_SECOND
    assert max(sent) >= end, "the last range ends at end_date"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_killed_bounded_run_resumes_to_every_event_of_its_period(
    emulator: t.Callable[..., Emulator], provider: str
) -> None:
    emu = _start(emulator, provider)
    start, end = _period(emu, provider)
    config = _config(emu, start, end)
    period = _truth(emu, provider, start, end)
    emitted: set[str] = set()
    state: dict | None = None
    for kill_after in (7, 25, 40, None):
        run = run_tap_cli(config, state, kill_after_records=kill_after)
        if kill_after is None:
            _check_states(run, end)
        assert all(value < end for s in run.states for value in _bookmarks(s))
        emitted |= set(_ids(run, provider))
        state = run.final_state or state
    assert emitted == period


def test_end_date_is_refused_in_one_line_unless_after_start_date() -> None:
    def problems(**dates: str) -> list[str]:
        return [p for p in validate_settings(dates) if "end_date" in p]

    assert problems(start_date="2026-01-01T00:00:00Z", end_date="2026-04-01T00:00:00Z") == []
    assert problems(end_date="2026-04-01") == []  # a bare date: midnight UTC
    for end in ("2026-01-01T00:00:00Z", "2026-01-01T01:00:00+02:00", "2025-06-01"):
        found = problems(start_date="2026-01-01T00:00:00Z", end_date=end)
        assert len(found) == 1, found
        assert "is not after `start_date`" in found[0]
        assert "\n" not in found[0]
    assert problems(end_date="2026-04-01T00:00:00") == []  # no timezone: UTC, a warning
    warned = settings_warnings({"end_date": "2026-04-01T00:00:00"})
    assert len(warned) == 1
    assert "`end_date` (2026-04-01T00:00:00) has no timezone: read as UTC" in warned[0]
    assert problems(end_date="next tuesday") == [
        "setting `end_date`: not an ISO 8601 date-time: 'next tuesday'"
    ]
