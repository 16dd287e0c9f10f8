"""Totals reconciled: the distinct events of a scope against the count the API reports.

Where an API reports how many events a query holds (``Page.total``: Nirvana's
``total_count``, ConfigCat's ``totalCount``), a read that the API ends with fewer distinct
events is read again before its bookmark moves (strategies.py says how per strategy: an
ascending read from where it got to, a newest-first pass from the top, a time window in
halves down to parts that fit one page). A shortfall that persists is one WARNING with the
numbers, and the bookmark does not move past that scope.
"""

from __future__ import annotations

import collections
import typing as t

from tap_auditlogs.core.instants import NS_PER_SECOND
from tap_auditlogs.core.text import plural

if t.TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from tap_auditlogs.core.types import Page
    from tap_auditlogs.engine.partition_reader import PartitionReader

T = t.TypeVar("T")

#: Times a scope that ended short of the API's total is read again, at most (each re-read
#: must find events the earlier reads did not, else the shortfall is final).
MAX_REREADS = 20
#: A time window read short of its total is split in halves down to this width at least.
MIN_PART_NS = NS_PER_SECOND


class ScopeCount:
    """The distinct events of one scope (a query read page after page to its end) against
    the total the API reports for it (``Page.total``).

    The total the API reported last counts: it is the count when the read ended. (The
    smallest one is not safe: an event that arrives during the read raises the total, and
    can hide an event that page boundaries shifting between requests made the read miss.
    Seen with ConfigCat's equal timestamps reordered per request, chaos seed 4.)
    """

    def __init__(self) -> None:
        """Nothing read yet."""
        self.ids: set[str] = set()
        self.total: int | None = None
        #: The last page said it was the last (None next token): the API ended the scope.
        self.ended = False

    def add(self, page: Page, ids: Iterable[str]) -> None:
        """Count a page of the scope."""
        if page.total is not None:
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


def queue_first(queue: collections.deque[T], rest: Iterator[T]) -> Iterator[T]:
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
    reader.held = True
    context = reader.context
    where = ", ".join(f"{key} '{value}'" for key, value in (context or {}).items())
    reader.stream.warn_once(
        f"shortfall {where} {what}",
        "%sthe API reports %s %s but %d distinct were read (%d short); reading it "
        "again did not find them. The bookmark stays before it: the next run reads it again.",
        f"{where}: " if where else "",
        plural(count.total or 0, "event"),  # a shortfall comes with a total
        what,
        len(count.ids),
        count.shortfall,
    )


def keep_bookmark(
    reader: PartitionReader, count: ScopeCount, bookmark: int | None, recent: dict
) -> None:
    """A shortfall that persists: one WARNING, and the state goes back to ``bookmark``."""
    warn_shortfall(reader, count, "for this read")
    reader.state.reset(bookmark=bookmark, recent=recent)
    reader.checkpoint()
