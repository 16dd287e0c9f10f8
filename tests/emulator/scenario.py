"""Scenario: the seed, the data shape and every switch the emulator plays.

Common fields live on `Scenario`; provider switches are keyword arguments named
`<provider>_<switch>` (e.g. `socket_order="asc"`), declared by each provider module's
`switches` table, so a new provider adds switches without touching this file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from datetime import datetime, timezone
from functools import cache
from typing import Any

from .faults import FaultRule
from .odd import odd_kinds

UTC = timezone.utc


@dataclass(frozen=True)
class Switch:
    """One provider switch: default, allowed values, and whether it may change at runtime."""

    default: Any
    choices: tuple[Any, ...] | None = None
    runtime: bool = True  # False: it shapes generated data, fixed once the emulator exists
    convert: Callable[[Any], Any] | None = None
    doc: str = ""

    def check(self, name: str, value: Any) -> Any:
        """Return the value, converted; raise ValueError if it is not allowed."""
        if self.convert is not None and value is not None:
            value = self.convert(value)
        if self.choices is not None and value not in self.choices:
            raise ValueError(f"{name}={value!r} not allowed; choose one of {list(self.choices)}")
        return value


# Switches every provider has (a provider may override the defaults in its own table).
COMMON_SWITCHES: dict[str, Switch] = {
    "orgs": Switch(("default",), runtime=False, convert=tuple, doc="partitions (org keys)"),
    "events_per_org": Switch(None, runtime=False, doc="None: Scenario.events_per_org"),
    "span_days": Switch(None, runtime=False, doc="None: Scenario.span_days"),
    "odd_values": Switch((), runtime=False, convert=odd_kinds,
                         doc="kinds of odd ids and times in every 7th event (odd.py)"),
    # Clock skew (issue 20): an event stamped in the future, a server clock that is off.
    "future_event_s": Switch(None, runtime=False, convert=float,
                             doc="one more event of the first org, stamped this many seconds "
                                 "after `now` (at most 9999-12-30); None: none"),
    "clock_skew_s": Switch(0.0, convert=float,
                           doc="the server's clock is this many seconds off: its Date header"),
    "date_header": Switch(True, choices=(True, False), doc="answers carry a Date header"),
    # Retention (issue 23): the vendor keeps events this many days, then drops them.
    "retention_days": Switch(None, convert=float,
                             doc="events older than this many days (by the real clock) are "
                                 "no longer served; None: kept forever"),
    "credentials": Switch(None, convert=dict,
                          doc="tap settings accepted instead of credentials() (e.g. generated)"),
}  # fmt: skip


@dataclass(frozen=True)
class QuotaRule:
    """At most `calls_per_window` billable calls per `window_s` seconds, else 429."""

    calls_per_window: int
    window_s: float = 3600.0


# Published request-rate limits are declared by each provider (`Provider.rate_limit`); pass
# `Scenario(rate_limits=documented_rate_limits())` to enforce them (429 with Retry-After).


def _check_rate_limits(value: Any) -> dict[str, tuple[int, float]]:
    """`{provider: (max requests, window seconds)}`, both positive; raise ValueError if not."""
    checked: dict[str, tuple[int, float]] = {}
    for provider, limit in dict(value or {}).items():
        try:
            calls, window_s = limit
            valid = int(calls) == calls >= 1 and float(window_s) > 0
        except (TypeError, ValueError):
            valid = False
        if not valid:
            raise ValueError(
                f"rate_limits[{provider!r}]={limit!r}: want (max requests >= 1, window s > 0)"
            )
        checked[provider] = (int(calls), float(window_s))
    return checked


def _utcnow() -> datetime:
    return datetime.now(UTC)


@cache
def _switch_table() -> dict[str, tuple[str, str, Switch]]:
    """`<provider>_<switch>` -> (provider, switch, Switch) for every discovered provider."""
    from .registry import available_providers  # noqa: PLC0415 (provider modules import us)

    return {
        f"{name}_{key}": (name, key, sw)
        for name, cls in available_providers().items()
        for key, sw in cls.switches.items()
    }


@dataclass(init=False)
class Scenario:
    """What the emulator plays.  Provider switches: keyword args `<provider>_<switch>`."""

    seed: int
    now: datetime  # data is generated relative to this instant
    providers: tuple[str, ...] | None  # None: every discovered provider
    events_per_org: int
    span_days: float  # events spread over the last N days, newest >= 1 hour before `now`
    arrivals_every: int | None  # after every N API requests to a provider, 1 new event arrives
    faults: list[FaultRule]
    max_consecutive_faults: int | None  # random faults never exceed this streak (None: no guard)
    latency_s: float  # fixed delay added to every API response
    quota: dict[str, QuotaRule]  # provider -> quota window
    # provider -> (max requests, window s): a sliding window over the accepted requests, else
    # 429 with Retry-After (empty: no limit).  See documented_rate_limits().
    rate_limits: dict[str, tuple[int, float]]
    switches: dict[str, Any]  # explicitly set provider switches, by `<provider>_<switch>`
    # NUL characters, undeclared fields, emoji/RTL, 70,000-character strings (awkward.py)
    awkward_values: bool
    # one field of every other event sent as another JSON type (awkward.py, `make_drifted`)
    type_drift: bool

    # Fields that may change on a running emulator (the others shape the generated data).
    RUNTIME_FIELDS = frozenset(
        {"arrivals_every", "faults", "max_consecutive_faults", "latency_s", "quota", "rate_limits"}
    )

    def __init__(
        self,
        seed: int = 1,
        now: datetime | None = None,
        providers: Iterable[str] | None = None,
        events_per_org: int = 250,
        span_days: float = 30.0,
        arrivals_every: int | None = None,
        faults: Iterable[FaultRule] = (),
        max_consecutive_faults: int | None = 2,
        latency_s: float = 0.0,
        quota: dict[str, QuotaRule] | None = None,
        rate_limits: dict[str, tuple[int, float]] | None = None,
        switches: dict[str, Any] | None = None,
        awkward_values: bool = False,
        type_drift: bool = False,
        **provider_switches: Any,
    ) -> None:
        self.seed = seed
        self.now = _utcnow() if now is None else as_utc(now)
        self.providers = None if providers is None else tuple(providers)
        self.events_per_org = events_per_org
        self.span_days = span_days
        self.arrivals_every = arrivals_every
        self.faults = list(faults)
        self.max_consecutive_faults = max_consecutive_faults
        self.latency_s = latency_s
        self.quota = dict(quota or {})
        self.rate_limits = dict(rate_limits or {})
        self.switches = {}
        self.awkward_values = awkward_values
        self.type_drift = type_drift
        for key, value in {**(switches or {}), **provider_switches}.items():
            setattr(self, key, value)

    def __setattr__(self, key: str, value: Any) -> None:
        if key == "rate_limits":
            value = _check_rate_limits(value)
        if key in _FIELD_NAMES:
            object.__setattr__(self, key, value)
            return
        table = _switch_table()
        if key not in table:
            raise TypeError(f"Scenario has no field or switch {key!r}; switches: {sorted(table)}")
        self.switches[key] = table[key][2].check(key, value)

    def __getattr__(self, key: str) -> Any:
        if key.startswith("_") or "switches" not in self.__dict__:
            raise AttributeError(key)
        table = _switch_table()
        if key not in table:
            raise AttributeError(f"Scenario has no field or switch {key!r}")
        return self.switches.get(key, table[key][2].default)

    def switch(self, provider: str, key: str) -> Any:
        """The value of one provider switch (explicit, else the provider's default)."""
        return getattr(self, f"{provider}_{key}")

    @staticmethod
    def is_runtime(key: str) -> bool:
        """True if `key` may be changed by `Emulator.configure` on a running emulator."""
        if key in _FIELD_NAMES:
            return key in Scenario.RUNTIME_FIELDS
        table = _switch_table()
        if key not in table:
            raise TypeError(f"Scenario has no field or switch {key!r}; switches: {sorted(table)}")
        return table[key][2].runtime


_FIELD_NAMES = frozenset(f.name for f in fields(Scenario))


def as_utc(at: datetime) -> datetime:
    """Aware UTC; a naive datetime is taken as UTC."""
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
