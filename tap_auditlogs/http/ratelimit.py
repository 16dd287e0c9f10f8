"""A provider's rate limit, kept across every thread that reads it."""

from __future__ import annotations

import math
import threading
import time
import typing as t

from tap_auditlogs.core.errors import ReadCancelledError

if t.TYPE_CHECKING:
    from collections.abc import Callable

#: Windows are kept this much longer than documented, for clocks that drift apart.
RATE_LIMIT_MARGIN = 1.02


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
