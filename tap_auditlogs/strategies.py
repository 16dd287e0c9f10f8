"""The ways to read an audit log (``VerifiedAscending`` is in verified.py; the state they
keep in state.py).

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
* Totals are reconciled (``ScopeCount``): where the API reports a count for a query, a
  read that the API ends with fewer distinct events is read again (``Rereads``): an
  ascending read from where it got to, a newest-first pass from the top, a time window in
  halves down to parts that fit one page. A shortfall that persists is one WARNING with
  the numbers, and the bookmark does not move past that scope.
"""

from __future__ import annotations

import collections
import dataclasses
import itertools
import typing as t

from tap_auditlogs.errors import ProviderError
from tap_auditlogs.instants import NS_PER_SECOND, format_instant, parse_instant
from tap_auditlogs.state import decode_ids, encode_ids, prune_ids

if t.TYPE_CHECKING:
    from collections.abc import Generator, Iterable, Iterator, Mapping

    from tap_auditlogs.reader import PartitionReader

Record = dict[str, t.Any]
_T = t.TypeVar("_T")
Context = t.Optional["Mapping[str, t.Any]"]

#: Statuses with which an API refuses a page token it handed out earlier (expired cursor).
REFUSED_TOKEN_STATUSES = frozenset({400, 404, 410, 422})


@dataclasses.dataclass
class Page:
    """One page of an API response, decoded once."""

    records: list[Record]
    token: t.Any = None  # what fetched this page (None: the first page)
    next_token: t.Any = None  # what fetches the following page; None on the last page
    total: int | None = None  # the provider's total count, when it tells
    elapsed_s: float = 0.0  # how long the API took to answer it


class Strategy(t.Protocol):
    """A way to read one partition's log (``AuditLogStream.strategy``)."""

    name: str
    #: How it reads, for people (the README's table of streams).
    summary: str

    def read(self, reader: PartitionReader) -> Iterator[Record]:
        """Yield the new records of one partition, checkpointing as it goes."""


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


#: Times a scope that ended short of the API's total is read again, at most (each re-read
#: must find events the earlier reads did not, else the shortfall is final).
MAX_REREADS = 20
#: A time window read short of its total is split in halves down to this width at least.
MIN_PART_NS = NS_PER_SECOND


class ScopeCount:
    """The distinct events of one scope (a query read page after page to its end) against
    the total the API reports for it (``Page.total``).

    The smallest total reported counts: events that arrive during the read only raise it.
    """

    def __init__(self) -> None:
        """Nothing read yet."""
        self.ids: set[str] = set()
        self.total: int | None = None
        #: The last page said it was the last (None next token): the API ended the scope.
        self.ended = False

    def add(self, page: Page, ids: Iterable[str]) -> None:
        """Count a page of the scope."""
        if page.total is not None and (self.total is None or page.total < self.total):
            self.total = page.total
        self.ids.update(ids)
        self.ended = page.next_token is None

    @property
    def shortfall(self) -> int:
        """Events the API counts that the read did not see (0 when it gives no total)."""
        if self.total is None or not self.ended:
            return 0
        return max(self.total - len(self.ids), 0)


class Rereads:
    """The re-reads of a partition's scopes that ended short of the API's total."""

    def __init__(self) -> None:
        """No re-read yet."""
        self.known: set[str] = set()  # every id read so far
        self.done = 0
        self.found = 0  # ids first read since the last re-read started

    def fresh(self, record_id: str) -> bool:
        """False for a record a re-read meets again: it was handled when first read."""
        if record_id in self.known:
            return self.done == 0
        self.known.add(record_id)
        self.found += 1
        return True

    @property
    def stalled(self) -> bool:
        """The last re-read found nothing the earlier reads had not: the shortfall stays."""
        return self.done > 0 and not self.found

    def again(self) -> bool:
        """True to read a short scope again: the first time, and while re-reads find more."""
        if self.done >= MAX_REREADS or self.stalled:
            return False
        self.done += 1
        self.found = 0
        return True


def _queue_first(queue: collections.deque[_T], rest: Iterator[_T]) -> Iterator[_T]:
    """The items of ``queue`` (it may grow meanwhile) before each next item of ``rest``."""
    while True:
        if queue:
            yield queue.popleft()
            continue
        item = next(rest, None)
        if item is None:
            return
        yield item


def warn_shortfall(reader: PartitionReader, count: ScopeCount, what: str) -> None:
    """The one WARNING of a shortfall that persists after the re-reads."""
    context = reader.context
    where = ", ".join(f"{key} '{value}'" for key, value in (context or {}).items())
    reader.stream.warn_once(
        f"shortfall {where} {what}",
        "%sthe API reports %d events %s but %d distinct were read (%d short); reading it "
        "again did not find them. The bookmark stays before it: the next run reads it again.",
        f"{where}: " if where else "",
        count.total,
        what,
        len(count.ids),
        count.shortfall,
    )


class Ascending:
    """Oldest first from a server-side lower bound; the bookmark moves page by page.

    ``splittable``: the API honours the lower bound (documented, or proven), so after
    the first page the rest of the read may be split into time ranges whose pages are
    fetched side by side (``PartitionReader.split_points``). The ranges are still consumed one
    after another, oldest first: the bookmark logic does not change.
    """

    name = "ascending"
    summary = "ascending from the bookmark, resumable page by page"

    def __init__(self, *, splittable: bool = False) -> None:
        """``splittable``: see the class docstring."""
        self.splittable = splittable

    def read(self, reader: PartitionReader) -> Iterator[Record]:
        """Yield the new records of one partition.

        A chain of pages that the API ends short of the total it reports is read again:
        from the bookmark reached when sorted, else from the start; a shortfall that
        persists is one WARNING and the bookmark goes back to where the read started.
        """
        stream, state = reader.stream, reader.state
        start_bookmark, start_recent = state.bookmark, state.recent
        lower = stream.lower_bound(start_bookmark)
        recent, high = start_recent, start_bookmark
        emitted: dict[str, int] = {}
        ordered, previous = True, None
        rereading: collections.deque[tuple[int | None, Iterable[Page]]] = collections.deque()
        rereads = Rereads()
        for upper, pages in _queue_first(rereading, iter(self._ranges(reader, lower))):
            count = ScopeCount()
            for page in pages:
                count.add(page, (stream.id_of(record) for record in page.records))
                past_upper = False
                for record in page.records:
                    ts, record_id = stream.instant_of(record), stream.id_of(record)
                    if upper is not None and ts >= upper:
                        past_upper = True  # the next range's: read there
                        continue
                    if ordered and previous is not None and ts < previous:
                        ordered = False
                        _unordered(reader, start_bookmark, start_recent)
                    previous = ts
                    fresh = rereads.fresh(record_id)  # False: read before, handled then
                    if not fresh or not _is_new(ts, record_id, lower, recent, emitted):
                        continue
                    yield record
                    emitted[record_id] = ts
                    high = ts if high is None or ts > high else high
                if high is not None:
                    floor = high - stream.lookback_ns
                    if ordered:
                        recent = prune_ids({**recent, **emitted}, floor)
                        emitted = {}
                        state.commit(bookmark=high, recent=recent)
                        reader.checkpoint()
                    else:
                        emitted = {k: v for k, v in emitted.items() if v >= floor}
                if past_upper and ordered:
                    count.ended = False
                    break  # sorted: the rest of this chain is past the range too
            if not count.shortfall:
                continue
            if not rereads.again():
                if rereads.stalled or not ordered:  # else the re-reads still find more:
                    _keep_bookmark(reader, count, start_bookmark, start_recent)
                return  # the bookmark stands where they got to, the next run reads on
            # Sorted: again from the bookmark reached; else the whole read again.
            again = stream.lower_bound(high) if ordered and high is not None else lower
            previous = None
            rereading.append(
                (upper, reader.pages(stream.request_params(reader.context, again, upper)))
            )
        if high is not None:
            recent = prune_ids({**recent, **emitted}, high - stream.lookback_ns)
            state.commit(bookmark=high, recent=recent)
            reader.checkpoint()

    def _ranges(
        self, reader: PartitionReader, lower: int | None
    ) -> Iterator[tuple[int | None, Iterable[Page]]]:
        """(upper bound, pages) of each range, oldest first; one range unless split."""
        stream, context = reader.stream, reader.context
        pages = reader.pages(stream.request_params(context, lower, None))
        if not self.splittable:
            yield None, pages
            return
        first = next(iter(pages), None)
        if first is None:
            return
        stamps = [stream.instant_of(record) for record in first.records]
        ascending = all(a <= b for a, b in itertools.pairwise(stamps))
        splits = reader.split_points(first) if ascending else []
        if not splits:
            yield None, itertools.chain([first], pages)
            return
        close = getattr(pages, "close", None)
        if close is not None:
            close()  # the rest of this chain is read as ranges instead (nothing was fetched)
        yield None, [first]
        uppers: list[int | None] = [*splits[1:], None]
        requests = [
            (stream.request_params(context, start, end), end)
            for start, end in zip(splits, uppers, strict=True)
        ]
        reader.prefetch(requests)
        for params, end in requests:
            yield end, reader.pages(params)


def _keep_bookmark(
    reader: PartitionReader, count: ScopeCount, bookmark: int | None, recent: dict
) -> None:
    """A shortfall that persists: one WARNING, and the state goes back to ``bookmark``."""
    warn_shortfall(reader, count, "for this read")
    reader.state.reset(bookmark=bookmark, recent=recent)
    reader.checkpoint()


def _unordered(reader: PartitionReader, start_bookmark: int | None, start_recent: dict) -> None:
    """An ascending read met a step back in time: say so, take back its bookmarks."""
    reader.stream.warn_once(
        "order",
        "Pages are not in ascending order as requested; reading to the "
        "end and moving the bookmark only when the pass is complete.",
    )
    # The bookmarks committed page by page may be ahead of events the rest of the pass
    # still holds: take them back before anything else is emitted, so a kill from here
    # on cannot skip them.
    if reader.state.bookmark != start_bookmark:
        reader.state.reset(bookmark=start_bookmark, recent=start_recent)
        reader.checkpoint()


class NewestFirst:
    """Newest first down to the bookmark, with an early stop and a resumable pass."""

    name = "newest-first"
    summary = "newest-first scan with early stop"

    def read(self, reader: PartitionReader) -> Iterator[Record]:
        """Finish a pass an earlier run left unfinished, then make a fresh pass."""
        state = reader.state
        pending = state.pending
        if pending is not None:
            yield from self._pass(
                reader,
                ceiling=_parse_optional(pending.get("ceiling")),
                pass_ids=decode_ids(pending.get("ceiling_ids")),
                resume=pending,
                rereads=Rereads(),
            )
        yield from self._pass(reader, ceiling=None, pass_ids={}, resume=None, rereads=Rereads())

    def _pass(
        self,
        reader: PartitionReader,
        *,
        ceiling: int | None,
        pass_ids: dict[str, int],
        resume: dict | None,
        rereads: Rereads,
    ) -> Iterator[Record]:
        """Read from the newest page (or the resume point) down to the bookmark.

        A pass from the newest page that the API ends (no next page) short of the total it
        reports is read again; a shortfall that persists is one WARNING, and the bookmark
        stays where it was.
        """
        stream, state = reader.stream, reader.state
        count = ScopeCount()  # checked only for a pass read from the newest page
        bookmark = state.bookmark
        lower = stream.lower_bound(bookmark)
        recent = state.recent
        lookback = stream.lookback_ns
        oldest, oldest_id, start_token = _resume_point(resume)
        ordered, first_page = True, True
        params = stream.request_params(reader.context, lower, None)
        pages = _open_pass(reader, params, start_token)
        if pages is None:  # the saved token was refused: the pass starts over from the top
            yield from self._pass(
                reader, ceiling=ceiling, pass_ids=pass_ids, resume=None, rereads=rereads
            )
            return
        for page in pages:
            stamps = [stream.instant_of(record) for record in page.records]
            ids = [stream.id_of(record) for record in page.records]
            count.add(page, ids)
            resumed_page = first_page and resume is not None
            skip = 0
            if resumed_page:
                # The last run's last page is read again: it must still hold the last
                # event emitted (or only newer ones), else events may have moved past us.
                emitted_before = _emitted_before(stamps, ids, oldest, oldest_id)
                if emitted_before is None:
                    stream.warn_once(
                        "resume",
                        "The saved page no longer continues where the last run stopped; "
                        "re-reading this pass from the newest page (duplicates possible).",
                    )
                    yield from self._pass(
                        reader, ceiling=ceiling, pass_ids=pass_ids, resume=None, rereads=rereads
                    )
                    return
                skip = emitted_before
            ordered = ordered and _still_descending(
                reader, stamps, None if resumed_page else oldest
            )
            first_page = False
            rows = zip(page.records, stamps, ids, strict=True)
            for record, ts, record_id in itertools.islice(rows, skip, None):
                # rereads.fresh: False for a record read before (handled then).
                if not (
                    rereads.fresh(record_id) and _is_new(ts, record_id, lower, recent, pass_ids)
                ):
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
                count.ended = not reached_bookmark
                break
            if not stamps:
                continue  # an empty page is no place to resume from: keep the last one
            pass_ids = _save_place(
                reader,
                ceiling=ceiling,
                pass_ids=pass_ids,
                page_token=page.token,
                oldest=oldest,
                oldest_id=oldest_id,
            )
        if resume is None and count.shortfall:
            yield from self._short_pass(reader, count, rereads, ceiling, pass_ids)
            return
        new_bookmark = _max(bookmark, ceiling)
        floor = None if new_bookmark is None else new_bookmark - lookback
        state.commit(bookmark=new_bookmark, recent=prune_ids({**recent, **pass_ids}, floor))
        reader.checkpoint()

    def _short_pass(
        self,
        reader: PartitionReader,
        count: ScopeCount,
        rereads: Rereads,
        ceiling: int | None,
        pass_ids: dict[str, int],
    ) -> Iterator[Record]:
        """A pass ended short of the API's total: read it again, or keep the bookmark."""
        if rereads.again():
            yield from self._pass(
                reader, ceiling=ceiling, pass_ids=pass_ids, resume=None, rereads=rereads
            )
            return
        _keep_bookmark(reader, count, reader.state.bookmark, reader.state.recent)


def _open_pass(
    reader: PartitionReader,
    params: dict,
    start_token: t.Any,
) -> Iterator[Page] | None:
    """The pages of a pass from ``start_token``; None if the API refuses that saved token.

    A cursor saved by an earlier run may have expired (400, 404, 410, 422): starting the
    pass over from the newest page costs duplicates, where failing would block every run.
    """
    pages = reader.pages(params, start_token=start_token)
    if start_token is None:
        return pages
    try:
        first = next(pages, None)
    except ProviderError as error:
        if error.status not in REFUSED_TOKEN_STATUSES:
            raise
        reader.stream.warn_once(
            "resume-refused",
            "The API refused the saved page token (HTTP %s); re-reading this pass from the "
            "newest page (duplicates possible).",
            error.status,
        )
        return None
    return itertools.chain([] if first is None else [first], pages)


def _resume_point(resume: dict | None) -> tuple[int | None, object, t.Any]:
    """Oldest instant and id emitted, and the page token, of a pass to resume."""
    if not resume:
        return None, None, None
    return _parse_optional(resume.get("oldest")), resume.get("oldest_id"), resume.get("page_token")


def _still_descending(reader: PartitionReader, stamps: list[int], previous: int | None) -> bool:
    """True when a page is newest first (``_descending``); else say so once."""
    if _descending(stamps, previous):
        return True
    reader.stream.warn_once(
        "order",
        "A page is not newest-first; reading to the end of the log and "
        "filtering on the client instead of stopping early.",
    )
    return False


def _save_place(
    reader: PartitionReader,
    *,
    ceiling: int | None,
    pass_ids: dict[str, int],
    page_token: t.Any,
    oldest: int | None,
    oldest_id: object,
) -> dict[str, int]:
    """Checkpoint a newest-first pass cut short here (``pending_pass``); the pruned ids."""
    state = reader.state
    floor = None if ceiling is None else ceiling - reader.stream.lookback_ns
    pass_ids = prune_ids(pass_ids, floor)
    state.commit(
        bookmark=state.bookmark,
        recent=state.recent,
        pending={
            "ceiling": None if ceiling is None else format_instant(ceiling),
            "ceiling_ids": encode_ids(pass_ids),
            "page_token": page_token,
            "oldest": None if oldest is None else format_instant(oldest),
            "oldest_id": oldest_id,
        },
    )
    reader.checkpoint()
    return pass_ids


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
        days = round(window_ns / (86_400 * NS_PER_SECOND))
        self.summary = f"time windows of at most {days} days"

    def read(self, reader: PartitionReader) -> Iterator[Record]:
        """Yield the new records of one partition, window by window."""
        stream, state = reader.stream, reader.state
        end = stream.run_started_ns()
        lower = stream.lower_bound(state.bookmark)
        if lower is None:
            lower = end - self.default_span_ns
        windows: list[tuple[int, int]] = []
        while lower < end:
            windows.append((lower, min(lower + self.window_ns, end)))
            lower = windows[-1][1]
        requests: list[tuple[dict, int | None]] = [
            (stream.request_params(reader.context, start, stop), None) for start, stop in windows
        ]
        reader.prefetch(requests)  # read-ahead: windows are fetched side by side
        recent = state.recent
        held = False  # a window ended short of its total for good: no checkpoint after it
        for (window_start, window_end), (params, _) in zip(windows, requests, strict=True):
            emitted: dict[str, int] = {}
            window = (window_start, window_end)
            count, short = yield from self._window(reader, window, params, recent, emitted)
            if short:
                warn_shortfall(reader, count, f"in a window ({short} still short read in parts)")
                held = True
            bookmark = max(state.bookmark or window_end, window_end)
            recent = prune_ids({**recent, **emitted}, bookmark - stream.lookback_ns)
            if not held:
                state.commit(bookmark=bookmark, recent=recent)
                reader.checkpoint()

    def _window(
        self,
        reader: PartitionReader,
        window: tuple[int, int],
        params: dict,
        recent: dict[str, int],
        emitted: dict[str, int],
    ) -> Generator[Record, None, tuple[ScopeCount, int]]:
        """Yield the new records of ``window``; return its count and how many are still short.

        A window read short of the total the API reports (page boundaries that moved
        between requests, a last page that came too early) is read again as two halves,
        down to parts that fit one page or are too narrow to split.
        """
        stream = reader.stream
        start, end = window
        count = ScopeCount()
        for page in reader.pages(params):
            count.add(page, (stream.id_of(record) for record in page.records))
            for record in page.records:
                ts, record_id = stream.instant_of(record), stream.id_of(record)
                if ts > end:
                    stream.warn_once(
                        "window",
                        "The API returned events outside the requested window; "
                        "filtering them on the client.",
                    )
                    continue
                if not _is_new(ts, record_id, start, recent, emitted):
                    continue
                yield record
                emitted[record_id] = ts
        if not count.shortfall or end - start < 2 * MIN_PART_NS:
            return count, count.shortfall
        middle = start + (end - start) // 2
        short = 0
        for part in ((start, middle), (middle, end)):
            part_params = stream.request_params(reader.context, *part)
            _, part_short = yield from self._window(reader, part, part_params, recent, emitted)
            short += part_short
        return count, short
