"""The three reading strategies on synthetic pages: completeness, early stops, resumes.

These are unit tests of the state logic; the provider tests run the same logic over HTTP
against the emulator.
"""

from __future__ import annotations

import json
import random
import typing as t

import pytest

from tap_auditlogs.instants import NS_PER_SECOND, format_instant
from tap_auditlogs.strategies import (
    MAX_RECENT_IDS,
    Ascending,
    NewestFirst,
    Page,
    PartitionState,
    TimeWindows,
    prune_ids,
)

T0 = 1_700_000_000 * NS_PER_SECOND
MINUTE = 60 * NS_PER_SECOND


class KilledError(Exception):
    """Raised by the fake reader to play a kill after N records."""


class FakeLog:
    """An in-memory audit log served as pages in a chosen order."""

    def __init__(self, count: int, *, seed: int = 0, spacing: int = MINUTE) -> None:
        rng = random.Random(seed)
        self.events: list[dict] = []
        ts = T0
        for i in range(count):
            if not (i and rng.random() < 0.05):  # about 5% share the previous timestamp
                ts += rng.randint(1, spacing)
            self.events.append({"id": f"e{i}", "ts": ts})

    def add(self, ts: int) -> dict:
        event = {"id": f"e{len(self.events)}", "ts": ts}
        self.events.append(event)
        return event


class FakeReader:
    """Implements the strategies' Reader protocol over a FakeLog."""

    def __init__(
        self,
        log: FakeLog,
        *,
        order: str = "desc",
        page_size: int = 10,
        lookback: int = 0,
        start: int | None = None,
        kill_after: int | None = None,
        now: int | None = None,
    ) -> None:
        self.log = log
        self.order = order
        self.page_size = page_size
        self.lookback_ns = lookback
        self.start = start
        self.kill_after = kill_after
        self.now = now if now is not None else T0 + 10**6 * MINUTE
        self.raw_state: dict = {}
        self.checkpoints: list[dict] = []
        self.emitted: list[str] = []
        self.requests = 0
        self.warnings: list[str] = []

    # Reader protocol
    def lower_bound(self, bookmark: int | None) -> int | None:
        values = [v for v in (self.start,) if v is not None]
        if bookmark is not None:
            values.append(bookmark - self.lookback_ns)
        return max(values) if values else None

    def request_params(self, context: t.Any, lower: int | None, upper: int | None) -> dict:
        return {"lower": lower, "upper": upper}

    def pages(self, context: t.Any, params: dict, start_token: t.Any = None) -> t.Iterator[Page]:
        page = start_token or 0
        while True:
            events = self._ordered(params)
            chunk = events[page * self.page_size : (page + 1) * self.page_size]
            self.requests += 1
            more = (page + 1) * self.page_size < len(events)
            yield Page(
                records=[dict(e) for e in chunk], token=page, next_token=page + 1 if more else None
            )
            if not more or not chunk:
                return
            page += 1

    def _ordered(self, params: dict) -> list[dict]:
        events = list(self.log.events)
        if self.order == "asc":
            lower = params.get("lower")
            events = sorted(
                (e for e in events if lower is None or e["ts"] >= lower), key=lambda e: e["ts"]
            )
        elif self.order == "desc":
            events = sorted(events, key=lambda e: e["ts"], reverse=True)
        else:
            random.Random(7).shuffle(events)
        upper, lower = params.get("upper"), params.get("lower")
        if upper is not None:  # windows: both bounds honoured
            events = [e for e in events if lower <= e["ts"] <= upper]
        return events

    def instant_of(self, record: dict) -> int:
        return int(record["ts"])

    def id_of(self, record: dict) -> str:
        return str(record["id"])

    def state_of(self, context: t.Any) -> PartitionState:
        return PartitionState(self.raw_state, "ts")

    def checkpoint(self) -> None:
        self.checkpoints.append(_copy(self.raw_state))

    def warn_once(self, key: str, message: str, *args: object) -> None:
        self.warnings.append(key)

    def run_started_ns(self) -> int:
        return self.now

    # driving
    def run(self, strategy: t.Any) -> list[str]:
        """One run; on a kill, the state falls back to the last checkpoint."""
        emitted: list[str] = []
        try:
            for record in strategy.read(self, None):
                if self.kill_after is not None and len(emitted) >= self.kill_after:
                    raise KilledError
                emitted.append(record["id"])
        except KilledError:
            self.raw_state.clear()
            self.raw_state.update(_copy(self.checkpoints[-1]) if self.checkpoints else {})
        self.emitted += emitted
        return emitted


def _copy(state: dict) -> dict:
    return json.loads(json.dumps(state))


def _all_ids(log: FakeLog, start: int | None = None) -> set[str]:
    return {e["id"] for e in log.events if start is None or e["ts"] >= start}


STRATEGIES = {
    "asc": Ascending(),
    "desc": NewestFirst(),
    "windows": TimeWindows(window_ns=30 * MINUTE * 60, default_span_ns=10**7 * MINUTE),
}
ORDER_FOR = {"asc": "asc", "desc": "desc", "windows": "desc"}


@pytest.mark.parametrize("name", list(STRATEGIES))
def test_first_run_emits_every_event_once(name: str) -> None:
    log = FakeLog(237)
    reader = FakeReader(log, order=ORDER_FOR[name])
    emitted = reader.run(STRATEGIES[name])
    assert sorted(emitted) == sorted(_all_ids(log))
    assert len(emitted) == len(set(emitted))


@pytest.mark.parametrize("name", list(STRATEGIES))
def test_second_run_emits_only_new_events(name: str) -> None:
    log = FakeLog(150)
    newest = max(e["ts"] for e in log.events)
    reader = FakeReader(log, order=ORDER_FOR[name], lookback=5 * MINUTE, now=newest + MINUTE // 2)
    reader.run(STRATEGIES[name])
    assert reader.run(STRATEGIES[name]) == []
    fresh = [log.add(newest + MINUTE), log.add(newest + 2 * MINUTE)]
    late = log.add(newest - MINUTE)  # late: older than the bookmark, inside the lookback
    reader.now = newest + 3 * MINUTE  # the clock moved on (windows end at "now")
    second = reader.run(STRATEGIES[name])
    assert sorted(second) == sorted([e["id"] for e in [*fresh, late]])


def test_newest_first_second_run_costs_one_request() -> None:
    log = FakeLog(300)
    reader = FakeReader(log, order="desc", lookback=5 * MINUTE, page_size=100)
    reader.run(NewestFirst())
    reader.requests = 0
    reader.run(NewestFirst())
    assert reader.requests == 1


@pytest.mark.parametrize("name", list(STRATEGIES))
@pytest.mark.parametrize("seed", range(6))
def test_killed_runs_resume_without_loss(name: str, seed: int) -> None:
    rng = random.Random(seed)
    log = FakeLog(260, seed=seed)
    reader = FakeReader(log, order=ORDER_FOR[name], lookback=2 * MINUTE)
    for _ in range(60):
        reader.kill_after = rng.randint(0, 80)
        before = len(reader.emitted)
        if rng.random() < 0.3:  # events keep arriving between runs
            log.add(max(e["ts"] for e in log.events) + rng.randint(1, MINUTE))
        reader.run(STRATEGIES[name])
        if len(reader.emitted) - before < reader.kill_after:
            break  # a run finished without being killed
    reader.kill_after = None
    reader.run(STRATEGIES[name])
    assert set(reader.emitted) == _all_ids(log)


@pytest.mark.parametrize("name", ["asc", "desc"])
def test_unordered_pages_fall_back_to_a_full_read(name: str) -> None:
    log = FakeLog(120)
    reader = FakeReader(log, order="random", lookback=MINUTE)
    reader.raw_state.update(
        {"replication_key": "ts", "replication_key_value": format_instant(log.events[60]["ts"])}
    )
    emitted = reader.run(STRATEGIES[name])
    expected = {e["id"] for e in log.events if e["ts"] >= log.events[60]["ts"] - MINUTE}
    assert set(emitted) == expected
    assert "order" in reader.warnings


def test_newest_first_resume_restarts_when_the_saved_page_moved() -> None:
    log = FakeLog(100)
    reader = FakeReader(log, order="desc", kill_after=35)
    reader.run(NewestFirst())
    assert reader.raw_state.get("pending_pass")
    # Some of the newest events vanish: unread events move up past the saved page.
    newest_first = sorted(log.events, key=lambda e: e["ts"], reverse=True)
    for event in newest_first[:15]:
        log.events.remove(event)
    reader.kill_after = None
    reader.run(NewestFirst())
    assert set(reader.emitted) >= _all_ids(log)
    assert "resume" in reader.warnings


def test_start_date_is_inclusive() -> None:
    log = FakeLog(80)
    start = log.events[30]["ts"]
    for name, strategy in STRATEGIES.items():
        reader = FakeReader(log, order=ORDER_FOR[name], start=start)
        assert set(reader.run(strategy)) == _all_ids(log, start), name


def test_prune_ids_caps_and_keeps_the_newest() -> None:
    ids = {f"x{i}": i for i in range(MAX_RECENT_IDS + 50)}
    kept = prune_ids(ids, floor=None)
    assert len(kept) == MAX_RECENT_IDS
    assert "x0" not in kept
    assert f"x{MAX_RECENT_IDS + 49}" in kept
    assert prune_ids({"a": 1, "b": 5}, floor=3) == {"b": 5}
