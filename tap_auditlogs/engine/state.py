"""A partition's state as the reading strategies keep it, and the checks of a state file.

Format (unchanged since the first release, so old state files resume): per partition,
``replication_key``, ``replication_key_value`` (the bookmark, nine fractional digits, UTC),
``recent_ids`` ({id: instant} emitted within the lookback before the bookmark) and, while a
newest-first pass is unfinished, ``pending_pass``.

No instant the tap writes is later than the time the run started (``PartitionState.not_after``,
set by the reader): an event stamped in the future never drags a bookmark past events still
to come, and every STATE the tap writes passes its own check on resume (``state_problems``).
"""

from __future__ import annotations

import typing as t

from tap_auditlogs.core.instants import NS_PER_SECOND, format_instant, now_instant, parse_instant

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

#: At most this many ids are kept in ``recent_ids`` per partition; when more events share
#: the lookback window, the oldest ids are forgotten (their re-read may duplicate).
MAX_RECENT_IDS = 2000


class PartitionState:
    """The strategies' view of one partition's state dict (the SDK's, written in place).

    Keys: ``replication_key``, ``replication_key_value`` (the bookmark, nine fractional
    digits, UTC), ``recent_ids`` ({id: instant} emitted within the lookback before the
    bookmark) and, while a newest-first pass is unfinished, ``pending_pass``.
    """

    def __init__(self, raw: dict, replication_key: str) -> None:
        """Wrap the SDK's writable partition state."""
        self.raw = raw
        self.replication_key = replication_key
        #: The latest instant a commit may write (ns; the run's start by the API's clock),
        #: asked at each commit; None: no limit. ``PartitionReader`` sets it.
        self.not_after: Callable[[], int] | None = None

    @property
    def bookmark(self) -> int | None:
        """The bookmark in ns, or None before the first completed pass."""
        value = self.raw.get("replication_key_value")
        if not value or self.raw.get("replication_key") not in (None, self.replication_key):
            return None
        return parse_instant(str(value), allow_naive=True)

    @property
    def recent(self) -> dict[str, int]:
        """Ids emitted within the lookback before the bookmark."""
        return decode_ids(self.raw.get("recent_ids"))

    @property
    def pending(self) -> dict | None:
        """The unfinished newest-first pass, if any."""
        pending = self.raw.get("pending_pass")
        return pending if isinstance(pending, dict) else None

    def commit(
        self,
        *,
        bookmark: int | None,
        recent: dict[str, int],
        pending: dict | None = None,
    ) -> None:
        """Replace the bookmark, recent ids and pending pass in one step.

        ``dict.update`` is a single call, so a SIGTERM handler that writes the state
        between two bytecodes never sees half of a checkpoint. Every instant is capped
        at ``not_after`` (``_capped``).
        """
        if self.not_after is not None:
            bookmark, recent, pending = _capped(self.not_after(), bookmark, recent, pending)
        update: dict[str, t.Any] = {
            "replication_key": self.replication_key,
            "recent_ids": encode_ids(recent),
            # No bookmark: clear a value this class could not read (another replication
            # key's), or the next run would take it for a bookmark of ours.
            "replication_key_value": None if bookmark is None else format_instant(bookmark),
        }
        if pending is None:
            self.raw.pop("pending_pass", None)
        else:
            update["pending_pass"] = pending
        self.raw.update(update)

    @staticmethod
    def problems(raw: Mapping[str, t.Any], where: str) -> list[str]:
        """What is wrong with the keys this class reads, one line each (``where``: the path)."""
        found: list[str] = []
        key = raw.get("replication_key")
        if key is not None and not isinstance(key, str):
            found.append(f"`{where}.replication_key` must be a string")
        bookmark = raw.get("replication_key_value")
        found += _instant_problem(bookmark, f"{where}.replication_key_value")
        found += _ids_problems(raw.get("recent_ids"), f"{where}.recent_ids")
        pending = raw.get("pending_pass")
        if pending is None:
            return found
        at = f"{where}.pending_pass"
        if not isinstance(pending, dict):
            return [*found, f"`{at}` must be an object"]
        for name in ("ceiling", "oldest"):
            found += _instant_problem(pending.get(name), f"{at}.{name}")
        found += _ids_problems(pending.get("ceiling_ids"), f"{at}.ceiling_ids")
        for name in ("page_token", "oldest_id"):
            value = pending.get(name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (str, int))):
                found.append(f"`{at}.{name}` must be a string, a number or null")
        return found

    def reset(self, *, bookmark: int | None, recent: dict[str, int]) -> None:
        """Put the bookmark and recent ids back to earlier values (None: no bookmark)."""
        if bookmark is None:
            self.raw.pop("replication_key_value", None)
        self.commit(bookmark=bookmark, recent=recent)


#: A saved instant further ahead of the clock than this was not written by the tap: a
#: bookmark in the future would silently skip every event until then.
FUTURE_TOLERANCE_NS = 86_400 * NS_PER_SECOND


def state_problems(state: Mapping[str, t.Any], streams: Iterable[str]) -> list[str]:
    """Everything wrong with an incoming state, one line each naming the key.

    The shape is checked for every stream (the SDK walks them all); the keys the
    strategies read are checked for ``streams``. The state of another stream, or of a
    partition no longer configured, is kept as it is.
    """
    bookmarks = state.get("bookmarks")
    if bookmarks is None:
        return []
    if not isinstance(bookmarks, dict):
        return ["`bookmarks` must be an object"]
    problems: list[str] = []
    ours = set(streams)
    for name, stream_state in bookmarks.items():
        where = f"bookmarks.{name}"
        if not isinstance(stream_state, dict):
            problems.append(f"`{where}` must be an object")
            continue
        if name in ours:
            problems += PartitionState.problems(stream_state, where)
        partitions = stream_state.get("partitions")
        if partitions is None:
            continue
        if not isinstance(partitions, list):
            problems.append(f"`{where}.partitions` must be a list")
            continue
        contexts: list[dict] = []
        for index, partition in enumerate(partitions):
            at = f"{where}.partitions[{index}]"
            if not isinstance(partition, dict) or not isinstance(partition.get("context"), dict):
                problems.append(f"`{at}` must be an object with a `context` object")
                continue
            if partition["context"] in contexts:
                problems.append(f"`{at}.context` repeats an earlier partition")
            contexts.append(partition["context"])
            if name in ours:
                problems += PartitionState.problems(partition, at)
    return problems


def _instant_problem(value: object, where: str) -> list[str]:
    """A saved instant: absent, or a date-time string not in the future."""
    if value is None or value == "":
        return []
    shown = repr(value)[:40]
    if not isinstance(value, str):
        return [f"`{where}` must be a date-time string, not {shown}"]
    try:
        ns = parse_instant(value, allow_naive=True)
    except ValueError:
        return [f"`{where}` is not a date-time ({shown})"]
    if ns > now_instant() + FUTURE_TOLERANCE_NS:
        return [f"`{where}` is in the future ({shown}); it would skip every event until then"]
    return []


def _ids_problems(value: object, where: str) -> list[str]:
    """Saved ids: absent, or an object of id -> date-time."""
    if value is None:
        return []
    if not isinstance(value, dict):
        return [f"`{where}` must be an object of id -> date-time"]
    for key, instant in value.items():
        found = _instant_problem(instant, f"{where}.{key}")
        if found or instant in (None, ""):
            return found or [f"`{where}.{key}` must be a date-time"]
    return []


def _capped(
    limit: int, bookmark: int | None, recent: dict[str, int], pending: dict | None
) -> tuple[int | None, dict[str, int], dict | None]:
    """The bookmark, recent ids and pending pass with no instant later than ``limit``.

    A lower bookmark re-reads more (the recent ids drop the repeats); a pending pass's
    ``ceiling`` and ``oldest`` only bound what it keeps and where it resumes.
    """
    if bookmark is not None and bookmark > limit:
        bookmark = limit
    if any(value > limit for value in recent.values()):
        recent = {key: min(value, limit) for key, value in recent.items()}
    if pending is not None:
        pending = dict(pending)
        for name in ("ceiling", "oldest"):
            value = pending.get(name)
            if value not in (None, "") and parse_instant(str(value), allow_naive=True) > limit:
                pending[name] = format_instant(limit)
        ids = decode_ids(pending.get("ceiling_ids"))
        if any(value > limit for value in ids.values()):
            pending["ceiling_ids"] = encode_ids({k: min(v, limit) for k, v in ids.items()})
    return bookmark, recent, pending


def encode_ids(ids: dict[str, int]) -> dict[str, str]:
    return {key: format_instant(value) for key, value in ids.items()}


def decode_ids(raw: object) -> dict[str, int]:
    if not isinstance(raw, dict):
        return {}
    return {str(key): parse_instant(str(value), allow_naive=True) for key, value in raw.items()}


def prune_ids(ids: dict[str, int], floor: int | None) -> dict[str, int]:
    """Keep the ids at or after ``floor``, at most ``MAX_RECENT_IDS`` of the newest."""
    kept = ids if floor is None else {k: v for k, v in ids.items() if v >= floor}
    if len(kept) > MAX_RECENT_IDS:
        newest = sorted(kept.items(), key=lambda item: item[1])[-MAX_RECENT_IDS:]
        kept = dict(newest)
    return kept
