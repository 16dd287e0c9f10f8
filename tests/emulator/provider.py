"""The provider plug-in base: ground-truth store, routes, auth hooks, request/response types.

A provider module defines a `Provider` subclass and exposes it as module-level `PROVIDER`.
The subclass declares `name`, `api_root`, `switches` and `routes` (tables), and implements
`setup`, `make_event`, `authenticate`, `error` and `tap_config`; the base does the rest.
"""

from __future__ import annotations

import random
import re
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from typing import Any, ClassVar, Protocol

from .awkward import make_awkward, make_drifted
from .odd import make_odd, odd_kind
from .scenario import COMMON_SWITCHES, Scenario, Switch, as_utc

UTC = timezone.utc
TIE_RATE = 0.02  # share of events that repeat their predecessor's timestamp
MIN_AGE = timedelta(hours=1)  # the newest generated event is at least this old
LATEST = datetime(9999, 12, 30, tzinfo=timezone.utc)  # the latest a future event is stamped
VIEW_CACHE_VIEWS = 32  # filtered, sorted views kept per provider (least recently used go first)
VIEW_CACHE_ITEMS = 4_000_000  # and at most this many event references in all of them


def utcnow() -> datetime:
    """The current time, aware UTC."""
    return datetime.now(UTC)


def iso_ms(at: datetime) -> str:
    """`2026-11-20T10:11:12.345Z`."""
    at = at.astimezone(UTC)
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def spread_times(rng: random.Random, n: int, now: datetime, span_days: float) -> list[datetime]:
    """`n` ascending instants over the last `span_days` before `now - MIN_AGE`, with ties."""
    newest = now - MIN_AGE
    span_s = max(timedelta(days=span_days) - MIN_AGE, timedelta(minutes=1)).total_seconds()
    ages = sorted((rng.uniform(0, span_s) for _ in range(n)), reverse=True)
    times = [newest - timedelta(seconds=age) for age in ages]
    if n >= 2:
        for i in sorted(rng.sample(range(1, n), k=max(1, round(n * TIE_RATE)))):
            times[i] = times[i - 1]
    return times


@dataclass(frozen=True)
class TruthEvent:
    """One event that exists at the provider: partition, primary key, timestamp, served item."""

    org: str
    id: str
    ts: str  # the timestamp string exactly as served
    item: dict[str, Any]  # the object the API serves (shared with the emulator: read only)
    at: datetime  # `ts` as an aware datetime


@dataclass(frozen=True)
class ApiRequest:
    """A request as a provider sees it; `path` is below the provider prefix."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: bytes = b""


@dataclass
class Response:
    """A provider's answer; `body` is JSON-serialisable, or bytes sent as they are."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"


@dataclass(frozen=True)
class Route:
    """`method` + `pattern` (full match on the path below the prefix) -> handler method name."""

    method: str
    pattern: str
    handler: str
    auth: bool = True  # checked by `Provider.authenticate`
    billable: bool = True  # counts toward the provider's quota window

    def match(self, req: ApiRequest) -> dict[str, str] | None:
        """Path parameters if this route serves `req`, else None."""
        found = re.fullmatch(self.pattern, req.path)
        return found.groupdict() if found and req.method == self.method else None


@dataclass(frozen=True)
class QuotaStatus:
    """The caller's quota window."""

    remaining: int
    limit: int
    resets_at: datetime


class ViewCache:
    """An LRU of an org's filtered, sorted event lists ("views"), one per distinct query.

    A provider serves a page as a slice of a view, so a page costs O(page size) once the view
    exists.  The key is (org, the org's version, its event count, the query's own key): a view
    is never served after the org's events changed, and `clear` frees the stale ones.  Bounded
    by `max_views` and by `max_items` event references over all views (the newest view is
    kept even when it alone is larger).
    """

    def __init__(self, max_views: int = VIEW_CACHE_VIEWS, max_items: int = VIEW_CACHE_ITEMS):
        self.max_views = max_views
        self.max_items = max_items
        self._views: OrderedDict[tuple[Any, ...], list[TruthEvent]] = OrderedDict()
        self._items = 0
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._views)

    def get(self, key: tuple[Any, ...], build: Callable[[], list[TruthEvent]]) -> list[TruthEvent]:
        """The view under `key`, built by `build()` on a miss.  Callers must not change it."""
        view = self._views.get(key)
        if view is not None:
            self._views.move_to_end(key)
            self.hits += 1
            return view
        self.misses += 1
        view = build()
        self._views[key] = view
        self._items += len(view)
        while len(self._views) > 1 and (
            len(self._views) > self.max_views or self._items > self.max_items
        ):
            _, old = self._views.popitem(last=False)
            self._items -= len(old)
        return view

    def clear(self, org: str | None = None) -> None:
        """Forget every view (of `org`, or of all orgs)."""
        for key in [k for k in self._views if org is None or k[0] == org]:
            self._items -= len(self._views.pop(key))


class Host(Protocol):
    """What the emulator core offers providers."""

    def quota_status(self, provider: str) -> QuotaStatus:
        """The provider's current quota window."""
        ...


@dataclass
class Chaos:
    """What one chaos seed varies for one provider (``Provider.chaos``; tests/test_chaos.py)."""

    switches: dict[str, Any] = field(default_factory=dict)  # scenario switches
    settings: dict[str, Any] = field(default_factory=dict)  # the tap's settings block
    slow_s: float | None = None  # the delay of its slowed answers (None: the seed's)
    what: str = ""  # a few words for the seed's description line


class Provider:
    """Base class of one emulated API."""

    name: ClassVar[str]
    api_root: ClassVar[str] = ""  # base URL for the tap = emulator URL + "/" + name + api_root
    switches: ClassVar[Mapping[str, Switch]] = COMMON_SWITCHES
    routes: ClassVar[Sequence[Route]] = ()
    #: The served item's id and time fields (what `odd_values` changes, odd.py).
    id_field: ClassVar[str] = "id"
    time_field: ClassVar[str] = "created_at"

    #: The published request-rate limit: (max requests, per window seconds); None: none.
    rate_limit: ClassVar[tuple[int, float] | None] = None
    #: The query parameter of the API's event-type filter (it takes exactly the documented
    #: spellings; a `types="cycle"` switch serves every documented type); None: no filter.
    type_parameter: ClassVar[str | None] = None

    # ---- what the fault and chaos tests need to know (tests/test_chaos.py) ----------------
    #: Switches that leave one organization and several pages (the fault tests' log).
    one_org: ClassVar[Mapping[str, Any]] = {}
    #: The request that fetches the first data page of that log (1, unless the tap first
    #: lists the organizations or fetches a token).
    first_data_request: ClassVar[int] = 1
    #: Records the tap may emit again after resuming from any STATE: a page of a read
    #: that checkpoints page by page (None: no such bound, e.g. whole time windows).
    resume_bound: ClassVar[int | None] = None
    #: The key of a page's list of events (None: a page is a bare list) and whether the API
    #: documents that it leaves that key out of an empty page (faults "null_list", "no_list").
    list_key: ClassVar[str | None] = None
    list_key_absent_when_empty: ClassVar[bool] = False
    #: A field of a page's envelope the API may leave out, for fault "no_envelope" (None: none).
    optional_envelope: ClassVar[str | None] = None
    #: Whether the tap's queries reach an event stamped in the future (`future_event_s`):
    #: False where every query ends at a time the tap sends (ConfigCat's windows end "now").
    serves_future_events: ClassVar[bool] = True

    def __init__(self, scenario: Scenario, host: Host) -> None:
        self.scenario = scenario
        self.host = host
        self.rng = random.Random(f"{scenario.seed}:{self.name}:data")
        self.orgs: list[str] = list(self.opt("orgs"))
        self._events: dict[str, list[TruthEvent]] = {org: [] for org in self.orgs}
        self._version: dict[str, int] = dict.fromkeys(self.orgs, 0)  # bumped on every change
        self._made = 0  # events made so far (their positions, for `awkward_values`, `type_drift`)
        self.views = ViewCache()
        self.setup()
        self._generate()

    # ---- to implement -------------------------------------------------------------------
    def setup(self) -> None:
        """Build per-org fixtures (ids, users) from `self.rng` before events are made."""

    def make_event(self, org: str, at: datetime) -> TruthEvent:
        """A new event of `org` at `at` (called in chronological order for the initial data)."""
        raise NotImplementedError

    def authenticate(self, req: ApiRequest) -> Response | None:
        """None if the request carries valid credentials, else the error response."""
        return None

    def error(self, status: int, message: str) -> Response:
        """The provider's error response."""
        return Response(status, {"message": message})

    @classmethod
    def credentials(cls) -> dict[str, str]:
        """The credentials the emulator accepts, as tap settings."""
        return {}

    def tap_config(self, base_url: str) -> dict[str, Any]:
        """The tap's settings block for this provider at `base_url`."""
        return {**self.accepted_credentials(), "base_url": base_url}

    def reset_headers(self, seconds: float) -> dict[str, str] | None:
        """The documented headers of a 429 that says when to retry without ``Retry-After``
        (fault "429_reset"), ``seconds`` ahead; None: the API documents none."""
        return None

    @classmethod
    def chaos(cls, rng: random.Random, events_per_org: int) -> Chaos:
        """The uncertain behaviours a chaos seed draws for this provider (none by default)."""
        return Chaos()

    # ---- provided -------------------------------------------------------------------------
    def accepted_credentials(self) -> dict[str, str]:
        """The credentials accepted now: `credentials()`, with the `credentials` switch over it."""
        return {**self.credentials(), **(self.opt("credentials") or {})}

    def opt(self, key: str) -> Any:
        """A provider switch's current value."""
        return self.scenario.switch(self.name, key)

    @property
    def prefix(self) -> str:
        """The URL path prefix this provider owns."""
        return f"/{self.name}"

    def base_url(self, emulator_url: str) -> str:
        """The base URL a tap uses."""
        return f"{emulator_url}{self.prefix}{self.api_root}"

    def _generate(self) -> None:
        per_org = _first_set(self.opt("events_per_org"), self.scenario.events_per_org)
        span = _first_set(self.opt("span_days"), self.scenario.span_days)
        planned = [
            (at, org)
            for org in self.orgs
            for at in spread_times(self.rng, per_org, self.scenario.now, span)
        ]
        planned.sort(key=lambda pair: pair[0])
        for at, org in planned:
            self._events[org].append(self._new_event(org, at))
        ahead = self.opt("future_event_s")
        if ahead is not None:  # clock skew at the vendor: one event stamped in the future
            latest_s = (LATEST - self.scenario.now).total_seconds()
            at = self.scenario.now + timedelta(seconds=min(ahead, latest_s))
            self._events[self.orgs[0]].append(self._new_event(self.orgs[0], at))
        self.events_changed()

    def date_header(self) -> str | None:
        """The `Date` header of an answer: the server's clock (`clock_skew_s` off), or None."""
        if not self.opt("date_header"):
            return None
        return format_datetime(utcnow() + timedelta(seconds=self.opt("clock_skew_s")), True)

    def _new_event(self, org: str, at: datetime) -> TruthEvent:
        event = self.make_event(org, at)
        if self.scenario.awkward_values:
            make_awkward(event, self._made)
        if self.scenario.type_drift:
            make_drifted(event, self._made)
        kind = odd_kind(self.opt("odd_values"), self._made)
        if kind is not None:
            make_odd(event.item, {"id": self.id_field, "time": self.time_field}, event.at, kind)
        self._made += 1
        return event

    def events_changed(self, org: str | None = None) -> None:
        """Call after changing `org`'s event list (None: any org's): drops its cached views."""
        for name in self._version if org is None else (org,):
            self._version[name] += 1
        self.views.clear(org)

    def view(
        self, org: str, key: Hashable, build: Callable[[list[TruthEvent]], list[TruthEvent]]
    ) -> list[TruthEvent]:
        """`build(the org's events)`, cached per `key` until the org's events change.

        `key` must hold everything the view depends on besides the events: the query's
        filters, bounds and order as parsed, and every switch that shapes the view.  The view
        is shared: slice it, never change it.
        """
        events = self._events[org]
        days = self.opt("retention_days")
        if days is not None:  # the vendor no longer serves what is older than its retention
            horizon = utcnow() - timedelta(days=days)
            events = [event for event in events if event.at >= horizon]
        full_key = (org, self._version[org], len(events), key)
        return self.views.get(full_key, lambda: build(events))

    def clear_views(self) -> None:
        """Forget every cached view (after a switch changed)."""
        self.views.clear()

    def add_events(self, org: str, n: int, at: datetime | None = None) -> list[TruthEvent]:
        """Append `n` events to `org` at `at` (default: now)."""
        if org not in self._events:
            raise ValueError(f"{self.name} has no org {org!r}; orgs: {self.orgs}")
        when = utcnow() if at is None else as_utc(at)
        made = [self._new_event(org, when) for _ in range(n)]
        self._events[org].extend(made)
        self.events_changed(org)
        return made

    def events(self, org: str) -> list[TruthEvent]:
        """The org's events in creation order."""
        return list(self._events[org])

    def truth(self) -> list[TruthEvent]:
        """Every event, by org then time (creation order within equal times)."""
        return [ev for org in self.orgs for ev in sorted(self._events[org], key=lambda e: e.at)]

    def match(self, req: ApiRequest) -> tuple[Route, dict[str, str]] | None:
        """The route serving `req` and its path parameters."""
        for route in self.routes:
            params = route.match(req)
            if params is not None:
                return route, params
        return None

    def dispatch(self, route: Route, params: dict[str, str], req: ApiRequest) -> Response:
        """Call the route's handler."""
        handler = getattr(self, route.handler)
        response: Response = handler(req, **params)
        return response


def empty_page_switch() -> Switch:
    """The ``empty_pages`` switch every paging provider has (``interleaved_page``)."""
    return Switch(0, convert=int, doc="every Nth page is empty but still says there is more "
                  "(a server that filters after paging); 0: none")  # fmt: skip


def interleaved_page(page: int, every: int) -> int | None:
    """With every ``every``-th page number (1-based) served empty (a server that filters after
    paging), the data page that page number ``page`` serves (0-based), or None for an empty
    page; ``every`` 0: none is empty."""
    if every and page % every == 0:
        return None
    return page - 1 - (page // every if every else 0)


def page_numbers(data_pages: int, every: int) -> int:
    """How many page numbers serve ``data_pages`` pages of data, empty ones included (the
    last data page is never followed by an empty one)."""
    if not every or data_pages == 0:
        return data_pages
    return data_pages + (data_pages - 1) // (every - 1)


#: A chaos seed's server clock, seconds off (the tap follows its Date header; behind, new
#: events read as future-dated until a later run).
CHAOS_CLOCK_SKEWS_S = (0.0, 0.0, 0.0, 90.0, 5400.0, -90.0, -1800.0)
#: A chaos seed's future-dated event, seconds ahead (about 8000 years: 9999-12-30).
CHAOS_FUTURE_EVENTS_S = (None, None, 3 * 3600.0, 2.6e11)


def clock_chaos(
    rng: random.Random, name: str, *, future: bool = True, behind: bool = True
) -> tuple[dict[str, Any], str]:
    """Clock-skew switches for provider `name`'s chaos draw, and words for them.

    `future`: one event stamped in the future (where the tap's queries reach it);
    `behind`: the server's clock may run behind (where the tap reads up to it, not past it).
    """
    skews = [s for s in CHAOS_CLOCK_SKEWS_S if behind or s >= 0]
    skew = rng.choice(skews)
    ahead = rng.choice(CHAOS_FUTURE_EVENTS_S) if future else None
    switches: dict[str, Any] = {f"{name}_clock_skew_s": skew}
    words = [f"clock {skew:+.0f}s"] if skew else []
    if ahead is not None:
        switches[f"{name}_future_event_s"] = ahead
        words.append(f"event +{ahead:.0f}s")
    return switches, " ".join(words)


def _first_set(value: Any, fallback: Any) -> Any:
    return fallback if value is None else value
