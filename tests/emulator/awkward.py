"""Awkward but realistic values for the target-compatibility tests: `awkward_values=True`.

Vendors send text that some loaders choke on, and add fields a schema does not declare. With
the switch on, every provider's generated events get, by a fixed rule on the event's position
(so the data is the same on every run, and the generator's random stream is untouched):

* a NUL character (U+0000) inside the event's longest text field, and inside a new key of every
  object the event carries (a free-form one such as Socket `payload`, or a declared one such as
  Nirvana `actor`: there the key is one the schema does not declare);
* a top-level field the schema does not declare (`vendor_added_field`, an object, with a NUL);
* emoji, right-to-left text and combining marks; a 70,000-character string (in a few events);
* ids and date-times are never touched: the truth and the declared types stay the same.

`type_drift=True` (a `Scenario` field, like `awkward_values`) plays vendors that change a
field's type without notice: in every other event, one field (a different one each time, every
field of every provider in turn; never the id or the timestamp the event is keyed and
bookmarked on) gets a value of another JSON type: a string becomes an object, a number, an
array or a boolean; an integer a float or a numeric string; a date-time an empty string,
garbage, epoch seconds or February 30th; null a number; an object a string, or one of its
own values drifts the same way (`make_drifted`).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .provider import TruthEvent

NUL_TEXT = "before\x00after"
UNICODE_TEXT = "🔐 שלום مرحبا e\u0301\u0308 ﷽ \u202eRTL-override\u202c"
LONG_TEXT = "x" * 70_000
#: The top-level field no schema declares.
ADDED_FIELD = "vendor_added_field"
#: The key added to every object an event carries.
ADDED_KEY = "vendor_note"
_INSTANT = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")


def make_awkward(event: TruthEvent, position: int) -> None:
    """Change `event.item` in place: the awkward values above, chosen by `position`."""
    item = event.item
    protected = {event.id, event.ts}
    text_fields = [
        key
        for key, value in item.items()
        if isinstance(value, str) and value not in protected and not _is_instant(value)
    ]
    if text_fields and position % 3 == 0:
        longest = max(text_fields, key=lambda key: (len(item[key]), key))
        item[longest] = _insert(item[longest], "\x00")
    if text_fields and position % 5 == 1:
        longest = max(text_fields, key=lambda key: (len(item[key]), key))
        item[longest] = f"{item[longest]} {UNICODE_TEXT}"
    if position % 4 == 2:
        for key, value in list(item.items()):
            if isinstance(value, dict):
                item[key] = {**value, ADDED_KEY: NUL_TEXT}
    if position % 2 == 1:
        added: dict[str, Any] = {"text": NUL_TEXT, "flag": True, "count": position}
        if position % 50 == 1:
            added["long"] = LONG_TEXT
        item[ADDED_FIELD] = added


def _is_instant(text: str) -> bool:
    """True for a date-time (``updated_at``...): a declared type, never free text."""
    return _INSTANT.match(text) is not None


def _insert(text: str, char: str) -> str:
    middle = len(text) // 2
    return f"{text[:middle]}{char}{text[middle:]}"


def make_drifted(event: TruthEvent, position: int) -> None:
    """Change `event.item` in place: one field of another type, chosen by `position`."""
    if position % 2:
        return
    item = event.item
    fields = sorted(key for key, value in item.items() if not _is_key(event, value))
    if fields:
        turn = position // 2
        name = fields[turn % len(fields)]
        item[name] = drifted(item[name], turn // len(fields))


def drifted(value: Any, variant: int) -> Any:
    """`value` as another JSON type (`variant` picks which, when there are several)."""
    if isinstance(value, dict):
        if value and variant % 2:
            inner = sorted(value)[variant // 2 % len(value)]
            return {**value, inner: drifted(value[inner], variant // 2)}
        return "drifted object"
    if isinstance(value, str) and _is_instant(value):
        return ("", "yesterday", "1700000000", "2026-02-30T10:00:00Z")[variant % 4]
    choices: list[Any]
    if isinstance(value, bool):
        choices = ["true", 1]
    elif isinstance(value, int):
        choices = [value + 0.5, str(value)]
    elif isinstance(value, float):
        choices = [str(value), [value]]
    elif isinstance(value, str):
        choices = [{"value": value}, 404, [value], True]
    elif value is None:
        choices = [1.5, ["drifted"]]
    else:  # a list
        choices = ["drifted list", {"items": value}]
    return choices[variant % len(choices)]


def _is_key(event: TruthEvent, value: Any) -> bool:
    """True for the event's id or timestamp (as served, or as text: ConfigCat's int id)."""
    return value in (event.id, event.ts) or (isinstance(value, int) and str(value) == event.id)
