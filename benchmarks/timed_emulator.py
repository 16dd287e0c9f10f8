"""What is benchmarked: the streams, and the emulator that serves them, timed.

``select_streams`` picks the providers both the emulator and the tap know (narrowed by
``--only``); ``TimedEmulator`` wraps one in-process emulator and measures the time it spends
answering each run's requests (``emu s``), the requests' timestamps and their peak rate.
"""

from __future__ import annotations

import inspect
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import timedelta
from typing import Any

import baseline

from tap_auditlogs.providers import all_providers
from tests.emulator import Emulator, Scenario
from tests.emulator.registry import available_providers


@dataclass(frozen=True)
class Stream:
    """One provider the emulator plays and the tap reads."""

    provider: str  # provider key: settings block and emulator prefix
    name: str  # the tap's stream name
    id_field: str  # the record field that holds the provider's event id


def _stream(provider: str, cls: type) -> Stream:
    """The stream of a tap stream class. The SDK declares ``name`` per instance and
    ``primary_keys`` as a property; a provider's class sets both as class attributes, read
    here without instantiating it."""
    name = inspect.getattr_static(cls, "name", None)
    keys = inspect.getattr_static(cls, "primary_keys", None)
    if not isinstance(name, str) or not isinstance(keys, tuple | list) or not keys:
        raise SystemExit(f"{cls.__name__}: no class-level `name` and `primary_keys`")
    return Stream(provider, name, str(keys[-1]))


def select_streams(only: str | None) -> list[Stream]:
    """The providers both the emulator and the tap know, narrowed by ``--only``."""
    tap = {p.key: p.source_class for p in all_providers()}
    played = list(available_providers())
    streams = []
    for key in played:
        if key not in tap:
            print(
                f"note: the emulator plays {key!r}, which the tap does not read; skipped",
                file=sys.stderr,
            )
            continue
        streams.append(_stream(key, tap[key]))
    if only:
        wanted = [w.strip() for w in only.split(",") if w.strip()]
        known = {s.name: s for s in streams} | {s.provider: s for s in streams}
        unknown = [w for w in wanted if w not in known]
        if unknown:
            raise SystemExit(f"--only: unknown stream(s) {unknown}; known: {sorted(known)}")
        streams = list({known[w].name: known[w] for w in wanted}.values())
    for stream in list(streams):
        if stream.provider not in baseline.PAGERS:
            strategy = inspect.getattr_static(tap[stream.provider], "strategy", None)
            if not baseline.pages_in_one_pass(strategy):
                print(
                    f"note: the baseline cannot page {stream.provider!r} (no pager in "
                    "baseline.PAGERS, not read in one pass); skipped",
                    file=sys.stderr,
                )
                streams.remove(stream)
            continue
        if baseline.STREAMS[stream.provider][0] != stream.name:
            raise SystemExit(
                f"baseline.STREAMS names {stream.provider!r} "
                f"{baseline.STREAMS[stream.provider][0]!r}, the tap {stream.name!r}"
            )
    if not streams:
        raise SystemExit("no stream to benchmark")
    return streams


def org_keys(provider: str, count: int) -> tuple[str, ...]:
    """``count`` organisation keys for a multi-organisation provider (ConfigCat's are uuids)."""
    if provider == "configcat":
        return tuple(
            str(uuid.uuid5(uuid.NAMESPACE_URL, f"configcat-org-{i}")) for i in range(count)
        )
    return tuple(f"{provider}-org-{i:03d}" for i in range(count))


def emulator_rate_limits() -> dict[str, tuple[int, float]] | None:
    """The documented limits the emulator can enforce; None if it has no ``rate_limits``."""
    if "rate_limits" not in {f.name for f in fields(Scenario)}:
        return None
    limits = {name: getattr(cls, "rate_limit", None) for name, cls in available_providers().items()}
    return {name: limit for name, limit in limits.items() if limit is not None}


def _provider_of(target: str) -> str:
    """The provider of a request target: ``/socket/v0/...`` -> ``socket``."""
    parts = target.split("?", 1)[0].split("/")
    return parts[1] if len(parts) > 1 else ""


class TimedEmulator:
    """An emulator whose time spent answering requests is measured (not changed)."""

    def __init__(
        self,
        streams: Sequence[Stream],
        events: int,
        *,
        seed: int,
        latency_s: float = 0.0,
        orgs: int | None = None,
        rate_limits: dict[str, tuple[int, float]] | None = None,
    ) -> None:
        registry = available_providers()
        options: dict[str, Any] = {}
        for stream in streams:
            default_orgs = tuple(registry[stream.provider].switches["orgs"].default)
            if orgs and len(default_orgs) > 1:  # single-workspace providers keep their one org
                default_orgs = org_keys(stream.provider, orgs)
                options[f"{stream.provider}_orgs"] = default_orgs
            options[f"{stream.provider}_events_per_org"] = max(1, events // len(default_orgs))
        played = [s.provider for s in streams]
        #: the limits the emulator enforces (429 with Retry-After), by provider
        self.rate_limits = {p: limit for p, limit in (rate_limits or {}).items() if p in played}
        if self.rate_limits:
            options["rate_limits"] = self.rate_limits
        scenario = Scenario(seed=seed, providers=played, latency_s=latency_s, **options)
        started = time.perf_counter()
        self.emu = Emulator(scenario)
        self.generate_s = time.perf_counter() - started
        self.orgs = {s.provider: len(self.emu.provider(s.provider).orgs) for s in streams}
        self.truth_ids = {s.provider: {ev.id for ev in self.emu.truth(s.provider)} for s in streams}
        self.busy_s = 0.0
        self.busy_cpu_s = 0.0
        self._active = 0  # requests being answered right now
        self._busy_since = 0.0
        #: (provider, perf_counter) of every request taken since the last reset: the peak
        #: request rate when the emulator has no ``peak_requests``
        self.stamps: list[tuple[str, float]] = []
        self._lock = threading.Lock()
        dispatch = self.emu._dispatch

        def timed(method: str, target: str, *args: Any, **kwargs: Any) -> Any:
            # busy_s is the union of the answering intervals (wall time during which at
            # least one request was being answered), so concurrent requests are not
            # counted twice; busy_cpu_s is every answering thread's own CPU time.
            with self._lock:
                wall = time.perf_counter()
                self.stamps.append((_provider_of(target), wall))
                if self._active == 0:
                    self._busy_since = wall
                self._active += 1
            cpu = time.thread_time()
            try:
                return dispatch(method, target, *args, **kwargs)
            finally:
                spent = time.thread_time() - cpu
                with self._lock:
                    self.busy_cpu_s += spent
                    self._active -= 1
                    if self._active == 0:
                        self.busy_s += time.perf_counter() - self._busy_since

        self.emu._dispatch = timed  # type: ignore[method-assign]

    def __enter__(self) -> TimedEmulator:
        self.emu.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.emu.stop()

    def reset(self) -> None:
        """Forget the request log, the busy time and the rate windows before a run."""
        self.emu.reset_requests()
        if self.rate_limits:  # fresh sliding windows: the last run's calls do not count
            self.emu.configure(rate_limits=self.rate_limits)
        with self._lock:
            self.busy_s = self.busy_cpu_s = 0.0
            self._busy_since = time.perf_counter()
            self.stamps = []

    def busy(self) -> tuple[float, float]:
        """Seconds spent answering since the last reset: wall and CPU."""
        with self._lock:
            return self.busy_s, self.busy_cpu_s

    def taken(self) -> list[tuple[str, float]]:
        """(provider, perf_counter) of every request taken since the last reset."""
        with self._lock:
            return list(self.stamps)

    def peak_requests(self, provider: str, window_s: float) -> int:
        """The most requests to ``provider`` within any ``window_s`` seconds since the reset."""
        if hasattr(self.emu, "peak_requests"):
            return int(self.emu.peak_requests(provider, window_s))
        with self._lock:
            times = sorted(at for name, at in self.stamps if name == provider)
        peak, first = 0, 0
        for last, at in enumerate(times):
            while at - times[first] >= window_s:
                first += 1
            peak = max(peak, last - first + 1)
        return peak

    def start_date(self) -> str:
        """A ``start_date`` before every event."""
        scenario = self.emu.scenario
        start = scenario.now - timedelta(days=float(scenario.span_days) + 1)
        return start.strftime("%Y-%m-%dT%H:%M:%SZ")

    def config(self, stream: Stream, extra: dict[str, Any] | None = None) -> dict:
        """The tap config of one stream: its provider block (plus ``extra``) and a start
        before every event."""
        return {
            stream.provider: {**self.emu.tap_config()[stream.provider], **(extra or {})},
            "start_date": self.start_date(),
        }

    def config_all(self, extra: dict[str, Any] | None = None) -> dict:
        """Every provider block, a start before every event, and ``extra`` top-level keys."""
        return {**self.emu.tap_config(), "start_date": self.start_date(), **(extra or {})}
