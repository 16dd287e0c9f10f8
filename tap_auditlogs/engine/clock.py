"""The API's clock: how far it is from the local one, and words for a time difference.

A bookmark is never later than the time the run started, by the local clock and by the API's:
its first answer of the run tells it (the ``Date`` header). Whichever is earlier bounds the
state: an API whose clock runs behind still stamps events after the local run start only
later, and an API whose ``Date`` runs ahead may stamp its events by another clock (a proxy's
header, the database's stamps), so following it ahead could skip events still to come. An event
stamped later than the run's start is emitted, with one WARNING per partition
(partition_reader.py), and the state never moves past the run's start (state.py).
"""

from __future__ import annotations

import email.utils
import typing as t

from tap_auditlogs.core.instants import NS_PER_SECOND, instant_from_datetime, now_instant

if t.TYPE_CHECKING:
    from collections.abc import Callable

#: A ``Date`` within this of the local clock is read as agreeing with it (the header has
#: whole seconds, and the answer took time to arrive).
AGREEING_NS = 2 * NS_PER_SECOND
#: A difference larger than this is said once per provider.
NOTABLE_SKEW_NS = 60 * NS_PER_SECOND
#: An event stamped later than the API's clock by more than this is called future-dated.
FUTURE_SLACK_NS = 5 * NS_PER_SECOND


def clock_offset(date_header: str | None, warn: Callable[..., None]) -> int:
    """The API's clock minus the local clock (ns), from a ``Date`` header (0 without one).

    Only a clock behind the local one is followed (see the module docstring): the
    offset is never positive. ``warn(key, message, *args)`` says once what is odd: an
    unreadable header, or a difference over a minute.
    """
    if not date_header:
        return 0
    try:
        moment = email.utils.parsedate_to_datetime(date_header)
    except (TypeError, ValueError, IndexError):
        moment = None
    if moment is None or moment.tzinfo is None:
        warn("clock", "the API's Date header %s is unreadable; the local clock bounds "
             "the bookmarks.", repr(date_header[:40]))  # fmt: skip
        return 0
    offset = instant_from_datetime(moment) - now_instant()
    if abs(offset) > NOTABLE_SKEW_NS:
        clock = "its" if offset < 0 else "the local"
        warn("clock", "the API's clock is %s (Date: %s); bookmarks stay at or before the "
             "time this run started by %s clock.", skew(offset), date_header, clock)  # fmt: skip
    return 0 if offset >= -AGREEING_NS else offset


def skew(ns: int) -> str:
    """``3 h 20 min ahead of the local clock``-style words for a signed difference."""
    return f"{duration(abs(ns))} {'ahead of' if ns > 0 else 'behind'} the local clock"


def duration(ns: int) -> str:
    """A positive duration in the two largest units: ``2 h 5 min``, ``8016 years 3 days``."""
    seconds = ns // NS_PER_SECOND
    units = (("years", 365 * 86_400), ("days", 86_400), ("h", 3600), ("min", 60), ("s", 1))
    parts: list[str] = []
    for name, size in units:
        count, seconds = divmod(seconds, size)
        if count or parts:
            parts.append(f"{count} {name}")
        if len(parts) == 2:
            break
    return " ".join(parts) or f"{ns / NS_PER_SECOND:.3f} s"
