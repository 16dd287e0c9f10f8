"""How a read-ahead worker hands records and checkpoints to the main thread, in order.

A ``Channel`` is a queue of events (records, a state snapshot, a page, a progress line)
that the main thread
replays; all channels share one ``MemoryBudget`` of records held in memory, beyond which the
events wait in a temporary file.
"""

from __future__ import annotations

import collections
import tempfile
import threading
import typing as t

import orjson

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterator

#: Records held in memory across every channel; beyond this they wait in temporary files.
MEMORY_BUDGET_RECORDS = 5_000

RECORDS, STATE, PAGE, LOG = 0, 1, 2, 3


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
        self.held = False  # a shortfall kept the bookmark (totals.py, coverage.py)
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
