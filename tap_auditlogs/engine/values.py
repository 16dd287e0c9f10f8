"""Values the tap cannot use as sent: said once per event (or field), never fatal.

Checked on every page as it comes in (``AuditLogSource.pages``), before a strategy reads it:

* a missing, null or blank id: the event is keyed by its substitute
  (``ProviderDeclaration.substitute_id``, written into the record by ``post_process``);
* a missing, null or unreadable instant: the event is emitted, no bookmark moves on it and it
  judges no order (strategies.py);
* an epoch number read as the instant (``instants.read_epoch``): said once per unit.

One WARNING per event names the stream, the organization (the partition), the event id and the
raw value; past ``ODD_VALUE_WARNINGS`` events per partition and run, one line says that more
are not listed.

A declared field whose value does not fit its type (conform.py): one WARNING per stream and
field (``warn_drift``).
"""

from __future__ import annotations

import threading
import typing as t

from tap_auditlogs.core.instants import read_epoch
from tap_auditlogs.engine.declaration import no_value
from tap_auditlogs.output.conform import UNDECLARED_FIELDS

if t.TYPE_CHECKING:
    from collections.abc import Sequence

    from tap_auditlogs.core.types import Context, Record


class CheckedLog(t.Protocol):
    """What is read of the provider whose records are checked (``AuditLogSource`` is one)."""

    @property
    def name(self) -> str:
        """The stream's name."""

    @property
    def primary_keys(self) -> Sequence[str]:
        """The keys; the last one is the event id."""

    @property
    def replication_key(self) -> str | None:
        """The field that orders the log."""

    def id_of(self, record: Record) -> str:
        """The record's id (its substitute when it has none)."""

    def instant_of(self, record: Record) -> int | None:
        """The record's instant in ns, if readable."""

    def describe(self, context: Context) -> str:
        """Provider and partition, for messages."""

    def warn_once(self, key: str, message: str, *args: object) -> None:
        """A warning, once per run and key."""


#: Events with an unusable id or instant named one by one, per partition and run.
ODD_VALUE_WARNINGS = 20
_MISSING = object()


class OddValues:
    """The once-per-event warnings of one stream (shared by the threads that read it)."""

    def __init__(self, source: CheckedLog) -> None:
        """Check the records ``source`` reads."""
        self.source = source
        self._said: set[str] = set()
        self._counts: dict[str, int] = {}  # partition -> events named
        self._lock = threading.Lock()

    def check(self, context: Context, records: list[Record]) -> None:
        """Say what is odd in the ids and instants of ``records`` (partition ``context``)."""
        source = self.source
        id_key, time_key = source.primary_keys[-1], t.cast("str", source.replication_key)
        for record in records:
            record_id = source.id_of(record)
            raw_time = record.get(time_key, _MISSING)
            shown_time = "missing" if raw_time is _MISSING else _shown(raw_time)
            if no_value(record.get(id_key)):
                self._warn(
                    context,
                    f"id:{record_id}",
                    "%s event with %s %s has no %s (%s); it goes out with the substitute id %r "
                    "(a hash of the event: docs/guarantees.md, primary keys).",
                    source.name,
                    time_key,
                    shown_time,
                    id_key,
                    "missing" if id_key not in record else _shown(record[id_key]),
                    record_id,
                )
            if source.instant_of(record) is None:
                self._warn(
                    context,
                    f"instant:{record_id}",
                    "%s event %r has no readable %s (%s); it is emitted, and the bookmark "
                    "does not move on it.",
                    source.name,
                    record_id,
                    time_key,
                    shown_time,
                )
                continue
            epoch = read_epoch(raw_time)
            if epoch is not None:
                source.warn_once(
                    f"epoch:{epoch[1]}",
                    "%s %s comes as an epoch number in %s (event %r: %s), not ISO 8601; "
                    "read as such.",
                    source.name,
                    time_key,
                    epoch[1],
                    record_id,
                    shown_time,
                )

    def warn_drift(
        self, path: str, declared: str, seen: str, record: Record, context: Context
    ) -> None:
        """One WARNING per field whose value did not fit its declared type (conform.py
        nulls it and keeps it as sent in ``undeclared_fields``)."""
        source = self.source
        event = ", ".join(f"{key}={record.get(key)!r}" for key in source.primary_keys)
        source.warn_once(
            f"drift:{path}",
            "%s: %s sent field %s as %s, declared %s (event %s): emitted as null, the value "
            "kept as sent in %s.%s (one warning per field and run).",
            source.name,
            source.describe(context),
            path,
            seen,
            declared,
            event,
            UNDECLARED_FIELDS,
            path,
        )

    def _warn(self, context: Context, key: str, message: str, *args: object) -> None:
        """One WARNING per event and partition, up to ``ODD_VALUE_WARNINGS`` per partition."""
        where = ", ".join(f"{name} '{value}'" for name, value in (context or {}).items())
        prefix = f"{where}: " if where else ""
        with self._lock:
            if prefix + key in self._said:
                return
            self._said.add(prefix + key)
            count = self._counts[where] = self._counts.get(where, 0) + 1
        if count <= ODD_VALUE_WARNINGS:
            self.source.warn_once(prefix + key, prefix + message, *args)
        elif count == ODD_VALUE_WARNINGS + 1:
            self.source.warn_once(
                f"{prefix}odd-values",
                "%s%s: more events with a missing id or time; not listed one by one.",
                prefix,
                self.source.name,
            )


def _shown(value: object) -> str:
    """A vendor's value for a log line: its repr, cut to 80 characters."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
