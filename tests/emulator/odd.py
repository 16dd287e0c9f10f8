"""Odd values where a tap keys and orders events: `<provider>_odd_values=("null_id", ...)`.

Vendors drop a field, send null, switch a timestamp to epoch numbers, or send garbage. With the
switch (every provider has it), every `ODD_EVERY`-th event a provider makes gets the next kind
of the list in turn, chosen by the event's position (so the data is the same on every run and
the generator's random stream is untouched). Only the item served changes: the truth
(`TruthEvent.id`, `.ts`, `.at`) keeps the event's real id and time, and the emulator still
filters, sorts and pages by them, as a real API does with its own copy of the event.

| kind | the served item's |
|---|---|
| `no_cursor` | time field (`Provider.time_field`) missing |
| `null_cursor` | time field null |
| `garbage_cursor` | time field a text that is no date |
| `epoch_s` | time field epoch seconds, a JSON number with the microseconds as its fraction |
| `epoch_ms` | time field epoch milliseconds, an integer |
| `epoch_text` | time field epoch milliseconds as a numeric string |
| `null_id` | id field (`Provider.id_field`) null |
| `no_id` | id field missing |
"""

from __future__ import annotations

import calendar
import random
from collections.abc import Callable, Iterable
from datetime import datetime, timezone
from typing import Any

#: One event in this many gets an odd value (the next kind in turn).
ODD_EVERY = 7
#: The position (modulo ``ODD_EVERY``) of the odd events.
ODD_AT = 3
GARBAGE = "sometime last tuesday"


def _epoch_us(at: datetime) -> int:
    at = at.astimezone(timezone.utc)
    return calendar.timegm(at.utctimetuple()) * 1_000_000 + at.microsecond


def _set(value: Callable[[datetime], Any]) -> Callable[[dict[str, Any], str, datetime], None]:
    def change(item: dict[str, Any], key: str, at: datetime) -> None:
        item[key] = value(at)

    return change


def _drop(item: dict[str, Any], key: str, at: datetime) -> None:
    item.pop(key, None)


#: kind -> (which field: "time" or "id", how it changes: (item, field name, real time)).
ODD_KINDS: dict[str, tuple[str, Callable[[dict[str, Any], str, datetime], None]]] = {
    "no_cursor": ("time", _drop),
    "null_cursor": ("time", _set(lambda at: None)),
    "garbage_cursor": ("time", _set(lambda at: GARBAGE)),
    "epoch_s": ("time", _set(lambda at: _epoch_us(at) / 1_000_000)),
    "epoch_ms": ("time", _set(lambda at: _epoch_us(at) // 1000)),
    "epoch_text": ("time", _set(lambda at: str(_epoch_us(at) // 1000))),
    "null_id": ("id", _set(lambda at: None)),
    "no_id": ("id", _drop),
}
#: Kinds whose events lose their id: the tap keys them by a substitute.
ID_KINDS = frozenset(kind for kind, (where, _) in ODD_KINDS.items() if where == "id")


def odd_kinds(value: Iterable[str]) -> tuple[str, ...]:
    """The switch's value checked: a tuple of ``ODD_KINDS`` names."""
    kinds = (value,) if isinstance(value, str) else tuple(value)
    unknown = [kind for kind in kinds if kind not in ODD_KINDS]
    if unknown:
        raise ValueError(f"odd_values: unknown kinds {unknown}; choose from {list(ODD_KINDS)}")
    return kinds


def odd_kind(kinds: tuple[str, ...], position: int) -> str | None:
    """The kind the event made at ``position`` gets (None: it stays as it is)."""
    if not kinds or position % ODD_EVERY != ODD_AT:
        return None
    return kinds[(position // ODD_EVERY) % len(kinds)]


def make_odd(item: dict[str, Any], fields: dict[str, str], at: datetime, kind: str) -> None:
    """Change ``item`` in place: ``kind`` applied to its field (``fields``: time/id -> name)."""
    where, change = ODD_KINDS[kind]
    change(item, fields[where], at)


def draw_odd(rng: random.Random) -> tuple[str, ...]:
    """What a chaos seed serves (``Provider.chaos``): no odd values, or one to three kinds."""
    if rng.random() < 0.4:
        return ()
    return tuple(rng.sample(sorted(ODD_KINDS), k=rng.randint(1, 3)))
