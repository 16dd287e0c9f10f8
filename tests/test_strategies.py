"""The three reading strategies on synthetic pages: completeness, early stops, resumes.

These are unit tests of the state logic; the provider tests run the same logic over HTTP
against the emulator.
"""

from __future__ import annotations

import json
import random
import typing as t

import pytest

from tap_auditlogs.core.errors import ProviderError
from tap_auditlogs.core.instants import NS_PER_SECOND, format_instant, parse_instant
from tap_auditlogs.core.types import Page
from tap_auditlogs.engine.newest_first import NewestFirst
from tap_auditlogs.engine.partition_reader import PartitionReader
from tap_auditlogs.engine.state import MAX_RECENT_IDS, PartitionState, prune_ids
from tap_auditlogs.engine.strategies import Ascending
from tap_auditlogs.engine.verified import VerifiedAscending
from tap_auditlogs.engine.windows import TimeWindows

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
    """A stream's declarations and its page source over a FakeLog (``partition_reader.py``'s
    ``Declarations`` and ``PageSource``); ``run`` reads it as the tap does, through a
    ``PartitionReader`` holding ``raw_state``."""

    end_ns: int | None = None  # end_date
    upper_bound_trusted = False

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
        self.prefetched: list[tuple[dict, int | None]] = []

    # Declarations and PageSource
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
        if self.order == "as-stored":
            lower = params.get("lower")
            events = [e for e in events if lower is None or e["ts"] >= lower]
        elif self.order == "asc":
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

    def checkpoint(self) -> None:
        self.checkpoints.append(_copy(self.raw_state))

    def warn_once(self, key: str, message: str, *args: object) -> None:
        self.warnings.append(key)

    def info_once(self, key: str, message: str, *args: object) -> None:
        pass

    def run_started_ns(self) -> int:
        return self.now

    def clock_ns(self) -> int:
        return self.now

    def prefetch(self, context: t.Any, requests: list[tuple[dict, int | None]]) -> None:
        self.prefetched.extend(requests)

    def split_points(self, context: t.Any, first: Page) -> list[int]:
        return []

    # driving
    def run(self, strategy: t.Any) -> list[str]:
        """One run; on a kill, the state falls back to the last checkpoint."""
        emitted: list[str] = []
        reader = PartitionReader(
            self, None, PartitionState(self.raw_state, "ts"), self, self.checkpoint
        )
        try:
            for record in strategy.read(reader):
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


# ---- VerifiedAscending: a lower bound and an ascending sort the API may ignore -------------


class PlayedReader(FakeReader):
    """A FakeReader playing an API asked for ``lower`` and oldest first, which it may ignore.

    ``filters``: "honoured" (only events at or after the bound, oldest first) or "ignored"
    (the whole log in ``order``). ``break_after``: the first pages of the pass are oldest
    first, then from that many events on the rest comes shuffled, with every third of the
    earlier events moved among them (a mid-way break that hides older events further on).
    """

    def __init__(
        self,
        log: FakeLog,
        *,
        filters: str = "honoured",
        order: str = "asc",
        break_after: int | None = None,
        early: int = 0,
        **options: t.Any,
    ) -> None:
        super().__init__(log, order=order, **options)
        self.filters = filters
        self.break_after = break_after
        self.early = early  # the server applies the bound this much earlier (rounding)
        self.infos: list[str] = []

    def _ordered(self, params: dict) -> list[dict]:
        lower = params.get("lower")
        if self.filters == "honoured":
            floor = None if lower is None else lower - self.early
            events = sorted(
                (e for e in self.log.events if floor is None or e["ts"] >= floor),
                key=lambda e: e["ts"],
            )
        else:
            events = super()._ordered({})
        if self.break_after is not None:
            head, rest = events[: self.break_after], events[self.break_after :]
            tail = head[::3] + rest
            random.Random(3).shuffle(tail)
            events = [e for i, e in enumerate(head) if i % 3] + tail
        return events

    def info_once(self, key: str, message: str, *args: object) -> None:
        self.infos.append(message % args if args else message)

    @property
    def path(self) -> str:
        """The path the last run logged."""
        return self.infos[-1].split("(path: ")[1].rstrip(").")


MODES = {  # name -> (filters, order, path the first run takes)
    "honoured": ("honoured", "asc", "ascending"),
    "ignored-desc": ("ignored", "desc", "newest-first"),
    "ignored-asc": ("ignored", "asc", "ascending"),
    "ignored-random": ("ignored", "random", "full read"),
}


def _played(mode: str, log: FakeLog, **options: t.Any) -> PlayedReader:
    filters, order, _ = MODES[mode]
    return PlayedReader(log, filters=filters, order=order, **options)


@pytest.mark.parametrize("mode", list(MODES))
def test_verified_first_and_second_runs(mode: str) -> None:
    log = FakeLog(237)
    newest = max(e["ts"] for e in log.events)
    reader = _played(mode, log, lookback=5 * MINUTE)
    first = reader.run(VerifiedAscending())
    assert sorted(first) == sorted(_all_ids(log))
    assert len(first) == len(set(first))
    assert reader.path == MODES[mode][2]
    assert len(reader.infos) == 1, "the path is logged once per run"
    assert reader.run(VerifiedAscending()) == []
    fresh = [log.add(newest + MINUTE), log.add(newest + 2 * MINUTE)]
    late = log.add(newest - MINUTE)  # older than the bookmark, inside the lookback
    second = reader.run(VerifiedAscending())
    assert sorted(second) == sorted(e["id"] for e in [*fresh, late])


@pytest.mark.parametrize(
    ("mode", "requests"),
    [("honoured", 1), ("ignored-desc", 1), ("ignored-asc", 3), ("ignored-random", 3)],
)
def test_verified_second_run_request_count(mode: str, requests: int) -> None:
    log = FakeLog(300)
    reader = _played(mode, log, lookback=5 * MINUTE, page_size=100)
    reader.run(VerifiedAscending())
    reader.requests = 0
    assert reader.run(VerifiedAscending()) == []
    assert reader.requests == requests  # ignored, not newest first: the whole log


def test_verified_honoured_moves_the_bookmark_page_by_page() -> None:
    """Pages that rise from a bound seen honoured (here start_date) prove the order."""
    log = FakeLog(95)
    reader = _played("honoured", log, start=T0)
    reader.run(VerifiedAscending())
    assert reader.path == "ascending"
    assert "page by page" in reader.infos[-1]
    bookmarks = [c["replication_key_value"] for c in reader.checkpoints]
    assert len(bookmarks) >= 10
    assert bookmarks == sorted(bookmarks)
    assert len(set(bookmarks)) >= 9, "one new bookmark per page"


@pytest.mark.parametrize(
    ("mode", "tied"),
    [("honoured", 0), ("ignored-asc", 0), ("ignored-desc", 25), ("ignored-random", 0)],
)
def test_verified_order_not_proven_moves_the_bookmark_only_at_the_end(mode: str, tied: int) -> None:
    """No bound sent yet, a bound ignored, or newest first whose first pages share one
    timestamp (they show no order): nothing proves the order, so no bookmark is committed
    before the pass is complete (a kill before the disorder shows would skip events)."""
    log = FakeLog(95)
    newest = max(e["ts"] for e in log.events)
    for _ in range(tied):
        log.add(newest + MINUTE)
    reader = _played(mode, log, page_size=10)
    first = reader.run(VerifiedAscending())
    assert sorted(first) == sorted(_all_ids(log))
    assert [c for c in reader.checkpoints if c.get("replication_key_value")] == [
        reader.checkpoints[-1]
    ]


def test_verified_unordered_moves_the_bookmark_only_at_the_end() -> None:
    log = FakeLog(95)
    reader = _played("ignored-random", log)
    reader.run(VerifiedAscending())
    assert [c for c in reader.checkpoints if c.get("replication_key_value")] == [
        reader.checkpoints[-1]
    ]
    assert "order" in reader.warnings


def test_verified_slack_covers_a_bound_rounded_down() -> None:
    log = FakeLog(120)
    reader = _played("honoured", log, early=10 * MINUTE)  # the server rounds the bound down
    reader.run(VerifiedAscending())
    reader.run(VerifiedAscending(bound_slack_ns=NS_PER_SECOND))
    assert "lower bound is ignored" in reader.infos[-1]
    reader.run(VerifiedAscending(bound_slack_ns=10 * MINUTE))
    assert "nothing older than the lower bound" in reader.infos[-1]


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("seed", range(5))
def test_verified_killed_runs_resume_without_loss(mode: str, seed: int) -> None:
    rng = random.Random(seed)
    log = FakeLog(260, seed=seed)
    reader = _played(mode, log, lookback=2 * MINUTE)
    for _ in range(60):
        reader.kill_after = rng.randint(0, 80)
        before = len(reader.emitted)
        if rng.random() < 0.3:  # events keep arriving between runs
            log.add(max(e["ts"] for e in log.events) + rng.randint(1, MINUTE))
        reader.run(VerifiedAscending())
        if len(reader.emitted) - before < reader.kill_after:
            break  # a run finished without being killed
    reader.kill_after = None
    reader.run(VerifiedAscending())
    assert set(reader.emitted) == _all_ids(log)


def test_verified_finishes_a_pending_newest_first_pass_first() -> None:
    log = FakeLog(100)
    reader = _played("ignored-desc", log, kill_after=35)
    reader.run(VerifiedAscending())
    assert reader.raw_state.get("pending_pass")
    reader.kill_after = None
    reader.run(VerifiedAscending())
    assert reader.path == "newest-first, resumed"
    assert set(reader.emitted) == _all_ids(log)
    assert "pending_pass" not in reader.raw_state


def test_verified_break_mid_way_reads_on_to_the_end() -> None:
    log = FakeLog(150)
    reader = _played("honoured", log, lookback=MINUTE)
    reader.run(VerifiedAscending())
    start = reader.raw_state["replication_key_value"]
    newest = max(e["ts"] for e in log.events)
    fresh = [log.add(newest + i * MINUTE) for i in range(1, 121)]
    reader.break_after = 45  # the second run's pass: 30 oldest first, then no order
    second = reader.run(VerifiedAscending())
    assert reader.path == "ascending"
    assert set(second) >= {e["id"] for e in fresh}
    # Out of order, ids re-read inside the lookback may come again (at least once).
    floor = parse_instant(start) - MINUTE
    assert set(second) <= {e["id"] for e in log.events if e["ts"] >= floor}
    assert "order" in reader.warnings
    # The break took the bookmark back to the start at once, and moved it at the end only.
    after_break = [c["replication_key_value"] for c in reader.checkpoints[-2:]]
    assert after_break[0] == start
    assert after_break[1] > start


@pytest.mark.parametrize("kill_after", [31, 40, 60, 100])
def test_verified_break_mid_way_then_kill_loses_nothing(kill_after: int) -> None:
    log = FakeLog(150)
    reader = _played("honoured", log)
    reader.run(VerifiedAscending())
    start = reader.raw_state["replication_key_value"]
    newest = max(e["ts"] for e in log.events)
    fresh = {log.add(newest + i * MINUTE)["id"] for i in range(1, 121)}
    reader.break_after, reader.kill_after = 45, kill_after
    killed = reader.run(VerifiedAscending())
    assert len(killed) == kill_after
    assert reader.raw_state["replication_key_value"] == start, "back to the start"
    reader.break_after = reader.kill_after = None
    reader.run(VerifiedAscending())
    assert set(reader.emitted) >= fresh


@pytest.mark.parametrize("kill_after", [22, 30, 45, 70])
def test_ascending_break_after_page_commits_then_kill_loses_nothing(kill_after: int) -> None:
    """Ascending alone (Torq): bookmarks moved page by page are taken back at a break.

    The kills fall after the first out-of-order record was read (the 21st). A kill before
    the disorder shows cannot be helped: the tap cannot know yet, and only the lookback
    covers an API that breaks the order it promised (docs/guarantees.md: what is not promised).
    """
    log = FakeLog(120)
    reader = FakeReader(log, order="asc", lookback=MINUTE)
    reader.run(Ascending())
    newest = max(e["ts"] for e in log.events)
    for i in range(1, 91):
        log.add(newest + i * MINUTE)
    ordered = sorted(log.events, key=lambda e: e["ts"])
    old, new = ordered[:-90], ordered[-90:]
    # The next pass serves every other one of 40 new events in order (the bookmark is
    # committed past the ones it leaves out), then the rest shuffled: those left out come
    # after the break, older than the committed bookmark.
    tail = new[1:40:2] + new[40:]
    random.Random(5).shuffle(tail)
    log.events = old + new[0:40:2] + tail
    reader.order = "as-stored"
    reader.kill_after = kill_after
    reader.run(Ascending())
    reader.kill_after = None
    reader.run(Ascending())
    assert set(reader.emitted) == _all_ids(log)


def test_newest_first_restarts_when_the_saved_token_is_refused() -> None:
    """An expired cursor (HTTP 400) in pending_pass must not block every later run."""
    log = FakeLog(100)
    reader = FakeReader(log, order="desc", kill_after=35)
    reader.run(NewestFirst())
    assert reader.raw_state.get("pending_pass", {}).get("page_token") is not None

    class RefusingReader(FakeReader):
        def pages(self, context, params, start_token=None):  # type: ignore[no-untyped-def]
            if start_token is not None:
                self.requests += 1
                raise ProviderError("HTTP 400: cursor expired", status=400)
            yield from super().pages(context, params, start_token)

    again = RefusingReader(log, order="desc")
    again.raw_state = reader.raw_state
    again.run(NewestFirst())
    assert set(reader.emitted) | set(again.emitted) == _all_ids(log)
    assert "resume-refused" in again.warnings
    assert "pending_pass" not in again.raw_state
