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
