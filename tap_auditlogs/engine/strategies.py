"""The ways to read an audit log (``NewestFirst`` is in newest_first.py, ``VerifiedAscending``
in verified.py, ``TimeWindows`` in windows.py; the state they keep in state.py).

Every provider reads its log with one of these strategies:

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
  minus the provider's lookback, not at or after ``end_date`` (``stream.end_ns``), and not
  among the ids already emitted inside that lookback (``recent_ids`` in the state). The
  lookback re-reads late events; the id set keeps the re-read from emitting duplicates.
* Every order the strategies rely on is checked on every page. When a page breaks it,
  the strategy warns and falls back to reading on and filtering on the client, without
  moving the bookmark until the end.
* State is written (``checkpoint``) only after every record it covers was emitted.
* A record without a readable instant (``instant_of`` is None: missing, null, garbage) is
  emitted unless its id was, but never moves a bookmark, ends a pass or judges an order.
  Its id is remembered at the nearest instant known, if any (else a re-read may repeat it,
  which the key's upsert removes).
* Totals are reconciled (totals.py): a read that the API ends short of the count it
  reports is read again; a shortfall that persists keeps the bookmark, with a WARNING.
"""

from __future__ import annotations

import collections
import dataclasses
import itertools
import typing as t

from tap_auditlogs.engine.state import prune_ids
from tap_auditlogs.engine.totals import Rereads, ScopeCount, keep_bookmark, queue_first

if t.TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping

    from tap_auditlogs.core.types import Page, Record
    from tap_auditlogs.engine.partition_reader import PartitionReader

Bound = int | None

#: Statuses with which an API refuses a page token it handed out earlier (expired cursor).
REFUSED_TOKEN_STATUSES = frozenset({400, 404, 410, 422})


class Strategy(t.Protocol):
    """A way to read one partition's log (``AuditLogStream.strategy``)."""

    name: str
    #: How it reads, for people (the README's table of streams).
    summary: str

    def read(self, reader: PartitionReader) -> Iterator[Record]:
        """Yield the new records of one partition, checkpointing as it goes."""


def _is_new(
    ts: int | None, record_id: str, lower: int | None, *seen: Mapping[str, int], upper: Bound = None
) -> bool:
    """The one place that decides whether a record read from the API is emitted: in
    [``lower``, ``upper``) (``end_date``), its id not ``seen`` (no instant: unless its id was)."""
    below = lower is not None and ts is not None and ts < lower
    if below or (upper is not None and ts is not None and ts >= upper):
        return False
    for ids in seen:  # noqa: SIM110 - a loop, not any(...): this runs for every record
        if record_id in ids:
            return False
    return True


def _known(stamps: Iterable[int | None]) -> list[int]:
    """The instants that could be read (records without one judge no order)."""
    return [ts for ts in stamps if ts is not None]


def _nearest(stamps: list[int | None], above: int | None) -> list[int | None]:
    """Newest first: each record's instant, else the last one known above it (``above``:
    the previous page's last)."""
    nearest = []
    for ts in stamps:
        above = above if ts is None else ts
        nearest.append(above)
    return nearest


def _max(*values: int | None) -> int | None:
    present = [v for v in values if v is not None]
    return max(present) if present else None


class Ascending:
    """Oldest first from a server-side lower bound; the bookmark moves page by page.

    ``splittable``: the API honours the lower bound (documented, or proven), so after
    the first page the rest of the read may be split into time ranges whose pages are
    fetched side by side (``PartitionReader.split_points``). The ranges are still consumed one
    after another, oldest first: the bookmark logic does not change.
    """

    name = "ascending"
    summary = "ascending from the bookmark, resumable page by page"

    def __init__(self, *, splittable: bool = False, page_by_page: bool = True) -> None:
        """``splittable``: see the class docstring. ``page_by_page=False``: the order is
        not proven (verified.py), so the bookmark moves only when the pass is complete."""
        self.splittable = splittable
        self.page_by_page = page_by_page

    def read(self, reader: PartitionReader) -> Iterator[Record]:  # noqa: PLR0915
        """Yield the new records of one partition.

        A chain of pages that the API ends short of the total it reports is read again
        (totals.py): from the bookmark reached when sorted, else from the start.
        """
        stream, state = reader.stream, reader.state
        start_bookmark, start_recent = state.bookmark, state.recent
        lower = stream.lower_bound(start_bookmark)
        recent = start_recent
        high = start_bookmark
        emitted: dict[str, int] = {}
        ordered, previous = True, None
        rereading: collections.deque[tuple[int | None, Iterable[Page]]] = collections.deque()
        rereads = Rereads()
        end = stream.end_ns
        if end is not None and lower is not None and lower >= end:
            return  # a bookmark at end_date already: nothing before it is left to read
        for upper, pages in queue_first(rereading, iter(self._ranges(reader, lower))):
            count = ScopeCount()
            # A sorted read (documented or proven) stops at end_date as at a range's end.
            stop = end if upper is None and self.splittable else upper
            for page in pages:
                count.add(page, (stream.id_of(record) for record in page.records))
                past_upper = False
                for record in page.records:
                    ts, record_id = stream.instant_of(record), stream.id_of(record)
                    if ts is not None and stop is not None and ts >= stop:
                        past_upper = True  # the next range's: read there
                        continue
                    if ts is not None and ordered and previous is not None and ts < previous:
                        ordered = False
                        stream.warn_once(
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
                    previous = previous if ts is None else ts
                    if not rereads.fresh(record_id):
                        continue  # a re-read meets it again: handled when first read
                    if not _is_new(ts, record_id, lower, recent, emitted, upper=end):
                        continue
                    yield record
                    high = _max(high, ts)
                    remembered = high if ts is None else ts  # nearest instant known
                    if remembered is not None:
                        emitted[record_id] = remembered
                if high is not None:
                    floor = high - stream.lookback_ns
                    if ordered and self.page_by_page:
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
                committed = ordered and self.page_by_page  # page by page, as far as read
                if rereads.stalled or not committed:  # else the re-reads still find more:
                    keep_bookmark(reader, count, start_bookmark, start_recent)
                reader.held = True  # not proven to the end (coverage.py)
                return  # the bookmark stands where they got to, the next run reads on
            # Sorted, committed: again from the bookmark reached; else the whole read again.
            committed = ordered and self.page_by_page and high is not None
            again = stream.lower_bound(high) if committed else lower
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
        stamps = _known(stream.instant_of(record) for record in first.records)
        ascending = all(a <= b for a, b in itertools.pairwise(stamps))
        splits = reader.split_points(first) if ascending else []
        if not splits:
            yield None, itertools.chain([first], pages)
            return
        close = getattr(pages, "close", None)
        if close is not None:
            close()  # the rest of this chain is read as ranges instead (nothing was fetched)
        yield None, [first]
        uppers: list[int | None] = [*splits[1:], stream.end_ns]
        requests = [
            (stream.request_params(context, start, end), end)
            for start, end in zip(splits, uppers, strict=True)
        ]
        reader.prefetch(requests)
        for (params, end), start in zip(requests, splits, strict=True):
            yield end, _from(stream, start, reader.pages(params))


def _from(stream: t.Any, start: int, pages: Iterable[Page]) -> Iterator[Page]:
    """A split range's pages without what is older than ``start``: the request asked from
    a margin earlier (declaration.py), and the previous range read those events."""
    for page in pages:
        records = [record for record in page.records if stream.instant_of(record) >= start]
        yield (
            page
            if len(records) == len(page.records)
            else dataclasses.replace(page, records=records)
        )
