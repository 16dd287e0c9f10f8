"""Saved state as the strategies read it: a partition's entry, and bookmarks they cannot use.

A bookmark saved under another replication key, or one for the whole stream when the
stream is now read per partition (an older version of the tap), is ignored with a warning:
that partition is read again from ``start_date`` (duplicates, never a gap). A saved
partition that matches no partition read now (a typo, an organization no longer configured)
is kept in the state as it is, with a warning.
"""

from __future__ import annotations

import difflib
import typing as t

if t.TYPE_CHECKING:
    from collections.abc import Mapping

    from tap_auditlogs.core.types import Context
    from tap_auditlogs.engine.source import AuditLogSource


class StatefulStream(t.Protocol):
    """What is read of a stream whose saved state is checked (``AuditLogStream`` is one)."""

    @property
    def name(self) -> str:
        """The stream's name."""

    @property
    def replication_key(self) -> str | None:
        """The field its bookmarks are kept on."""

    @property
    def tap_state(self) -> Mapping[str, t.Any]:
        """The tap's whole state."""

    @property
    def source(self) -> AuditLogSource:
        """The provider's log (its once-per-run warnings)."""


def saved_state(tap_state: Mapping[str, t.Any], stream: str, context: Context) -> dict | None:
    """The saved state of ``stream`` (of its partition ``context``, when given), if any."""
    stream_state = (tap_state.get("bookmarks") or {}).get(stream)
    if not isinstance(stream_state, dict) or not context:
        return stream_state if isinstance(stream_state, dict) else None
    for partition in stream_state.get("partitions") or ():
        if isinstance(partition, dict) and partition.get("context") == context:
            return partition
    return None


def check_saved_state(stream: StatefulStream, raw: Mapping[str, t.Any], context: Context) -> None:
    """Warn (once) about a saved bookmark the strategies cannot use; it is then ignored."""
    key = t.cast("str", stream.replication_key)
    if raw.get("replication_key_value"):
        other = raw.get("replication_key")
        if other not in (None, key):
            _ignored_bookmark(stream, context, f"is for the replication key {other!r}")
    elif context and (saved_state(stream.tap_state, stream.name, None) or {}).get(
        "replication_key_value"
    ):
        _ignored_bookmark(stream, context, "is for the whole stream, read per partition now")


def _ignored_bookmark(stream: StatefulStream, context: Context, why: str) -> None:
    where = ", ".join(f"{key} '{value}'" for key, value in (context or {}).items())
    stream.source.warn_once(
        f"ignored-bookmark:{where}",
        "the saved bookmark%s %s (an older version of the tap?); reading it again from "
        "start_date, duplicates possible.",
        f" of {where}" if where else "",
        why,
    )


def warn_unmatched_partitions(stream: StatefulStream, partitions: list[dict]) -> None:
    """Warn once about each saved partition whose context matches none of ``partitions``."""
    stream_state = saved_state(stream.tap_state, stream.name, None) or {}
    saved = stream_state.get("partitions")
    read = [", ".join(f"{k} '{v}'" for k, v in p.items()) for p in partitions]
    for entry in saved if isinstance(saved, list) else ():
        context = entry.get("context") if isinstance(entry, dict) else None
        if not isinstance(context, dict) or context in partitions:
            continue
        where = ", ".join(f"{key} '{value}'" for key, value in context.items())
        close = difflib.get_close_matches(where, read, n=1)
        hint = f" (a typo of {close[0]}?)" if close else ""
        stream.source.warn_once(
            f"unmatched-partition:{where}",
            "the saved state of %s matches no partition read now%s; it is kept in the state "
            "as it is, and unused (read now: %s).",
            where,
            hint,
            "; ".join(read) or "none",
        )
