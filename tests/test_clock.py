"""The bookmark never runs ahead of the clock (issue 20, item 3).

* A property test drives every strategy over generated event streams (far past, near,
  hours and years ahead, equal stamps, 0-9 fractional digits) with kills: every state
  written passes the tap's own check, and a resume from any of them loses no event.
* Through the emulator, for every provider: an event stamped hours or years ahead, a
  server clock that is off (the ``Date`` header), and a lower bound read as exclusive or
  rounded to microseconds.
"""

from __future__ import annotations

import logging
import typing as t
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tap_auditlogs.core.instants import NS_PER_SECOND, format_instant, now_instant, parse_instant
from tap_auditlogs.engine.clock import clock_offset, duration
from tap_auditlogs.engine.newest_first import NewestFirst
from tap_auditlogs.engine.partition_reader import PartitionReader
from tap_auditlogs.engine.state import PartitionState, state_problems
from tap_auditlogs.engine.strategies import Ascending
from tap_auditlogs.engine.verified import VerifiedAscending
from tap_auditlogs.engine.windows import TimeWindows
from tests.conftest import run_tap, tap_config
from tests.emulator.registry import available_providers
from tests.test_chaos import STREAMS
from tests.test_strategies import FakeLog, FakeReader, PlayedReader, _copy

if t.TYPE_CHECKING:
    from tests.conftest import TapRun
    from tests.emulator import Emulator

MINUTE = 60 * NS_PER_SECOND
HOUR = 60 * MINUTE
DAY = 24 * HOUR
YEAR = 365 * DAY
NOW = now_instant()
LATEST = parse_instant("9999-12-31T23:59:59.999999999Z")

# ---- property: every STATE written is accepted, and a resume from it loses nothing ---------

STAMPS = st.one_of(
    st.integers(NOW - 10 * YEAR, NOW - DAY),  # far past
    st.integers(NOW - DAY, NOW),  # near
    st.integers(NOW + 1, NOW + 12 * HOUR),  # hours ahead (clock skew)
    st.integers(NOW + YEAR, LATEST),  # years ahead, up to 9999
)
EVENTS = st.lists(
    st.tuples(STAMPS, st.integers(0, 9), st.booleans()),  # instant, digits, same as previous
    min_size=1,
    max_size=40,
)
#: name -> (strategy, reader order or verified mode)
READS: dict[str, tuple[t.Any, str]] = {
    "asc": (Ascending(), "asc"),
    "desc": (NewestFirst(), "desc"),
    "windows": (TimeWindows(window_ns=400 * DAY, default_span_ns=11 * YEAR), "desc"),
    "verified-honoured": (VerifiedAscending(), "honoured"),
    "verified-desc": (VerifiedAscending(), "ignored-desc"),
    "verified-random": (VerifiedAscending(), "ignored-random"),
}


class Recorder:
    """Reads a log to the end with one strategy, recording (records so far, state) at
    every checkpoint; ``kill_after`` stops it there, as a SIGKILL would."""

    def __init__(self, make: t.Callable[[], FakeReader], strategy: t.Any) -> None:
        self.make = make
        self.strategy = strategy

    def run(self, state: dict, kill_after: int | None = None) -> tuple[list[str], list, int]:
        """(ids emitted, [(emitted before it, state)], future-dated warnings)."""
        fake = self.make()
        fake.raw_state = _copy(state)
        emitted: list[str] = []
        saved: list[tuple[int, dict]] = []

        def checkpoint() -> None:
            saved.append((len(emitted), _copy(fake.raw_state)))

        reader = PartitionReader(fake, None, PartitionState(fake.raw_state, "ts"), fake, checkpoint)
        for record in self.strategy.read(reader):
            if kill_after is not None and len(emitted) >= kill_after:
                break
            emitted.append(record["id"])
        future = sum(key.startswith("future-dated") for key in fake.warnings)
        return emitted, saved, future


def _fake(mode: str, log: FakeLog, lookback: int, page_size: int) -> FakeReader:
    options = {"lookback": lookback, "page_size": page_size, "now": NOW}
    if mode in ("asc", "desc"):
        return FakeReader(log, order=mode, **options)
    filters, _, order = mode.partition("-")
    return PlayedReader(log, filters=filters, order=order or "asc", **options)


def _log(events: list[tuple[int, int, bool]]) -> FakeLog:
    log = FakeLog(0)
    previous = None
    for stamp, digits, tie in events:
        ts = previous if tie and previous is not None else stamp - stamp % 10 ** (9 - digits)
        # The instant as the API would send it, with that many digits, read back.
        log.add(parse_instant(format_instant(ts, digits=digits)))
        previous = ts
    return log


def _state_ok(state: dict) -> list[str]:
    return state_problems({"bookmarks": {"s": state}}, ["s"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    events=EVENTS,
    name=st.sampled_from(sorted(READS)),
    lookback=st.sampled_from([0, 5 * MINUTE]),
    page_size=st.integers(1, 7),
    kills=st.lists(st.integers(0, 30), max_size=4),
)
def test_every_state_written_is_accepted_and_resumes_without_loss(
    events: list[tuple[int, int, bool]], name: str, lookback: int, page_size: int, kills: list
) -> None:
    strategy, mode = READS[name]
    log = _log(events)
    expected = {e["id"] for e in log.events}
    if name == "windows":  # a window never reaches past the run's start: read when it comes
        expected = {e["id"] for e in log.events if NOW - 11 * YEAR <= e["ts"] <= NOW}
    recorder = Recorder(lambda: _fake(mode, log, lookback, page_size), strategy)

    # Killed runs, each resumed from the last state written, then one to the end.
    state: dict = {}
    emitted: set[str] = set()
    for kill in [*kills, None]:
        ids, saved, future = recorder.run(state, kill)
        emitted |= set(ids)
        assert future <= 1, "one WARNING per partition"
        for _, written in saved:
            assert _state_ok(written) == [], written
            bookmark = written.get("replication_key_value")
            assert bookmark is None or parse_instant(bookmark) <= NOW, "never past the clock"
        state = saved[-1][1] if saved else state
    assert emitted >= expected

    # A resume from every state a full run writes loses nothing.
    ids, saved, _ = recorder.run({})
    for before, written in saved:
        resumed, _, _ = recorder.run(written)
        assert set(ids[:before]) | set(resumed) >= expected


def test_a_future_event_is_emitted_and_warned_once_per_partition() -> None:
    log = FakeLog(30, seed=3)
    for event in log.events:
        event["ts"] = NOW - DAY + event["ts"] - log.events[0]["ts"]
    skewed = log.add(NOW + 3 * HOUR)
    fake = FakeReader(log, order="asc", now=NOW, page_size=4)
    emitted = fake.run(Ascending())
    assert skewed["id"] in emitted
    assert fake.warnings.count("future-dated:") == 1
    assert parse_instant(fake.raw_state["replication_key_value"]) == NOW
    assert fake.raw_state["recent_ids"][skewed["id"]] == format_instant(NOW)
    fresh = log.add(NOW + 1)  # the next run's clock is later: a new event just after NOW
    fake.now = NOW + MINUTE
    assert fake.run(Ascending()) == [fresh["id"]], "nothing skipped, the skewed one not again"


def test_clock_offset_follows_the_date_header_within_limits() -> None:
    said: list[str] = []

    def warn(key: str, message: str, *args: object) -> None:
        said.append(message % args)

    def date(offset_s: float) -> str:
        from email.utils import formatdate  # noqa: PLC0415

        return formatdate(now_instant() / NS_PER_SECOND + offset_s, usegmt=True)

    assert clock_offset(None, warn) == 0
    assert clock_offset(date(0), warn) == 0
    assert said == []
    behind = clock_offset(date(-7200), warn)
    assert abs(behind + 7200 * NS_PER_SECOND) < 3 * NS_PER_SECOND
    assert "2 h 0 min behind the local clock" in said[-1]
    assert clock_offset(date(3 * 86_400 + 30), warn) == 0, "never followed ahead"
    assert "3 days 0 h ahead" in said[-1]
    assert clock_offset("yesterday-ish", warn) == 0
    assert "unreadable" in said[-1]
    assert duration(8016 * YEAR + 3 * DAY) == "8016 years 3 days"


# ---- through the emulator, for every provider --------------------------------------------

PROVIDERS = sorted(available_providers())
STREAM_OF = {provider: stream for stream, (provider, _) in STREAMS.items()}
FAR_AHEAD_S = 2.6e11  # 9999-12-30


def _start(emulator: t.Callable[..., Emulator], provider: str, **switches: t.Any) -> Emulator:
    one_org = available_providers()[provider].one_org
    return emulator(seed=20, providers=[provider], events_per_org=120, **one_org, **switches)


def _ids(run: TapRun, provider: str) -> list[str]:
    stream = STREAM_OF[provider]
    fields = STREAMS[stream][1]
    return [str(record[fields[-1]]) for record in run.records(stream)]


def _bookmarks(state: dict) -> list[int]:
    """Every instant a state holds (bookmarks, recent ids, pending passes)."""
    found: list[int] = []
    for stream_state in state.get("bookmarks", {}).values():
        for part in [stream_state, *stream_state.get("partitions", [])]:
            values = [part.get("replication_key_value")]
            values += list((part.get("recent_ids") or {}).values())
            pending = part.get("pending_pass") or {}
            values += [pending.get("ceiling"), pending.get("oldest")]
            values += list((pending.get("ceiling_ids") or {}).values())
            found += [parse_instant(v) for v in values if v]
    return found


def _check_states(run: TapRun, limit: int) -> None:
    assert run.exit_code == 0
    names = list(STREAMS)
    for state in run.states:
        assert state_problems(state, names) == []
        assert all(value <= limit for value in _bookmarks(state)), "nothing past the clock"


def _warnings(caplog: pytest.LogCaptureFixture, words: str) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and words in r.getMessage()
    ]


@pytest.mark.parametrize("ahead_s", [3 * 3600.0, FAR_AHEAD_S], ids=["hours", "years"])
@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_future_dated_event_never_moves_the_bookmark_past_the_clock(
    emulator: t.Callable[..., Emulator],
    caplog: pytest.LogCaptureFixture,
    provider: str,
    ahead_s: float,
) -> None:
    emu = _start(emulator, provider, **{f"{provider}_future_event_s": ahead_s})
    skewed = max(emu.truth(provider), key=lambda event: event.at)
    start = emu.scenario.now - timedelta(days=40)
    config = tap_config(emu, start_date=format_instant(int(start.timestamp()) * NS_PER_SECOND))
    first = run_tap(config)
    _check_states(first, now_instant())
    emitted = set(_ids(first, provider))
    in_reach = {e.id for e in emu.truth(provider)} - {skewed.id}
    assert emitted >= in_reach
    if available_providers()[provider].serves_future_events:
        assert skewed.id in emitted
        warned = _warnings(caplog, "ahead of the clock")
        assert len(warned) == 1, warned
        assert repr(skewed.id) in warned[0]

    # New events after the skewed one's read are not skipped; nothing comes out twice.
    org = emu.provider(provider).orgs[0]
    fresh = {e.id for e in emu.add_events(provider, org, 3)}
    second = run_tap(config, state=first.final_state)
    _check_states(second, now_instant())
    assert set(_ids(second, provider)) >= fresh
    assert skewed.id not in _ids(second, provider), "dropped by id on the re-read"
    assert len(_ids(second, provider)) == len(set(_ids(second, provider)))


@pytest.mark.parametrize("skew_s", [-7200.0, 2 * 86_400.0], ids=["behind", "days-ahead"])
@pytest.mark.parametrize("provider", PROVIDERS)
def test_the_api_clock_bounds_the_bookmarks(
    emulator: t.Callable[..., Emulator],
    caplog: pytest.LogCaptureFixture,
    provider: str,
    skew_s: float,
) -> None:
    emu = _start(emulator, provider, **{f"{provider}_clock_skew_s": skew_s})
    start = emu.scenario.now - timedelta(days=40)
    config = tap_config(emu, start_date=format_instant(int(start.timestamp()) * NS_PER_SECOND))
    first = run_tap(config)
    # Behind: the server's clock (a second of rounding); ahead: the local clock.
    limit = now_instant() + min(int(skew_s * NS_PER_SECOND), 0) + NS_PER_SECOND
    _check_states(first, limit)
    assert set(_ids(first, provider)) == {e.id for e in emu.truth(provider)}
    assert len(_warnings(caplog, "the API's clock is")) == 1
    # Events stamped now, by the real clock, are not skipped by the next run.
    fresh = {e.id for e in emu.add_events(provider, emu.provider(provider).orgs[0], 3)}
    again = run_tap(config, state=first.final_state)
    _check_states(again, now_instant())
    if skew_s < 0 and not available_providers()[provider].serves_future_events:
        return  # windows end at the API's clock: these are read once it has passed them
    assert set(_ids(again, provider)) >= fresh


#: provider -> the switch that makes its server read the lower bound less kindly.
UNKIND_BOUNDS: dict[str, list[tuple[str, str]]] = {
    "torq": [("torq_start_time", "rounded_us")],
    "nirvana": [("nirvana_min_bound", "exclusive"), ("nirvana_min_bound", "rounded_us")],
    "configcat": [("configcat_bounds", "exclusive")],
}


def _awkward(ts: str) -> bool:
    """An instant an unkind bound misses: whole seconds, or nanoseconds that round up."""
    ns = parse_instant(ts)
    return ns % NS_PER_SECOND == 0 or (ns % 1000 > 500)


@pytest.mark.parametrize(
    ("switch", "value"), [pair for pairs in UNKIND_BOUNDS.values() for pair in pairs]
)
def test_the_event_exactly_at_start_date_is_read_whatever_the_bound(
    emulator: t.Callable[..., Emulator], switch: str, value: str
) -> None:
    provider = switch.split("_", maxsplit=1)[0]
    emu = _start(emulator, provider, **{switch: value})
    truth = sorted(emu.truth(provider), key=lambda e: parse_instant(e.ts))
    at = next(e for e in truth[len(truth) // 3 :] if _awkward(e.ts))
    run = run_tap(tap_config(emu, start_date=at.ts))
    assert run.exit_code == 0
    ids = set(_ids(run, provider))
    assert at.id in ids
    since = parse_instant(at.ts)
    assert ids == {e.id for e in truth if parse_instant(e.ts) >= since}, "none older"


@pytest.mark.parametrize(
    ("switch", "value"), [pair for pairs in UNKIND_BOUNDS.values() for pair in pairs]
)
def test_a_resume_reads_the_event_exactly_at_the_bookmark_whatever_the_bound(
    emulator: t.Callable[..., Emulator], switch: str, value: str
) -> None:
    """Without a lookback, the next run asks from the bookmark itself: the events sharing
    its instant (ties the last run did not reach) must still come back."""
    provider = switch.split("_", maxsplit=1)[0]
    emu = _start(emulator, provider, **{switch: value})
    truth = sorted(emu.truth(provider), key=lambda e: parse_instant(e.ts))
    at = next(e for e in truth[len(truth) // 2 :] if _awkward(e.ts))
    config = tap_config(emu, start_date=truth[0].ts, **{provider: {"lookback_seconds": 0}})
    first = run_tap(config)
    assert first.exit_code == 0
    state = _copy(first.final_state)
    for stream_state in state["bookmarks"].values():  # as if the run had stopped at `at`
        for part in [stream_state, *stream_state.get("partitions", [])]:
            if part.get("replication_key_value"):
                part["replication_key_value"] = format_instant(parse_instant(at.ts))
                part["recent_ids"] = {}
    resumed = run_tap(config, state=state)
    assert resumed.exit_code == 0
    since = parse_instant(at.ts)
    assert set(_ids(resumed, provider)) == {e.id for e in truth if parse_instant(e.ts) >= since}
