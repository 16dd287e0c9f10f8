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
(``Reader.prefetch``): ConfigCat's time windows, or the time ranges a long ascending read
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
import itertools
import math
import tempfile
import threading
import time
import typing as t
from concurrent.futures import Future, ThreadPoolExecutor

import orjson

from tap_auditlogs.errors import ProviderError
from tap_auditlogs.strategies import Page, PartitionState

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Mapping

    from tap_auditlogs.client import AuditLogStream
    from tap_auditlogs.strategies import Context, Record

#: Records held in memory across every channel; beyond this they wait in temporary files.
MEMORY_BUDGET_RECORDS = 5_000
#: A worker hands its records over in pages of at most this many (and at every checkpoint).
HANDOVER_RECORDS = 500
#: The keys of a partition's state that the strategies own (``PartitionState``).
STATE_KEYS = ("replication_key", "replication_key_value", "recent_ids", "pending_pass")
#: Windows are kept this much longer than documented, for clocks that drift apart.
RATE_LIMIT_MARGIN = 1.02

RECORDS, STATE, PAGE = 0, 1, 2


class ReadCancelledError(Exception):
    """A worker stops: its provider failed as a whole, or the run is ending."""


class Worker(t.Protocol):
    """What the API client needs of the read-ahead worker that sends a request (passed
    down explicitly: ``stream.pages(..., worker=...)`` -> ``request_json`` -> ``ApiClient``)."""

    #: Set: stop before the next request (``set()`` stops the provider's other workers).
    cancelled: t.Any
    #: Requests in flight, shared by every read-ahead thread.
    slots: threading.BoundedSemaphore


class RateLimiter:
    """At most ``limit`` requests in any ``window_s`` seconds, across threads.

    A sliding window over the last ``limit`` requests, each counted from when its answer
    came back (until then it holds its place): the server saw it before that, so however
    long a thread took between taking a place and sending, no window the server counts
    holds more than ``limit``. A long read settles at ``limit / window_s``.
    """

    def __init__(self, limit: int, window_s: float) -> None:
        """``limit`` requests per ``window_s`` seconds."""
        self.limit = max(1, limit)
        self.window_s = window_s * RATE_LIMIT_MARGIN
        self._places: list[list[float]] = []  # [answered at, or inf while in flight]
        self._lock = threading.Lock()

    @classmethod
    def per_second(cls, rate: float, window_s: float) -> RateLimiter:
        """``rate`` requests per second on average over ``window_s``."""
        return cls(max(1, int(rate * window_s)), window_s)

    def acquire(self, cancelled: Callable[[], bool] = lambda: False) -> list[float]:
        """Wait for a free place, then take it; give it to ``release`` after the answer."""
        while True:
            with self._lock:
                now = time.monotonic()
                self._places = [p for p in self._places if p[0] > now - self.window_s]
                if len(self._places) < self.limit:
                    place = [math.inf]
                    self._places.append(place)
                    return place
                oldest = min(p[0] for p in self._places)
                wait = 0.01 if oldest == math.inf else oldest + self.window_s - now
            if cancelled():
                raise ReadCancelledError
            time.sleep(min(wait, 1.0))  # look at ``cancelled`` at least once a second

    def release(self, place: list[float]) -> None:
        """The request of ``place`` was answered (or failed): it counts from now."""
        with self._lock:
            place[0] = time.monotonic()


class MemoryBudget:
    """How many records the channels may still hold in memory (shared, thread-safe)."""

    def __init__(self, records: int) -> None:
        """Start with ``records`` free."""
        self.free = records
        self._lock = threading.Lock()

    def take(self, records: int) -> bool:
        """Reserve room for ``records``; False when there is not enough."""
        with self._lock:
            if records > self.free:
                return False
            self.free -= records
            return True

    def give_back(self, records: int) -> None:
        """Release room reserved earlier."""
        with self._lock:
            self.free += records


class Channel:
    """One partition's output, in order: pages of records and state snapshots, then the end.

    One worker puts, the main thread takes. Events stay in memory while the shared budget
    allows; after that they go to a temporary file (one JSON line each), in order, and a
    marker in the queue says where. ``close`` ends it, with the error that ended the read
    (None: the read completed).
    """

    _SPILLED = object()

    def __init__(self, budget: MemoryBudget) -> None:
        """An empty channel drawing on ``budget``."""
        self._budget = budget
        self._queue: collections.deque[t.Any] = collections.deque()
        self._ready = threading.Condition()
        self._closed = False
        self.error: BaseException | None = None
        self.pages = 0  # pages the worker read (for the log)
        self._file: t.IO[bytes] | None = None
        self._read_at = 0
        self._written = 0  # events in the file not read yet

    def put(self, kind: int, payload: t.Any) -> None:
        """Hand over records (``RECORDS``, a list) or a state snapshot (``STATE``)."""
        size = len(payload) if kind == RECORDS else len(payload[0]) if kind == PAGE else 0
        with self._ready:
            if self._written == 0 and self._budget.take(size):
                self._queue.append((kind, payload, size))
            else:  # keep the order: once spilling, spill until the file is read
                self._spill(orjson.dumps([kind, payload]))
                self._queue.append(self._SPILLED)
            self._ready.notify()

    def _spill(self, line: bytes) -> None:
        if self._file is None:
            self._file = tempfile.TemporaryFile(prefix="tap-auditlogs-")  # noqa: SIM115
        self._file.seek(0, 2)
        self._file.write(line + b"\n")
        self._written += 1

    def _unspill(self) -> tuple[int, t.Any]:
        assert self._file is not None
        self._file.seek(self._read_at)
        line = self._file.readline()
        self._read_at = self._file.tell()
        self._written -= 1
        if self._written == 0:  # read up: start the file over
            self._file.seek(0)
            self._file.truncate()
            self._read_at = 0
        kind, payload = orjson.loads(line)
        return kind, payload

    def close(self, error: BaseException | None = None) -> None:
        """No more events; ``error``: why the read ended early."""
        with self._ready:
            self.error = error
            self._closed = True
            self._ready.notify()

    def events(self, before_waiting: Callable[[], None]) -> Iterator[tuple[int, t.Any]]:
        """Every event in order until the channel is closed (``before_waiting`` runs first
        whenever none is ready)."""
        while True:
            with self._ready:
                if not self._queue and not self._closed:
                    before_waiting()
                    while not self._queue and not self._closed:
                        self._ready.wait()
                if not self._queue:
                    break
                item = self._queue.popleft()
                if item is self._SPILLED:
                    event = self._unspill()
                else:
                    kind, payload, size = item
                    self._budget.give_back(size)
                    event = (kind, payload)
            yield event
        self.discard()

    def discard(self) -> None:
        """Drop whatever is left (the run is ending) and the temporary file."""
        with self._ready:
            for item in self._queue:
                if item is not self._SPILLED:
                    self._budget.give_back(item[2])
            self._queue.clear()
            if self._file is not None:
                self._file.close()
                self._file = None
            self._written = 0


class Job:
    """One partition read ahead by a worker."""

    def __init__(
        self,
        read_ahead: ReadAhead,
        stream: AuditLogStream,
        context: Context,
        cancelled: threading.Event,
    ) -> None:
        """The partition ``context`` of ``stream``; its state is copied now.

        ``cancelled`` is shared by the jobs of the stream: set, they stop before their
        next request.
        """
        self.read_ahead = read_ahead
        self.stream = stream
        self.context = context
        self.channel = Channel(read_ahead.budget)
        raw = stream.saved_state_of(context)
        self.state = {key: raw[key] for key in STATE_KEYS if key in raw}
        self.future: Future[None] | None = None
        self.cancelled = cancelled
        self.slots = read_ahead.slots
        self.chains = Prefetch(self)

    def run(self) -> None:
        """Read the partition; everything goes through the channel, errors included."""
        reader = _WorkerReader(self)
        batch: list[Record] = []
        reader.on_checkpoint = lambda: self._hand_over(batch, checkpoint=True)
        error: BaseException | None = None
        try:
            if self.cancelled.is_set():
                raise ReadCancelledError
            for record in self.stream.strategy.read(reader, self.context):
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
            self.channel.close(error)

    def _hand_over(self, batch: list[Record], *, checkpoint: bool) -> None:
        if batch:
            self.channel.put(RECORDS, batch.copy())
            batch.clear()
        if checkpoint:
            self.channel.put(STATE, dict(self.state))


class _WorkerReader:
    """The stream as a strategy sees it, with the job's private state (``Reader``)."""

    def __init__(self, job: Job) -> None:
        self._job = job
        self._stream = job.stream
        self.on_checkpoint: Callable[[], None] = lambda: None
        self.pages_read = 0

    # What the stream declares, unchanged ----------------------------------------------
    @property
    def lookback_ns(self) -> int:
        return self._stream.lookback_ns

    def lower_bound(self, bookmark: int | None) -> int | None:
        return self._stream.lower_bound(bookmark)

    def request_params(self, context: Context, lower: int | None, upper: int | None) -> dict:
        return self._stream.request_params(context, lower, upper)

    def instant_of(self, record: Record) -> int:
        return self._stream.instant_of(record)

    def id_of(self, record: Record) -> str:
        return self._stream.id_of(record)

    def warn_once(self, key: str, message: str, *args: object) -> None:
        self._stream.warn_once(key, message, *args)

    def info_once(self, key: str, message: str, *args: object) -> None:
        self._stream.info_once(key, message, *args)

    def run_started_ns(self) -> int:
        return self._stream.run_started_ns()

    # What is the worker's own ---------------------------------------------------------

    def state_of(self, context: Context) -> PartitionState:
        return PartitionState(self._job.state, t.cast("str", self._stream.replication_key))

    def checkpoint(self) -> None:
        self.on_checkpoint()

    def pages(self, context: Context, params: dict, start_token: t.Any = None) -> Iterator[Page]:
        chain = self._job.chains.take(context, params, start_token)
        source: Iterable[Page] = (
            chain
            if chain is not None
            else self._stream.pages(context, params, start_token, worker=self._job)
        )
        for page in source:
            self.pages_read += 1
            yield page

    def prefetch(self, context: Context, requests: list[tuple[dict, int | None]]) -> None:
        self._job.chains.announce(context, requests)

    def split_points(self, context: Context, first: Page) -> list[int]:
        if first.elapsed_s < SPLIT_MIN_LATENCY_S:
            return []  # an API this fast leaves no waiting to hide: threads would only cost
        return split_points(
            [self._stream.instant_of(record) for record in first.records],
            more=first.next_token is not None,
            end=self._stream.run_started_ns(),
            ranges=self._job.read_ahead.concurrency,
        )


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

    def __init__(self, job: Job, context: Context, params: dict, upper: int | None) -> None:
        self.job = job
        self.stream = job.stream
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
            for page in self.stream.pages(self.context, self.params, worker=self):
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
        stamps = [self.stream.instant_of(record) for record in records]
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

    def __init__(self, job: Job) -> None:
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


def apply_state(target: dict, snapshot: Mapping[str, t.Any]) -> None:
    """Make ``target`` hold the strategies' keys of ``snapshot`` (and no others of theirs).

    Keys to drop go first: each intermediate state is then one a sequential run could
    have written (an older bookmark or no pending pass: duplicates, never a gap).
    """
    for key in STATE_KEYS:
        if key not in snapshot:
            target.pop(key, None)
    target.update(snapshot)


def partition_key(context: Context) -> tuple:
    """A hashable name for a partition (None: the stream's only one)."""
    return () if not context else tuple(sorted(context.items()))


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

    def plan(self, streams: Iterable[AuditLogStream]) -> None:
        """Create a job per partition, then start the first ones, taking streams in turn.

        Listing a provider's organizations costs a request: the providers list theirs
        side by side.
        """
        streams = list(streams)
        with ThreadPoolExecutor(max(1, len(streams)), thread_name_prefix="list") as pool:
            listed = list(pool.map(lambda stream: stream.partitions, streams))
        for stream, partitions in zip(streams, listed, strict=True):
            if partitions is not None and not partitions:
                continue  # the organizations could not be listed (reported already)
            contexts: list[Context] = list(partitions) if partitions is not None else [None]
            cancelled = self._cancelled.setdefault(stream.name, threading.Event())
            jobs = [Job(self, stream, context, cancelled) for context in contexts]
            for job in jobs:
                self._jobs[(stream.name, partition_key(job.context))] = job
            self._waiting[stream.name] = collections.deque(jobs)
            self._started[stream.name] = 0
        with self._lock:
            for _ in range(self.concurrency):
                for name in self._waiting:
                    self._start_next(name)

    def _start_next(self, name: str) -> None:
        waiting = self._waiting[name]
        if waiting and self._started[name] < self.concurrency:
            job = waiting.popleft()
            self._started[name] += 1
            job.future = self._executor.submit(job.run)

    def take(self, stream: AuditLogStream, context: Context) -> Job | None:
        """The job of a partition (None: not read ahead), starting it now if it waits."""
        job = self._jobs.pop((stream.name, partition_key(context)), None)
        if job is not None and job.future is None:
            with self._lock:
                with contextlib.suppress(ValueError):
                    self._waiting[stream.name].remove(job)
                self._started[stream.name] += 1
                job.future = self._executor.submit(job.run)
        return job

    def done(self, job: Job) -> None:
        """The main thread emitted ``job``: its stream may start another partition."""
        with self._lock:
            self._started[job.stream.name] -= 1
            self._start_next(job.stream.name)

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


def replay(stream: AuditLogStream, job: Job, context: Context) -> Iterator[Record]:
    """Emit what a worker read: its records, and its state at each checkpoint."""
    flush = getattr(stream.owner, "flush_messages", lambda: None)
    records = 0
    for kind, payload in job.channel.events(before_waiting=flush):
        if kind == RECORDS:
            records += len(payload)
            yield from payload
        else:
            apply_state(stream.get_context_state(context), payload)
            stream.checkpoint()
    error = job.channel.error
    if isinstance(error, ProviderError):
        # Workers running side by side may each meet the failure that stopped the
        # whole provider (refused credentials): it is reported once.
        if not (error.whole_provider and stream._halted is not None):
            stream.report_failure(error)
    elif error is not None and not isinstance(error, ReadCancelledError):
        raise error
    if error is None or isinstance(error, ProviderError):
        stream.log_done(context, records, job.channel.pages)
