"""Page chains fetched ahead: a strategy announces the requests it will make next
(``PartitionReader.prefetch``), and their pages are fetched side by side while it reads the first.

Also where a long ascending read is split into time ranges (``split_points``): only when
the API makes us wait, and only for at most 2% more requests.
"""

from __future__ import annotations

import collections
import itertools
import threading
import typing as t

import orjson

from tap_auditlogs.core.errors import ReadCancelledError
from tap_auditlogs.core.types import Page
from tap_auditlogs.engine.handover import PAGE, Channel

if t.TYPE_CHECKING:
    from collections.abc import Iterator, Mapping
    from concurrent.futures import Executor, Future

    from tap_auditlogs.core.types import Context, Record
    from tap_auditlogs.engine.handover import MemoryBudget
    from tap_auditlogs.engine.source import AuditLogSource


class ChainPool(t.Protocol):
    """Where chains run (``read_ahead.ReadAhead``): its threads, bound and memory."""

    @property
    def concurrency(self) -> int:
        """Chains of a partition fetched at once, at most."""

    @property
    def chain_executor(self) -> Executor:
        """The threads that fetch them."""

    @property
    def budget(self) -> MemoryBudget:
        """Records held in memory across every channel."""


class ChainJob(t.Protocol):
    """The partition whose strategy announces chains (``read_ahead.Job``)."""

    @property
    def source(self) -> AuditLogSource:
        """The provider's log."""

    @property
    def cancelled(self) -> threading.Event:
        """Set: the partition's reads stop."""

    @property
    def slots(self) -> threading.BoundedSemaphore:
        """Requests in flight."""

    @property
    def read_ahead(self) -> ChainPool:
        """Where the chains run."""


#: A read is split only when its first page took at least this long to answer.
SPLIT_MIN_LATENCY_S = 0.02
#: A split into ranges read side by side may cost this share of extra requests at most
#: (each range but the last ends on a partly filled page): issue #9 allows 2%.
SPLIT_EXTRA_REQUESTS = 0.02


def split_points(stamps: list[int], *, more: bool, end: int, ranges: int) -> list[int]:
    """Where to split the rest of an ascending read after its first page, or [].

    The first page's events (``stamps``, ascending) tell how much time a page covers;
    the rest of the log, from its last event to ``end``, is estimated at that density
    and cut into at most ``ranges`` ranges of equal time, each read by its own chain of
    pages: the first range starts at the page's last event (inclusive: the ids of its
    events dedupe), the last one has no end. Only as many ranges as cost at most
    ``SPLIT_EXTRA_REQUESTS`` more requests than one chain.
    """
    if not more or len(stamps) < 2 or stamps[-1] <= stamps[0] or end <= stamps[-1]:
        return []
    pages_left = (end - stamps[-1]) / (stamps[-1] - stamps[0])
    count = min(ranges, 1 + int(pages_left * SPLIT_EXTRA_REQUESTS))
    if count < 2:
        return []
    step = (end - stamps[-1]) // count
    return [stamps[-1] + i * step for i in range(count)]


class _ChainCancelled:
    """A chain stops when its job's stream is cancelled or the chain itself is dropped."""

    def __init__(self, stream_cancelled: threading.Event) -> None:
        self.stream = stream_cancelled
        self.own = threading.Event()

    def is_set(self) -> bool:
        return self.own.is_set() or self.stream.is_set()

    def set(self) -> None:
        """What ``request_json`` calls when the whole provider fails: the stream stops."""
        self.stream.set()


class _Chain:
    """One announced request's pages, fetched by another thread into a channel."""

    def __init__(self, job: ChainJob, context: Context, params: dict, upper: int | None) -> None:
        self.job = job
        self.source = job.source
        self.context = context
        self.params = params
        self.upper = upper
        self.cancelled = _ChainCancelled(job.cancelled)
        self.slots = job.slots
        self.channel = Channel(job.read_ahead.budget)
        self.future: Future[None] | None = None

    def run(self) -> None:
        """Fetch until the last page, or past ``upper`` on an ascending page."""
        error: BaseException | None = None
        try:
            if self.cancelled.is_set():
                raise ReadCancelledError
            for page in self.source.pages(self.context, self.params, worker=self):
                self.channel.put(
                    PAGE, [page.records, page.token, page.next_token, page.total, page.elapsed_s]
                )
                if self.upper is not None and self._past_upper(page.records):
                    break
        except BaseException as exc:
            error = exc
        finally:
            self.channel.close(error)

    def _past_upper(self, records: list[Record]) -> bool:
        stamps = [ts for r in records if (ts := self.source.instant_of(r)) is not None]
        ascending = all(a <= b for a, b in itertools.pairwise(stamps))
        return ascending and bool(stamps) and stamps[-1] >= t.cast("int", self.upper)

    def __iter__(self) -> Iterator[Page]:
        try:
            for _, payload in self.channel.events(lambda: None):
                records, token, next_token, total, elapsed_s = payload
                yield Page(records, token, next_token, total, elapsed_s)
            if self.channel.error is not None:
                raise self.channel.error
        finally:
            self.drop()

    def drop(self) -> None:
        """Stop fetching and forget what was fetched (the strategy read what it needed)."""
        self.cancelled.own.set()
        self.channel.discard()


class Prefetch:
    """The page chains a job's strategy announced, started a few at a time."""

    def __init__(self, job: ChainJob) -> None:
        self._job = job
        self._waiting: collections.deque[_Chain] = collections.deque()
        self._chains: dict[tuple, _Chain] = {}
        self._lock = threading.Lock()

    def announce(self, context: Context, requests: list[tuple[dict, int | None]]) -> None:
        """Requests the strategy will make next, in order: (params, upper bound or None)."""
        with self._lock:
            for params, upper in requests:
                chain = _Chain(self._job, context, params, upper)
                self._chains[_request_key(context, params)] = chain
                self._waiting.append(chain)
            self._start()

    def _start(self) -> None:
        running = sum(1 for c in self._chains.values() if c.future is not None)
        while self._waiting and running < self._job.read_ahead.concurrency:
            chain = self._waiting.popleft()
            chain.future = self._job.read_ahead.chain_executor.submit(chain.run)
            running += 1

    def take(self, context: Context, params: dict, start_token: t.Any) -> _Chain | None:
        """The announced chain of this request (None: not announced; fetch it now)."""
        if start_token is not None:
            return None
        with self._lock:
            chain = self._chains.pop(_request_key(context, params), None)
            if chain is not None and chain.future is None:
                self._waiting.remove(chain)
                chain.future = self._job.read_ahead.chain_executor.submit(chain.run)
            self._start()
        return chain

    def close(self) -> None:
        """Drop every chain not taken (the read ended, maybe early)."""
        with self._lock:
            self._waiting.clear()
            chains = list(self._chains.values())
            self._chains.clear()
        for chain in chains:
            chain.drop()


def _request_key(context: Context, params: Mapping[str, t.Any]) -> tuple:
    return partition_key(context), orjson.dumps(dict(params), option=orjson.OPT_SORT_KEYS)


def partition_key(context: Context) -> tuple:
    """A hashable name for a partition (None: the stream's only one)."""
    return () if not context else tuple(sorted(context.items()))
