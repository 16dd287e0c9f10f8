"""The three ways to read an audit log, and the state each one keeps.

Every provider reads its log with one of these strategies (see ../shared/architecture.md):

* ``Ascending``: the API sorts oldest first from a server-side lower bound. The bookmark
  moves after every page, so a killed run resumes mid-way.
* ``NewestFirst``: the API pages from the newest event down. A pass reads down to the
  bookmark and stops early; the bookmark moves only when the pass reached the old one.
  A pass cut short keeps its place (``pending_pass``) and the next run finishes it first.
* ``TimeWindows``: the API takes a bounded time range. Windows go oldest first, and the
  end of a fully read window is a checkpoint.
* ``VerifiedAscending``: for an API whose lower bound and sort may be ignored. It judges
  the first page and hands the pass to ``Ascending`` or ``NewestFirst``, checking every
  page on the way.

Shared rules, all in this module:

* Instants are compared as integers (``instants.py``), never as strings.
* One place decides whether a record is new (``_is_new``): not older than the bookmark
  minus the provider's lookback, and not among the ids already emitted inside that
  lookback (``recent_ids`` in the state). The lookback re-reads late events; the id set
  keeps the re-read from emitting duplicates.
* Every order the strategies rely on is checked on every page. When a page breaks it,
  the strategy warns and falls back to reading on and filtering on the client, without
  moving the bookmark until the end.
* State is written (``checkpoint``) only after every record it covers was emitted.
"""

from __future__ import annotations

import dataclasses
import itertools
import typing as t

from tap_auditlogs.errors import ProviderError
from tap_auditlogs.instants import NS_PER_SECOND, format_instant, now_instant, parse_instant

if t.TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping

Record = dict[str, t.Any]
Context = t.Optional["Mapping[str, t.Any]"]

#: Statuses with which an API refuses a page token it handed out earlier (expired cursor).
REFUSED_TOKEN_STATUSES = frozenset({400, 404, 410, 422})

#: At most this many ids are kept in ``recent_ids`` per partition; when more events share
#: the lookback window, the oldest ids are forgotten (their re-read may duplicate).
MAX_RECENT_IDS = 2000


@dataclasses.dataclass
class Page:
    """One page of an API response, decoded once."""

    records: list[Record]
    token: t.Any = None  # what fetched this page (None: the first page)
    next_token: t.Any = None  # what fetches the following page; None on the last page
    total: int | None = None  # the provider's total count, when it tells
    elapsed_s: float = 0.0  # how long the API took to answer it


class Reader(t.Protocol):
    """What a strategy needs from a stream (``AuditLogStream`` implements it)."""

    @property
    def lookback_ns(self) -> int:
        """Nanoseconds re-read before the bookmark."""

    def lower_bound(self, bookmark: int | None) -> int | None:
        """The oldest instant to read: bookmark minus lookback, else ``start_date``."""

    def request_params(self, context: Context, lower: int | None, upper: int | None) -> dict:
        """Query parameters for a pass bounded by ``lower`` and ``upper`` (ns)."""

    def pages(self, context: Context, params: dict, start_token: t.Any = None) -> Iterator[Page]:
        """Pages of the log from ``start_token`` (the first page when None)."""

    def instant_of(self, record: Record) -> int:
        """The record's replication-key instant in ns."""

    def id_of(self, record: Record) -> str:
        """The record's provider id."""

    def state_of(self, context: Context) -> PartitionState:
        """The partition's state."""

    def checkpoint(self) -> None:
        """Emit a STATE message now."""

    def warn_once(self, key: str, message: str, *args: object) -> None:
        """Log a warning once per run and key."""

    def info_once(self, key: str, message: str, *args: object) -> None:
        """Log an INFO line once per run and key."""

    def run_started_ns(self) -> int:
        """When this run started (ns); frozen so windows do not chase the clock."""

    def prefetch(self, context: Context, requests: list[tuple[dict, int | None]]) -> None:
        """Requests this read makes next, in order: (params, upper bound or None). A
        read-ahead worker fetches their pages side by side; otherwise nothing happens."""

    def split_points(self, context: Context, first: Page) -> list[int]:
        """Where to split the rest of an ascending read after its ``first`` page into
        ranges read side by side ([]: read on as one chain)."""


class Strategy(t.Protocol):
    """A way to read one partition's log (``AuditLogStream.strategy``)."""

    name: str

    def read(self, reader: Reader, context: Context) -> Iterator[Record]:
        """Yield the new records of one partition, checkpointing as it goes."""


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
        return _decode_ids(self.raw.get("recent_ids"))

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
        between two bytecodes never sees half of a checkpoint.
        """
        update: dict[str, t.Any] = {
            "replication_key": self.replication_key,
            "recent_ids": _encode_ids(recent),
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


def _encode_ids(ids: dict[str, int]) -> dict[str, str]:
    return {key: format_instant(value) for key, value in ids.items()}


def _decode_ids(raw: object) -> dict[str, int]:
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


def _is_new(ts: int, record_id: str, lower: int | None, *seen: Mapping[str, int]) -> bool:
    """The one place that decides whether a record read from the API is emitted."""
    if lower is not None and ts < lower:
        return False
    for ids in seen:  # noqa: SIM110 - a loop, not any(...): this runs for every record
        if record_id in ids:
            return False
    return True


def _max(*values: int | None) -> int | None:
    present = [v for v in values if v is not None]
    return max(present) if present else None


class Ascending:
    """Oldest first from a server-side lower bound; the bookmark moves page by page.

    ``splittable``: the API honours the lower bound (documented, or proven), so after
    the first page the rest of the read may be split into time ranges whose pages are
    fetched side by side (``Reader.split_points``). The ranges are still consumed one
    after another, oldest first: the bookmark logic does not change.
    """

    name = "ascending"

    def __init__(self, *, splittable: bool = False) -> None:
        """``splittable``: see the class docstring."""
        self.splittable = splittable

    def read(self, reader: Reader, context: Context) -> Iterator[Record]:
        """Yield the new records of one partition."""
        state = reader.state_of(context)
        start_bookmark, start_recent = state.bookmark, state.recent
        lower = reader.lower_bound(start_bookmark)
        recent = start_recent
        high = start_bookmark
        emitted: dict[str, int] = {}
        ordered, previous = True, None
        for upper, pages in self._ranges(reader, context, lower):
            for page in pages:
                past_upper = False
                for record in page.records:
                    ts, record_id = reader.instant_of(record), reader.id_of(record)
                    if upper is not None and ts >= upper:
                        past_upper = True  # the next range's: read there
                        continue
                    if ordered and previous is not None and ts < previous:
                        ordered = False
                        reader.warn_once(
                            "order",
                            "Pages are not in ascending order as requested; reading to the "
                            "end and moving the bookmark only when the pass is complete.",
                        )
                        # The bookmarks committed page by page may be ahead of events the
                        # rest of the pass still holds: take them back before anything
                        # else is emitted, so a kill from here on cannot skip them.
                        if state.bookmark != start_bookmark:
                            state.reset(bookmark=start_bookmark, recent=start_recent)
                            reader.checkpoint()
                    previous = ts
                    if not _is_new(ts, record_id, lower, recent, emitted):
                        continue
                    yield record
                    emitted[record_id] = ts
                    high = ts if high is None or ts > high else high
                if high is not None:
                    floor = high - reader.lookback_ns
                    if ordered:
                        recent = prune_ids({**recent, **emitted}, floor)
                        emitted = {}
                        state.commit(bookmark=high, recent=recent)
                        reader.checkpoint()
                    else:
                        emitted = {k: v for k, v in emitted.items() if v >= floor}
                if past_upper and ordered:
                    break  # sorted: the rest of this chain is past the range too
        if high is not None:
            recent = prune_ids({**recent, **emitted}, high - reader.lookback_ns)
            state.commit(bookmark=high, recent=recent)
            reader.checkpoint()

    def _ranges(
        self, reader: Reader, context: Context, lower: int | None
    ) -> Iterator[tuple[int | None, Iterable[Page]]]:
        """(upper bound, pages) of each range, oldest first; one range unless split."""
        pages = reader.pages(context, reader.request_params(context, lower, None))
        if not self.splittable:
            yield None, pages
            return
        first = next(iter(pages), None)
        if first is None:
            return
        stamps = [reader.instant_of(record) for record in first.records]
        ascending = all(a <= b for a, b in itertools.pairwise(stamps))
        splits = reader.split_points(context, first) if ascending else []
        if not splits:
            yield None, itertools.chain([first], pages)
            return
        close = getattr(pages, "close", None)
        if close is not None:
            close()  # the rest of this chain is read as ranges instead (nothing was fetched)
        yield None, [first]
        uppers: list[int | None] = [*splits[1:], None]
        requests = [
            (reader.request_params(context, start, end), end)
            for start, end in zip(splits, uppers, strict=True)
        ]
        reader.prefetch(context, requests)
        for params, end in requests:
            yield end, reader.pages(context, params)


class NewestFirst:
    """Newest first down to the bookmark, with an early stop and a resumable pass."""

    name = "newest-first"

    def read(self, reader: Reader, context: Context) -> Iterator[Record]:
        """Finish a pass an earlier run left unfinished, then make a fresh pass."""
        state = reader.state_of(context)
        pending = state.pending
        if pending is not None:
            yield from self._pass(
                reader,
                context,
                ceiling=_parse_optional(pending.get("ceiling")),
                pass_ids=_decode_ids(pending.get("ceiling_ids")),
                resume=pending,
            )
        yield from self._pass(reader, context, ceiling=None, pass_ids={}, resume=None)

    def _pass(
        self,
        reader: Reader,
        context: Context,
        *,
        ceiling: int | None,
        pass_ids: dict[str, int],
        resume: dict | None,
    ) -> Iterator[Record]:
        """Read from the newest page (or the resume point) down to the bookmark."""
        state = reader.state_of(context)
        bookmark = state.bookmark
        lower = reader.lower_bound(bookmark)
        recent = state.recent
        lookback = reader.lookback_ns
        oldest = _parse_optional(resume.get("oldest")) if resume else None
        oldest_id = resume.get("oldest_id") if resume else None
        start_token = resume.get("page_token") if resume else None
        ordered, first_page = True, True
        params = reader.request_params(context, lower, None)
        pages = _open_pass(reader, context, params, start_token)
        if pages is None:  # the saved token was refused: the pass starts over from the top
            yield from self._pass(reader, context, ceiling=ceiling, pass_ids=pass_ids, resume=None)
            return
        for page in pages:
            stamps = [reader.instant_of(record) for record in page.records]
            ids = [reader.id_of(record) for record in page.records]
            resumed_page = first_page and resume is not None
            skip = 0
            if resumed_page:
                # The last run's last page is read again: it must still hold the last
                # event emitted (or only newer ones), else events may have moved past us.
                emitted_before = _emitted_before(stamps, ids, oldest, oldest_id)
                if emitted_before is None:
                    reader.warn_once(
                        "resume",
                        "The saved page no longer continues where the last run stopped; "
                        "re-reading this pass from the newest page (duplicates possible).",
                    )
                    yield from self._pass(
                        reader, context, ceiling=ceiling, pass_ids=pass_ids, resume=None
                    )
                    return
                skip = emitted_before
            if ordered and not _descending(stamps, None if resumed_page else oldest):
                ordered = False
                reader.warn_once(
                    "order",
                    "A page is not newest-first; reading to the end of the log and "
                    "filtering on the client instead of stopping early.",
                )
            first_page = False
            rows = zip(page.records, stamps, ids, strict=True)
            for record, ts, record_id in itertools.islice(rows, skip, None):
                if not _is_new(ts, record_id, lower, recent, pass_ids):
                    continue
                yield record
                ceiling = ts if ceiling is None or ts > ceiling else ceiling
                if ceiling is not None and ts >= ceiling - lookback:
                    pass_ids[record_id] = ts
            if not ordered:
                continue
            if stamps:
                oldest, oldest_id = stamps[-1], ids[-1]
            reached_bookmark = lower is not None and oldest is not None and oldest < lower
            if page.next_token is None or reached_bookmark:
                break
            floor = None if ceiling is None else ceiling - lookback
            pass_ids = prune_ids(pass_ids, floor)
            state.commit(
                bookmark=bookmark,
                recent=recent,
                pending={
                    "ceiling": None if ceiling is None else format_instant(ceiling),
                    "ceiling_ids": _encode_ids(pass_ids),
                    "page_token": page.token,
                    "oldest": None if oldest is None else format_instant(oldest),
                    "oldest_id": oldest_id,
                },
            )
            reader.checkpoint()
        new_bookmark = _max(bookmark, ceiling)
        floor = None if new_bookmark is None else new_bookmark - lookback
        state.commit(bookmark=new_bookmark, recent=prune_ids({**recent, **pass_ids}, floor))
        reader.checkpoint()


def _open_pass(
    reader: Reader,
    context: Context,
    params: dict,
    start_token: t.Any,
) -> Iterator[Page] | None:
    """The pages of a pass from ``start_token``; None if the API refuses that saved token.

    A cursor saved by an earlier run may have expired (400, 404, 410, 422): starting the
    pass over from the newest page costs duplicates, where failing would block every run.
    """
    pages = reader.pages(context, params, start_token=start_token)
    if start_token is None:
        return pages
    try:
        first = next(pages, None)
    except ProviderError as error:
        if error.status not in REFUSED_TOKEN_STATUSES:
            raise
        reader.warn_once(
            "resume-refused",
            "The API refused the saved page token (HTTP %s); re-reading this pass from the "
            "newest page (duplicates possible).",
            error.status,
        )
        return None
    return itertools.chain([] if first is None else [first], pages)


def _parse_optional(value: object) -> int | None:
    return None if value in (None, "") else parse_instant(str(value), allow_naive=True)


def _descending(stamps: list[int], previous: int | None) -> bool:
    """True when a page is newest first and does not start above the previous page."""
    if previous is not None and stamps and stamps[0] > previous:
        return False
    return all(a >= b for a, b in itertools.pairwise(stamps))


def _emitted_before(
    stamps: list[int], ids: list[str], oldest: int | None, oldest_id: object
) -> int | None:
    """How many leading records of a re-read page the last run emitted; None to start over.

    New events push older ones to later pages, so the page may now hold the last emitted
    event further down (what follows it is new to us), or only newer events (read on,
    duplicates are harmless). If it holds older events but not the last emitted one,
    events moved up past the saved position and the pass must start over.
    """
    if oldest is None:
        return 0
    if oldest_id in ids:
        return ids.index(t.cast("str", oldest_id)) + 1
    if stamps and min(stamps) >= oldest:
        return 0
    return None


class TimeWindows:
    """Bounded windows, oldest first; each finished window is a checkpoint."""

    name = "time-windows"

    def __init__(self, window_ns: int, default_span_ns: int) -> None:
        """Windows of at most ``window_ns``; without a start, begin ``default_span_ns`` ago."""
        self.window_ns = window_ns
        self.default_span_ns = default_span_ns

    def read(self, reader: Reader, context: Context) -> Iterator[Record]:
        """Yield the new records of one partition, window by window."""
        state = reader.state_of(context)
        end = reader.run_started_ns()
        lower = reader.lower_bound(state.bookmark)
        if lower is None:
            lower = end - self.default_span_ns
        recent = state.recent
        windows: list[tuple[int, int]] = []
        while lower < end:
            windows.append((lower, min(lower + self.window_ns, end)))
            lower = windows[-1][1]
        requests: list[tuple[dict, int | None]] = [
            (reader.request_params(context, start, stop), None) for start, stop in windows
        ]
        reader.prefetch(context, requests)  # read-ahead: windows are fetched side by side
        for (window_start, window_end), (params, _) in zip(windows, requests, strict=True):
            emitted: dict[str, int] = {}
            for page in reader.pages(context, params):
                for record in page.records:
                    ts, record_id = reader.instant_of(record), reader.id_of(record)
                    if ts > window_end:
                        reader.warn_once(
                            "window",
                            "The API returned events outside the requested window; "
                            "filtering them on the client.",
                        )
                        continue
                    if not _is_new(ts, record_id, window_start, recent, emitted):
                        continue
                    yield record
                    emitted[record_id] = ts
            bookmark = max(state.bookmark or window_end, window_end)
            recent = prune_ids({**recent, **emitted}, bookmark - reader.lookback_ns)
            state.commit(bookmark=bookmark, recent=recent)
            reader.checkpoint()


#: Pages the verified strategy reads before it must decide. Only pages whose timestamps are
#: all equal leave the order open, so a real log decides on its first page.
PROBE_PAGES = 3

#: What the verified strategy found on the first pages -> what it logs (``{bound}``: below).
_PATHS = {
    "ascending": (
        "pages come oldest first as asked and {bound}; reading oldest first, the bookmark "
        "moves page by page (path: ascending)."
    ),
    "ascending-whole-log": (
        "pages come oldest first but {bound}; reading the whole log oldest first, the "
        "bookmark moves page by page (path: ascending, whole log)."
    ),
    "newest-first": (
        "pages come newest first although oldest first was asked ({bound}); reading newest "
        "first down to the bookmark and stopping there (path: newest-first)."
    ),
    "unordered": (
        "pages come in no order ({bound}); reading the whole log and filtering on the client, "
        "the bookmark moves only at the end (path: full read)."
    ),
    "unverified": (
        "too few distinct timestamps to tell the order ({bound}); reading oldest first with "
        "the order checked on every page (path: ascending, unverified)."
    ),
    "resume": (
        "an earlier run left a newest-first pass unfinished; finishing it, then reading "
        "newest first (path: newest-first, resumed)."
    ),
}
_BOUNDS = {
    "none": "no lower bound was sent yet",
    "honoured": "nothing older than the lower bound came back",
    "ignored": "the lower bound is ignored: older events came back, filtered on the client",
}


class VerifiedAscending:
    """``Ascending`` once the pages prove the API honours the lower bound and the sort.

    For APIs given a lower bound and an ascending sort that they may ignore (parameters
    too new to trust, an undocumented order). The first page of the pass is read, judged,
    and fed back (``_Replay``) to the strategy that fits what it shows:

    * oldest first: ``Ascending``; when older events than the bound came back too, it
      reads the whole log each run but stays sorted, so the bookmark still moves page by
      page.
    * newest first: ``NewestFirst`` (early stop, a resumable pending pass). It checks
      every page itself and moves the bookmark only once a pass is complete.
    * no order: ``Ascending``, which sees the disorder on that same page and reads to the
      end, filtering on the client and moving the bookmark only then.

    ``Ascending`` keeps checking every page: at a step back in time it takes back the
    bookmarks it moved page by page and reads on to the end (see ``Ascending.read``).

    A newest-first pass an earlier run left unfinished is finished first, by
    ``NewestFirst``. The path taken is logged once per run, at INFO.
    """

    name = "verified-ascending"

    def __init__(self, *, bound_slack_ns: int = 0, probe_pages: int = PROBE_PAGES) -> None:
        """``bound_slack_ns``: how much earlier than the bound the reader may really ask.

        A reader that rounds the bound down (to whole seconds, say) gets events up to that
        much older; they do not prove the bound ignored.
        """
        self.bound_slack_ns = bound_slack_ns
        self.probe_pages = probe_pages
        self.ascending = Ascending()
        #: Once the first page proves the bound and the sort honoured, the rest of the
        #: read may be split into ranges fetched side by side.
        self.proven_ascending = Ascending(splittable=True)
        self.newest_first = NewestFirst()

    def read(self, reader: Reader, context: Context) -> Iterator[Record]:
        """Judge the first page(s), then read with the strategy they call for."""
        state = reader.state_of(context)
        if state.pending is not None:
            reader.info_once("path", _PATHS["resume"])
            yield from self.newest_first.read(reader, context)
            return
        lower = reader.lower_bound(state.bookmark)
        params = reader.request_params(context, lower, None)
        pages = reader.pages(context, params)
        probed: list[Page] = []
        stamps: list[int] = []
        order = None
        for page in pages:
            probed.append(page)
            stamps += [reader.instant_of(record) for record in page.records]
            order = _order_of(stamps)
            if order is not None or page.next_token is None or len(probed) >= self.probe_pages:
                break
        floor = None if lower is None else lower - self.bound_slack_ns
        bound = "none" if floor is None else "honoured"
        if floor is not None and any(ts < floor for ts in stamps):
            bound = "ignored"
        path = order or "unverified"
        if path == "ascending" and bound == "ignored":
            path = "ascending-whole-log"
        reader.info_once("path", _PATHS[path].format(bound=_BOUNDS[bound]))
        if path == "newest-first":
            replay = _Replay(reader, params, probed, pages)
            yield from self.newest_first.read(replay, context)
            return
        proven = path == "ascending" and bound == "honoured"
        ascending = self.proven_ascending if proven else self.ascending
        yield from ascending.read(_Replay(reader, params, probed, pages), context)


def _order_of(stamps: list[int]) -> str | None:
    """``ascending``, ``newest-first`` or ``unordered``; None while all instants are equal."""
    rises = falls = False
    for a, b in itertools.pairwise(stamps):
        rises = rises or b > a
        falls = falls or b < a
    if rises and falls:
        return "unordered"
    if falls:
        return "newest-first"
    return "ascending" if rises else None


class _Replay:
    """A Reader whose first pass with ``params`` replays the pages already read, then goes on.

    Everything else goes to the wrapped reader, so the strategy it is handed reads the
    same state and writes the same checkpoints.
    """

    def __init__(
        self,
        reader: Reader,
        params: dict,
        probed: list[Page],
        rest: Iterator[Page],
    ) -> None:
        self.reader = reader
        self.params = params
        self.probed: list[Page] | None = probed
        self.rest = rest

    def pages(self, context: Context, params: dict, start_token: t.Any = None) -> Iterator[Page]:
        """The replayed pass (once), or the reader's pages."""
        if self.probed is None or start_token is not None or params != self.params:
            yield from self.reader.pages(context, params, start_token)
            return
        probed, self.probed = self.probed, None
        yield from itertools.chain(probed, self.rest)

    @property
    def lookback_ns(self) -> int:
        """The reader's lookback."""
        return self.reader.lookback_ns

    def lower_bound(self, bookmark: int | None) -> int | None:
        """The reader's lower bound."""
        return self.reader.lower_bound(bookmark)

    def request_params(self, context: Context, lower: int | None, upper: int | None) -> dict:
        """The reader's query parameters."""
        return self.reader.request_params(context, lower, upper)

    def instant_of(self, record: Record) -> int:
        """The reader's instant of a record."""
        return self.reader.instant_of(record)

    def id_of(self, record: Record) -> str:
        """The reader's id of a record."""
        return self.reader.id_of(record)

    def state_of(self, context: Context) -> PartitionState:
        """The reader's state."""
        return self.reader.state_of(context)

    def checkpoint(self) -> None:
        """The reader's checkpoint."""
        self.reader.checkpoint()

    def warn_once(self, key: str, message: str, *args: object) -> None:
        """The reader's warning."""
        self.reader.warn_once(key, message, *args)

    def info_once(self, key: str, message: str, *args: object) -> None:
        """The reader's INFO line."""
        self.reader.info_once(key, message, *args)

    def run_started_ns(self) -> int:
        """The reader's run start."""
        return self.reader.run_started_ns()

    def prefetch(self, context: Context, requests: list[tuple[dict, int | None]]) -> None:
        """The reader's prefetch."""
        self.reader.prefetch(context, requests)

    def split_points(self, context: Context, first: Page) -> list[int]:
        """The reader's split points."""
        return self.reader.split_points(context, first)
