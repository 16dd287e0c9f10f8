"""Read-ahead: partitions are fetched concurrently and emitted in the order of a sequential run.

Against a real API the tap waits on the network, and the SDK reads streams and partitions
(organizations) one after another, so a backfill costs the sum of every page's latency.
Here worker threads *read* ahead: each runs one partition's strategy (``strategies.py``)
against a private copy of that partition's state, and hands what it produced, pages of
records and the state after each checkpoint, to the main thread through a ``Channel``.
When the SDK reaches that partition, ``AuditLogStream.get_records`` replays the channel:
the same records and the same checkpoints, in the same order as a sequential run.

The workers never write: stdout, the SDK's state and ``audit_events`` are touched by the
main thread only. So what the output holds at any moment is a prefix of what a sequential
run writes, every STATE still follows the records it covers, and a run killed at any
moment resumes exactly as before. Only the timing changes.

Inside a partition, a strategy may announce the requests it will make next
(``PartitionReader.prefetch``): ConfigCat's time windows, or the time ranges a long ascending read
is split into after its first page (Torq; Nirvana once its pages prove the bound and the
sort honoured; ``split_points``). Their page chains are fetched by other threads and
consumed in the announced order, so the strategy, its checks and its checkpoints run as
in a sequential read.

Bounds: at most ``concurrency`` requests in flight (``ReadAhead.slots``); at most
``concurrency`` partitions of a stream, and chains of a partition, started ahead of the
one being consumed; records waiting for their turn stay in memory up to
``MEMORY_BUDGET_RECORDS`` across all channels, and the rest wait in temporary files, so
memory stays flat however far the workers run ahead. Each provider's documented rate
limit is kept by one ``RateLimiter`` shared by its threads (``request_json``). Until a
provider has answered once, its workers take turns, so refused credentials or an
exhausted quota cost one request, not one per worker.

When a provider fails as a whole (refused credentials, a quota that asks for a long
wait) its other workers stop before their next request; what they read up to their last
checkpoint is still emitted, with that checkpoint's state.

Written here because the SDK (0.54) syncs strictly sequentially and has no read-ahead.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import threading
import typing as t
from concurrent.futures import Future, ThreadPoolExecutor

from tap_auditlogs.core.errors import ProviderError, ReadCancelledError
from tap_auditlogs.core.types import Page
from tap_auditlogs.engine.handover import (
    LOG,
    MEMORY_BUDGET_RECORDS,
    RECORDS,
    STATE,
    Channel,
    MemoryBudget,
)
from tap_auditlogs.engine.page_chains import (
    SPLIT_MIN_LATENCY_S,
    Prefetch,
    partition_key,
    split_points,
)
from tap_auditlogs.engine.page_loop import Progress
from tap_auditlogs.engine.partition_reader import PartitionReader
from tap_auditlogs.engine.state import PartitionState

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Mapping

    from tap_auditlogs.core.types import Context, Record
    from tap_auditlogs.engine.partition_reader import Announced
    from tap_auditlogs.engine.source import AuditLogSource

#: A worker hands its records over in pages of at most this many (and at every checkpoint).
HANDOVER_RECORDS = 500
#: The keys of a partition's state that the strategies own (``PartitionState``).
STATE_KEYS = ("replication_key", "replication_key_value", "recent_ids", "pending_pass")


@dataclasses.dataclass(frozen=True)
class LogToRead:
    """A stream's log as the read-ahead reads it (the stream builds it: streams/audit_log.py)."""

    #: The stream's name: jobs are kept per stream.
    name: str
    #: The provider object that reads it.
    source: AuditLogSource
    #: Lists the partitions (None: one log, no partitions; []: they could not be listed).
    partitions: Callable[[], list[dict] | None]
    #: A copy of a partition's saved state.
    saved_state: Callable[[Context], dict]


class Job:
    """One partition read ahead by a worker."""

    def __init__(
        self,
        read_ahead: ReadAhead,
        log: LogToRead,
        context: Context,
        cancelled: threading.Event,
    ) -> None:
        """The partition ``context`` of ``log``; its state is copied now.

        ``cancelled`` is shared by the jobs of the stream: set, they stop before their
        next request.
        """
        self.read_ahead = read_ahead
        self.log = log
        self.source = log.source
        self.context = context
        self.channel = Channel(read_ahead.budget)
        raw = log.saved_state(context)
        self.state = {key: raw[key] for key in STATE_KEYS if key in raw}
        self.future: Future[None] | None = None
        self.cancelled = cancelled
        self.slots = read_ahead.slots
        self.chains = Prefetch(self)

    def run(self) -> None:
        """Read the partition; everything goes through the channel, errors included."""
        batch: list[Record] = []
        source = self.source
        reader = PartitionReader(
            source,
            self.context,
            PartitionState(self.state, t.cast("str", source.replication_key)),
            WorkerPages(self),
            on_checkpoint=lambda: self._hand_over(batch, checkpoint=True),
            progress=Progress(lambda line: self._say(batch, line), source.describe(self.context)),
        )
        error: BaseException | None = None
        try:
            if self.cancelled.is_set():
                raise ReadCancelledError
            source.starting(self.context, reader.state)
            for record in source.strategy.read(reader):
                batch.append(record)
                if len(batch) >= HANDOVER_RECORDS:
                    self._hand_over(batch, checkpoint=False)
            self._hand_over(batch, checkpoint=False)
        except BaseException as exc:
            if isinstance(exc, ProviderError) and exc.whole_provider:
                self.cancelled.set()  # the provider's other partitions would fail the same way
            self._hand_over(batch, checkpoint=False)
            error = exc
        finally:
            self.chains.close()
            self.channel.pages = reader.pages_read
            self.channel.held = reader.held
            self.channel.close(error)

    def _say(self, batch: list[Record], line: str) -> None:
        """A progress line, logged when the main thread has emitted what came before it."""
        self._hand_over(batch, checkpoint=False)
        self.channel.put(LOG, line)

    def _hand_over(self, batch: list[Record], *, checkpoint: bool) -> None:
        if batch:
            self.channel.put(RECORDS, batch.copy())
            batch.clear()
        if checkpoint:
            self.channel.put(STATE, dict(self.state))


class WorkerPages:
    """A worker's pages (``PageSource``): an announced chain fetched ahead, else the API."""

    def __init__(self, job: Job) -> None:
        self._job = job
        self._source = job.source

    def pages(self, context: Context, params: dict, start_token: t.Any = None) -> Iterator[Page]:
        """The announced chain of this request, or the API's pages fetched now."""
        chain = self._job.chains.take(context, params, start_token)
        if chain is not None:
            return iter(chain)
        return self._source.pages(context, params, start_token, worker=self._job)

    def prefetch(self, context: Context, requests: list[Announced]) -> None:
        """Start fetching these requests' pages side by side (``Prefetch``)."""
        self._job.chains.announce(context, requests)

    def split_points(self, context: Context, first: Page) -> list[int]:
        """Time ranges to read side by side, when the API is slow enough to be worth it."""
        if first.elapsed_s < SPLIT_MIN_LATENCY_S:
            return []  # an API this fast leaves no waiting to hide: threads would only cost
        return split_points(
            [ts for r in first.records if (ts := self._source.instant_of(r)) is not None],
            more=first.next_token is not None,
            end=self._source.run_started_ns()
            if self._source.end_ns is None
            else min(self._source.run_started_ns(), self._source.end_ns),
            ranges=self._job.read_ahead.concurrency,
        )


def apply_state(target: dict, snapshot: Mapping[str, t.Any]) -> None:
    """Make ``target`` hold the strategies' keys of ``snapshot`` (and no others of theirs).

    Keys to drop go first: each intermediate state is then one a sequential run could
    have written (an older bookmark or no pending pass: duplicates, never a gap).
    """
    for key in STATE_KEYS:
        if key not in snapshot:
            target.pop(key, None)
    target.update(snapshot)


class ReadAhead:
    """Starts workers for the partitions of the streams to sync and hands their channels over."""

    def __init__(self, concurrency: int, *, memory_budget: int | None = None) -> None:
        """``concurrency`` workers; each stream may have that many partitions started ahead."""
        self.concurrency = concurrency
        budget = MEMORY_BUDGET_RECORDS if memory_budget is None else memory_budget
        self.budget = MemoryBudget(budget)
        #: Requests in flight at most, partitions and announced chains together.
        self.slots = threading.BoundedSemaphore(concurrency)
        self._executor = ThreadPoolExecutor(concurrency, thread_name_prefix="read-ahead")
        self.chain_executor = ThreadPoolExecutor(concurrency, thread_name_prefix="prefetch")
        self._jobs: dict[tuple[str, tuple], Job] = {}
        self._waiting: dict[str, collections.deque[Job]] = {}
        self._started: dict[str, int] = {}
        self._cancelled: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    def plan(self, logs: Iterable[LogToRead]) -> None:
        """Create a job per partition, then start the first ones, taking streams in turn.

        Listing a provider's organizations costs a request: the providers list theirs
        side by side.
        """
        logs = list(logs)
        with ThreadPoolExecutor(max(1, len(logs)), thread_name_prefix="list") as pool:
            listed = list(pool.map(lambda log: log.partitions(), logs))
        for log, partitions in zip(logs, listed, strict=True):
            if partitions is not None and not partitions:
                continue  # the organizations could not be listed (reported already)
            contexts: list[Context] = list(partitions) if partitions is not None else [None]
            cancelled = self._cancelled.setdefault(log.name, threading.Event())
            jobs = [Job(self, log, context, cancelled) for context in contexts]
            for job in jobs:
                self._jobs[(log.name, partition_key(job.context))] = job
            self._waiting[log.name] = collections.deque(jobs)
            self._started[log.name] = 0
        with self._lock:
            for _ in range(self.concurrency):
                for name in self._waiting:
                    self._start_next(name)

    def _start_next(self, name: str) -> None:
        waiting = self._waiting.get(name)
        if waiting and self._started[name] < self.concurrency:
            job = waiting.popleft()
            self._started[name] += 1
            job.future = self._executor.submit(job.run)

    def take(self, log: LogToRead, context: Context) -> Job:
        """The job of a partition, started now if it waits (or was not planned)."""
        job = self._jobs.pop((log.name, partition_key(context)), None)
        if job is None:
            cancelled = self._cancelled.setdefault(log.name, threading.Event())
            job = Job(self, log, context, cancelled)
        if job.future is None:
            with self._lock:
                with contextlib.suppress(ValueError):
                    self._waiting.get(log.name, collections.deque()).remove(job)
                self._started[log.name] = self._started.get(log.name, 0) + 1
                job.future = self._executor.submit(job.run)
        return job

    def done(self, job: Job) -> None:
        """The main thread emitted ``job``: its stream may start another partition."""
        with self._lock:
            self._started[job.log.name] -= 1
            self._start_next(job.log.name)

    def cancel(self) -> None:
        """Stop every worker: no new request, and no new job."""
        for cancelled in self._cancelled.values():
            cancelled.set()

    def close(self) -> None:
        """Stop every worker and drop what was not emitted (the run is over)."""
        self.cancel()
        for job in self._jobs.values():
            job.channel.discard()
        self._executor.shutdown(wait=True, cancel_futures=True)
        self.chain_executor.shutdown(wait=True, cancel_futures=True)
        for job in self._jobs.values():
            job.channel.discard()
