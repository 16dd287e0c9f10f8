"""Instants as integer nanoseconds since the Unix epoch (UTC).

Providers send timestamps with 0 to 9 fractional digits and various offsets; comparing
them as strings is wrong ("...:00Z" sorts after "...:00.5Z") and Python's datetime
keeps only microseconds (Torq sends nanoseconds). So every comparison in the tap is
done on these integers, and bookmarks are written with all nine digits.
"""

from __future__ import annotations

import calendar
import re
from datetime import date, datetime, timezone
from decimal import Decimal, InvalidOperation
from functools import lru_cache

NS_PER_SECOND = 1_000_000_000

#: Epoch numbers (a vendor that sends ``1767225600`` instead of ISO 8601): the unit is told by
#: the magnitude. Each unit is read only for instants from 1973-03-03 to the year 5138, which
#: gives four bands that do not overlap: seconds 1e8 to 1e11, milliseconds 1e11 to 1e14,
#: microseconds 1e14 to 1e17, nanoseconds 1e17 to 1e20. So a number is read one way or not at
#: all: 0, 42, a negative number or anything from 1e20 up is no instant. (An event really
#: dated before March 1973 would be misread; audit logs start decades later.)
EPOCH_UNITS: tuple[tuple[str, int, int], ...] = (
    ("ns", 10**17, 1),
    ("us", 10**14, 1_000),
    ("ms", 10**11, 1_000_000),
    ("s", 10**8, NS_PER_SECOND),
)
EPOCH_END = 10**20
_NUMBER = re.compile(r"\d+(?:\.\d+)?")

_ISO = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})"
    r"(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?)?"
    r"\s*(Z|z|[+-]\d{2}(?::?\d{2})?)?$"
)


#: The form the APIs send (``...T10:11:12[.f]Z`` or ``+00:00``), parsed without datetime.
_UTC = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:Z|\+00:00)")
_EPOCH_ORDINAL = 719_163  # date(1970, 1, 1).toordinal()


@lru_cache(maxsize=1024)
def _epoch_day(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01; ValueError for a date that does not exist."""
    return date(year, month, day).toordinal() - _EPOCH_ORDINAL


def parse_instant(value: str, *, allow_naive: bool = False) -> int:
    """Parse an ISO 8601 / RFC 3339 timestamp into nanoseconds since the epoch.

    A date alone means midnight UTC. A date-time without an offset is rejected unless
    ``allow_naive`` (then it is read as UTC). Raises ValueError on anything else.
    The last few thousand results are remembered: a page's timestamps are parsed when it
    is checked and again when its records are read.
    """
    return _parse_instant(value, allow_naive)


@lru_cache(maxsize=4096)
def _parse_instant(value: str, allow_naive: bool) -> int:
    fast = _UTC.fullmatch(value)
    if fast is not None:  # the usual form, twice as fast; same result as below
        year, month, day, hour, minute, second, fraction = fast.groups()
        h, m, s = int(hour), int(minute), int(second)
        if h < 24 and m < 60 and s < 60:  # out of range: the general path raises
            seconds = _epoch_day(int(year), int(month), int(day)) * 86_400
            seconds += h * 3600 + m * 60 + s
            return seconds * NS_PER_SECOND + (int(fraction.ljust(9, "0")) if fraction else 0)
    match = _ISO.match(value.strip())
    if not match:
        msg = f"not an ISO 8601 date-time: {value!r}"
        raise ValueError(msg)
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    if hour is not None and offset is None and not allow_naive:
        msg = f"date-time has no timezone: {value!r} (add Z or an offset such as +00:00)"
        raise ValueError(msg)
    # datetime() validates the calendar fields (month 13, Feb 30 ...).
    moment = datetime(
        int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0)
    )
    seconds = calendar.timegm(moment.timetuple())
    if offset and offset not in ("Z", "z"):
        sign = 1 if offset[0] == "+" else -1
        digits = offset[1:].replace(":", "")
        offset_minutes = int(digits[:2]) * 60 + (int(digits[2:4]) if len(digits) > 2 else 0)
        seconds -= sign * offset_minutes * 60
    nanos = int((fraction or "0")[:9].ljust(9, "0"))
    return seconds * NS_PER_SECOND + nanos


def read_epoch(value: object) -> tuple[int, str] | None:
    """An epoch number (or numeric string) as (ns, unit: s, ms, us or ns); None if it is not one.

    The unit comes from the magnitude (``EPOCH_UNITS``); fractions are kept exactly (a float is
    read from its shortest text, ``1767225600.123`` -> ...123000000 ns).
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        text = str(value)
    elif isinstance(value, float):
        text = repr(value)
    elif isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        text = value.strip()
    else:
        return None
    try:
        number = Decimal(text)
    except InvalidOperation:
        return None
    if not number.is_finite() or number >= EPOCH_END:
        return None
    for unit, floor, ns_per_unit in EPOCH_UNITS:
        if number >= floor:
            return int(number * ns_per_unit), unit
    return None


def read_instant(value: object) -> int | None:
    """A record's instant in ns, whatever was sent: ISO 8601 (naive is UTC) or an epoch
    number (``read_epoch``); None when it is missing, null or unreadable. Never raises."""
    if isinstance(value, str):
        try:
            return parse_instant(value, allow_naive=True)
        except (ValueError, OverflowError):
            pass
    found = read_epoch(value)
    return None if found is None else found[0]


def format_instant(ns: int, *, digits: int = 9) -> str:
    """Format nanoseconds as ``YYYY-MM-DDTHH:MM:SS[.f]Z`` with ``digits`` fractional digits."""
    seconds, nanos = divmod(ns, NS_PER_SECOND)
    base = datetime.fromtimestamp(seconds, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    if digits <= 0:
        return f"{base}Z"
    return f"{base}.{nanos:09d}"[: len(base) + 1 + digits] + "Z"


def instant_from_datetime(moment: datetime) -> int:
    """Convert an aware datetime to nanoseconds."""
    return calendar.timegm(moment.utctimetuple()) * NS_PER_SECOND + moment.microsecond * 1000


def now_instant() -> int:
    """The current time in nanoseconds."""
    return instant_from_datetime(datetime.now(timezone.utc))


def seconds_to_ns(seconds: float) -> int:
    """Convert seconds to nanoseconds."""
    return int(seconds * NS_PER_SECOND)
