"""``PartitionReader``: one partition of a log, as a reading strategy sees it.

Every partition is read by a read-ahead worker (``parallel.Job``, one at a time when
``concurrency`` is 1), which builds one from three parts: its private copy of the partition's
state, where pages come from (``PageSource``: the API, or chains fetched side by side,
``parallel.WorkerPages``) and what a checkpoint does (hand the state to the main thread,
which writes it after the records it covers).

What the provider declares (bounds, query parameters, a record's instant and id, its
once-per-run messages) is read from ``reader.stream`` (``Declarations``), through
``Clocked``: no instant a strategy sees, and none its state holds, is later than the time
the run started by the API's clock (clock.py). ``Clocked`` also applies ``end_date``: requests
of a provider that takes an upper bound carry it, strategies read up to it (``until_ns``) and
drop what is at or after it (``end_ns``), and no state holds an instant at or after it.
"""

from __future__ import annotations

import itertools
import typing as t

from tap_auditlogs.core.instants import format_instant
from tap_auditlogs.engine.clock import FUTURE_SLACK_NS, duration

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from tap_auditlogs.core.types import Context, Page, Record
    from tap_auditlogs.engine.page_loop import Progress
    from tap_auditlogs.engine.state import PartitionState

#: A request a strategy announces it will make: (query parameters, upper bound or None).
Announced = tuple[dict, "int | None"]


class Declarations(t.Protocol):
    """What a strategy reads of the stream (``ProviderDeclaration`` provides it)."""

    @property
    def lookback_ns(self) -> int:
        """Nanoseconds re-read before the bookmark."""

    @property
    def end_ns(self) -> int | None:
        """``end_date`` in ns (exclusive), if set."""

    @property
    def upper_bound_trusted(self) -> bool:
        """Every request may carry ``end_date`` as its upper bound (declaration.py)."""

    def lower_bound(self, bookmark: int | None) -> int | None:
        """The oldest instant to read: bookmark minus lookback, else ``start_date``."""

    def request_params(self, context: Context, lower: int | None, upper: int | None) -> dict:
        """Query parameters for a pass bounded by ``lower`` and ``upper`` (ns)."""

    def instant_of(self, record: Record) -> int | None:
        """The record's replication-key instant in ns; None when it has no readable one."""

    def id_of(self, record: Record) -> str:
        """The record's provider id."""

    def warn_once(self, key: str, message: str, *args: object) -> None:
        """Log a warning once per run and key."""

    def info_once(self, key: str, message: str, *args: object) -> None:
        """Log an INFO line once per run and key."""

    def run_started_ns(self) -> int:
        """When this run started (ns); frozen so windows do not chase the clock."""

    def clock_ns(self) -> int:
        """The time now (ns), by the API's clock where it told."""


class Clocked:
    """A stream's declarations as a strategy sees them: no instant after the run's start.

    An event stamped later (clock skew at the vendor, a wrong year) is still read and
    emitted, but the strategies see it at the run's start: every bookmark, recent id and
    pending pass they derive stays at or before it, so nothing still to come is skipped,
    and the recent ids keep the event from coming out again. The first such event of the
    partition that is ahead of the clock now is named in one WARNING, with its skew.
    """

    def __init__(self, stream: Declarations, context: Context) -> None:
        """The declarations of ``stream``, read for partition ``context``."""
        self.stream = stream
        self.context = context
        self._warned = False

    @property
    def lookback_ns(self) -> int:
        """Nanoseconds re-read before the bookmark."""
        return self.stream.lookback_ns

    def lower_bound(self, bookmark: int | None) -> int | None:
        """The oldest instant to read (``Declarations.lower_bound``)."""
        return self.stream.lower_bound(bookmark)

    @property
    def end_ns(self) -> int | None:
        """``end_date`` (ns, exclusive) when it is before the run's start; None otherwise
        (a later one reads like none): no event at or after it is emitted."""
        end = self.stream.end_ns
        return end if end is not None and end < self.stream.run_started_ns() else None

    def until_ns(self) -> int:
        """How far a read goes: the run's start, or ``end_date`` when earlier."""
        end = self.end_ns
        return self.stream.run_started_ns() if end is None else end

    def state_limit_ns(self) -> int:
        """The latest instant a state may hold: the run's start, or just before ``end_date``."""
        end = self.end_ns
        return self.stream.run_started_ns() if end is None else end - 1

    def request_params(self, context: Context, lower: int | None, upper: int | None) -> dict:
        """Query parameters of a pass (``Declarations.request_params``); a provider whose
        upper bound is trusted gets ``end_date`` when the strategy sends none or a later one."""
        end = self.end_ns
        if end is not None and self.stream.upper_bound_trusted:
            upper = end if upper is None else min(upper, end)
        return self.stream.request_params(context, lower, upper)

    def instant_of(self, record: Record) -> int | None:
        """The record's instant, or the run's start when it is later (None: no instant)."""
        instant = self.stream.instant_of(record)
        limit = self.stream.run_started_ns()
        if instant is None or instant <= limit:
            return instant
        if not self._warned:
            ahead = instant - self.stream.clock_ns()
            if ahead > FUTURE_SLACK_NS:
                self._warned = True
                self._warn_future(record, instant, ahead)
        return limit

    def _warn_future(self, record: Record, instant: int, ahead: int) -> None:
        where = ", ".join(f"{key} '{value}'" for key, value in (self.context or {}).items())
        self.stream.warn_once(
            f"future-dated:{where}",
            "%sevent %r is stamped %s, %s ahead of the clock (clock skew at the "
            "vendor?). It is emitted; the bookmark stays at the time this run started, so "
            "later runs read that period again (repeats are dropped by id).",
            f"{where}: " if where else "",
            self.stream.id_of(record),
            format_instant(instant),
            duration(ahead),
        )

    def id_of(self, record: Record) -> str:
        """The record's provider id."""
        return self.stream.id_of(record)

    def warn_once(self, key: str, message: str, *args: object) -> None:
        """Log a warning once per run and key."""
        self.stream.warn_once(key, message, *args)

    def info_once(self, key: str, message: str, *args: object) -> None:
        """Log an INFO line once per run and key."""
        self.stream.info_once(key, message, *args)

    def run_started_ns(self) -> int:
        """When this run started (ns)."""
        return self.stream.run_started_ns()

    def clock_ns(self) -> int:
        """The time now (ns)."""
        return self.stream.clock_ns()


class PageSource(t.Protocol):
    """Where a reader's pages come from."""

    def pages(self, context: Context, params: dict, start_token: t.Any = None) -> Iterator[Page]:
        """Pages of the log from ``start_token`` (the first page when None)."""

    def prefetch(self, context: Context, requests: list[Announced]) -> None:
        """Requests the read makes next, in order; a source may fetch them side by side."""

    def split_points(self, context: Context, first: Page) -> list[int]:
        """Where to split the rest of an ascending read after its ``first`` page into
        ranges read side by side ([]: read on as one chain)."""


class PartitionReader:
    """One partition's state, pages and checkpoints, for a strategy (``Strategy.read``)."""

    def __init__(
        self,
        stream: Declarations,
        context: Context,
        state: PartitionState,
        source: PageSource,
        on_checkpoint: Callable[[], None],
        *,
        progress: Progress | None = None,
    ) -> None:
        """Read partition ``context`` of ``stream``; see the module docstring for the rest.

        ``progress``: told of every page read (page_loop.py: the progress lines).
        """
        self.stream = Clocked(stream, context)
        self.context = context
        self.state = state
        state.not_after = self.stream.state_limit_ns  # no commit past the start or end_date
        self.source = source
        self.on_checkpoint = on_checkpoint
        self.progress = progress
        #: Pages read from the source (pages pushed back and read again count once).
        self.pages_read = 0
        #: A shortfall kept the bookmark (totals.py): the read is not proven to its end.
        self.held = False
        self._pushed_back: tuple[dict, list[Page], Iterator[Page]] | None = None

    def pages(self, params: dict, start_token: t.Any = None) -> Iterator[Page]:
        """The pages of a pass with ``params`` from ``start_token`` (None: the first page)."""
        pushed = self._pushed_back
        if pushed is not None and start_token is None and params == pushed[0]:
            self._pushed_back = None
            yield from itertools.chain(pushed[1], pushed[2])
            return
        read_in_pass = 0
        for page in self.source.pages(self.context, params, start_token):
            self.pages_read += 1
            if self.progress is not None:
                read_in_pass += len(page.records)
                left = None if page.total is None else page.total - read_in_pass
                self.progress.page(self.pages_read, len(page.records), left)
            yield page

    def push_back(self, params: dict, read: list[Page], rest: Iterator[Page]) -> None:
        """The next pass with ``params`` starts with the pages ``read`` already, then
        ``rest``: a strategy that judged the first pages hands the pass on unchanged."""
        self._pushed_back = (params, read, rest)

    def prefetch(self, requests: list[Announced]) -> None:
        """Announce the requests this read makes next (``PageSource.prefetch``)."""
        self.source.prefetch(self.context, requests)

    def split_points(self, first: Page) -> list[int]:
        """Where to split an ascending read after its ``first`` page (``PageSource``)."""
        return self.source.split_points(self.context, first)

    def checkpoint(self) -> None:
        """The state covers every record yielded so far: make it durable."""
        self.on_checkpoint()
