"""Evidence of completeness: what each run proved it read, per stream and partition.

``RunCoverage`` (one per run, ``TapAuditLogs.coverage``) follows every partition the provider
streams read, on the main thread, whether read there or replayed from a read-ahead worker
(read_ahead.py): both go through ``AuditLogStream.get_records``, ``post_process`` (one call per
record) and ``checkpoint`` (one call per STATE), in the same order. So:

* **What is proven.** A partition's range starts where the run read from (the bookmark
  minus the lookback, else ``start_date``; else the oldest event emitted) and ends at the
  bookmark of the last checkpoint: every event up to it was emitted before that STATE
  (strategies.py). A read that ended without an error and without a shortfall (totals.py)
  read the log to its end: its range ends at the run's start minus the lookback, or at the
  bookmark if that is later (events may arrive up to the lookback late; the next run re-reads
  them).
* **The stream** ``sync_coverage`` (opt-in, like ``audit_events``) gets a record before every
  STATE whose bookmark moved (status ``interrupted``: a run killed there leaves that row), and
  one when the partition ends, followed by a STATE. Keyed by run, stream and partition, so a
  loader's upsert keeps the last; a loader that commits on STATE never holds a range of
  events it lacks.
* **Retention.** With ``<provider>.retention_days`` set, a resume point older than the
  horizon (run start minus the retention) is a gap: one WARNING naming the range lost, the gap
  in the coverage record, and (for a resumed partition, unless ``retention_gap_is_error`` is
  false) the run ends with ``EXIT_RETENTION_GAP`` once everything else was read. A first run
  whose ``start_date`` is older gets one WARNING only; its coverage starts at the horizon.
* **The summary**: one line per partition on stderr when the run ends (``summary``).
"""

from __future__ import annotations

import dataclasses
import logging
import typing as t
import uuid
from functools import cached_property
from importlib import metadata

from tap_auditlogs.core.errors import QuotaExhaustedError, RetentionGapError
from tap_auditlogs.core.instants import NS_PER_SECOND, format_instant, now_instant
from tap_auditlogs.core.redaction import Redactor
from tap_auditlogs.core.text import plural
from tap_auditlogs.engine.state import PartitionState
from tap_auditlogs.streams.sync_coverage import STREAM_NAME, SyncCoverageStream

if t.TYPE_CHECKING:
    from singer_sdk import Tap

    from tap_auditlogs.core.errors import ProviderError
    from tap_auditlogs.core.types import Context, Record
    from tap_auditlogs.engine.source import AuditLogSource

DAY_NS = 86_400 * NS_PER_SECOND
#: ``organization_id`` of a provider with one log per credential (as in ``audit_events``).
NO_ORGANIZATION = "unknown"
#: ``partition`` of a provider with one log (a key column: never empty, some loaders read
#: an empty string as null).
WHOLE_LOG = "all"
#: Statuses shown first in the summary, in capitals: they need someone to look.
ATTENTION = ("failed", "quota", "partial", "interrupted")


class CoveredStream(t.Protocol):
    """What coverage reads of a provider stream (``CoveredStream`` is one)."""

    @property
    def name(self) -> str:
        """The stream's name."""

    @property
    def replication_key(self) -> str | None:
        """The field the bookmarks are kept on."""

    @property
    def source(self) -> AuditLogSource:
        """The provider's log."""

    @property
    def halted(self) -> ProviderError | None:
        """The error that stopped the stream, if any."""

    @property
    def logger(self) -> logging.Logger:
        """The stream's logger."""

    def saved_state_of(self, context: Context) -> dict:
        """A copy of the partition's saved state."""

    def write_state(self) -> None:
        """Write a STATE message now."""


@dataclasses.dataclass
class PartitionCoverage:
    """What one run proved of one partition of one stream."""

    stream: str
    provider: str
    provider_label: str
    partition: str
    organization_id: str
    organization_name: str | None
    lookback_ns: int
    #: Where the read started (ns); None: no bound known (the oldest event emitted counts).
    from_ns: int | None
    #: The bookmark the run started from: a range ending there proves nothing new.
    start_bookmark: int | None = None
    to_ns: int | None = None
    oldest_ns: int | None = None
    records: int = 0
    pages: int | None = None
    #: A shortfall kept the bookmark (totals.py): the read is not proven to its end.
    held: bool = False
    status: str = "interrupted"
    error_class: str | None = None
    error: str | None = None
    gap_from_ns: int | None = None
    gap_to_ns: int | None = None
    gap_reason: str | None = None
    retention_days: float | None = None

    @property
    def covered(self) -> tuple[int, int] | None:
        """The range proven complete (ns), or None."""
        start = self.oldest_ns if self.from_ns is None else self.from_ns
        if start is None or self.to_ns is None or self.to_ns < start:
            return None
        if self.start_bookmark is not None and self.to_ns <= self.start_bookmark:
            return None  # the bookmark did not move (or went back): this run proved nothing
        return start, self.to_ns

    def row(self, run: RunCoverage) -> dict[str, t.Any]:
        """The ``sync_coverage`` record."""
        covered = self.covered
        return {
            "run_id": run.run_id,
            "stream": self.stream,
            "partition": self.partition,
            "provider": self.provider,
            "organization_id": self.organization_id,
            "organization_name": self.organization_name,
            "tap_version": run.version,
            "run_started_at": format_instant(run.started_ns),
            "covered_from": None if covered is None else format_instant(covered[0]),
            "covered_to": None if covered is None else format_instant(covered[1]),
            "records": self.records,
            "pages": self.pages,
            "status": self.status,
            "error_class": self.error_class,
            "error": self.error,
            "gap_from": _instant(self.gap_from_ns),
            "gap_to": _instant(self.gap_to_ns),
            "gap_reason": self.gap_reason,
            "retention_days": self.retention_days,
        }


def _instant(ns: int | None) -> str | None:
    return None if ns is None else format_instant(ns)


def _short(ns: int | None) -> str:
    """An instant to the second, for the summary."""
    return "?" if ns is None else format_instant(ns, digits=0)


def partition_text(context: Context) -> str:
    """A partition as ``key=value`` pairs (``WHOLE_LOG`` for a provider with one log)."""
    pairs = ",".join(f"{key}={value}" for key, value in sorted((context or {}).items()))
    return pairs or WHOLE_LOG


def _summary_line(coverage: PartitionCoverage) -> str:
    """One partition in the summary: status (trouble in capitals), where, range, records."""
    covered = coverage.covered
    span = "nothing proven" if covered is None else f"{_short(covered[0])} -> {_short(covered[1])}"
    status = coverage.status
    if status in ATTENTION:
        status = status.upper()
        status += f" ({coverage.error_class})" if coverage.error_class else ""
    gap = f"{_short(coverage.gap_from_ns)} -> {_short(coverage.gap_to_ns)}"
    if coverage.gap_reason == "retention":
        status += f", RETENTION GAP {gap}"
    elif coverage.gap_reason:
        status += f", data starts at {_short(coverage.gap_to_ns)} (retention)"
    where = coverage.provider_label + f" {coverage.organization_id}"
    where += f" [{coverage.partition}]" if coverage.partition != WHOLE_LOG else ""
    return f"{status:<12} {where}: {span}, {plural(coverage.records, 'record')}"


class RunCoverage:
    """Every partition this run read, what it proved, and the retention gaps it met."""

    def __init__(self, tap: Tap) -> None:
        """A new run: a fresh run id."""
        self.tap = tap
        self.run_id = str(uuid.uuid4())
        self.started_ns = now_instant()
        self.partitions: list[PartitionCoverage] = []
        #: Retention gaps of resumed partitions (they end the run with EXIT_RETENTION_GAP).
        self.lost: list[PartitionCoverage] = []

    @cached_property
    def version(self) -> str:
        """The tap's version."""
        return metadata.version("tap-auditlogs")

    @property
    def sink(self) -> SyncCoverageStream | None:
        """The ``sync_coverage`` stream when it is selected."""
        stream = self.tap.streams.get(STREAM_NAME)
        if isinstance(stream, SyncCoverageStream) and stream.selected_now:
            return stream
        return None

    # ---------------------------------------------------------------- per partition

    def begin(self, stream: CoveredStream, context: Context) -> PartitionCoverage:
        """A partition starts: where its read starts, and whether retention ate some of it."""
        key = t.cast("str", stream.replication_key)
        bookmark = PartitionState(stream.saved_state_of(context), key).bookmark
        organization = (context or {}).get(stream.source.partition_field)
        coverage = PartitionCoverage(
            stream=stream.name,
            provider=stream.source.provider,
            provider_label=stream.source.provider_label,
            partition=partition_text(context),
            organization_id=NO_ORGANIZATION if organization is None else str(organization),
            organization_name=stream.source.organization_name(context),
            lookback_ns=stream.source.lookback_ns,
            from_ns=stream.source.lower_bound(bookmark),
            start_bookmark=bookmark,
            to_ns=bookmark,
        )
        self.partitions.append(coverage)
        days = stream.source.settings.get("retention_days")  # None: no default (schema)
        if days:
            coverage.retention_days = float(days)
            self._check_retention(stream, coverage, bookmark, float(days))
        return coverage

    def _check_retention(
        self, stream: CoveredStream, coverage: PartitionCoverage, bookmark: int | None, days: float
    ) -> None:
        """A resume point older than the retention horizon: the range in between is lost."""
        horizon = stream.source.run_started_ns() - int(days * DAY_NS)
        resume = bookmark if bookmark is not None else stream.source.start_ns
        if resume is None or resume >= horizon:
            return
        coverage.gap_from_ns, coverage.gap_to_ns = resume, horizon
        coverage.from_ns = horizon
        where = f"{stream.source.provider_label}, {coverage.organization_id}" + (
            f" ({coverage.partition})" if coverage.partition != WHOLE_LOG else ""
        )
        span = f"{_short(resume)} to {_short(horizon)}"
        if bookmark is None:
            coverage.gap_reason = "retention_before_first_run"
            stream.logger.warning(
                "%s: start_date reaches past the retention of %g days: events from %s "
                "are no longer kept by the provider; this first read starts at %s.",
                where,
                days,
                span,
                _short(horizon),
            )
            return
        coverage.gap_reason = "retention"
        self.lost.append(coverage)
        stream.logger.warning(
            "%s: RETENTION GAP: the last run read up to %s, but the provider keeps events "
            "%g days only: events from %s are lost for good (unrecoverable). Reading "
            "everything that still exists; see sync_coverage.",
            where,
            _short(resume),
            days,
            span,
        )

    def record(self, stream: CoveredStream, coverage: PartitionCoverage, row: Record) -> None:
        """A record of the partition was emitted."""
        coverage.records += 1
        if coverage.from_ns is None:
            instant = stream.source.instant_of(row)
            if instant is not None and (coverage.oldest_ns is None or instant < coverage.oldest_ns):
                coverage.oldest_ns = instant

    def checkpoint(self, stream: CoveredStream, coverage: PartitionCoverage, raw: dict) -> None:
        """A STATE is about to go out: its bookmark is proven; say so first if it moved."""
        bookmark = PartitionState(raw, t.cast("str", stream.replication_key)).bookmark
        if bookmark != coverage.to_ns:
            coverage.to_ns = bookmark
            self._write(coverage)

    def failed(self, coverage: PartitionCoverage, error: ProviderError) -> None:
        """The partition stopped with ``error``."""
        coverage.status = "quota" if isinstance(error, QuotaExhaustedError) else "failed"
        coverage.error_class = type(error).__name__
        coverage.error = Redactor.scrub(error.summary)

    def unread(self, streams: t.Iterable[CoveredStream]) -> None:
        """A row for each stream stopped before any partition was read (its organizations
        could not be listed): nothing proven, and why."""
        read = {coverage.stream for coverage in self.partitions}
        for stream in streams:
            error = stream.halted
            if error is not None and stream.name not in read:
                self._unread(stream, error)

    def _unread(self, stream: CoveredStream, error: ProviderError) -> None:
        coverage = self.begin(stream, None)
        coverage.from_ns = None
        self.failed(coverage, error)
        self.end(stream, coverage, {})

    def end(self, stream: CoveredStream, coverage: PartitionCoverage, raw: dict) -> None:
        """The partition's read ended: its last record, followed by a STATE."""
        coverage.pages = coverage.pages or 0
        coverage.to_ns = PartitionState(raw, t.cast("str", stream.replication_key)).bookmark
        if coverage.status == "interrupted":
            coverage.status = "partial" if coverage.held else "complete"
        if coverage.status == "complete":
            read_to = stream.source.run_started_ns() - coverage.lookback_ns
            if (
                stream.source.end_ns is not None
            ):  # a bounded run proves nothing at or after end_date
                read_to = min(read_to, stream.source.end_ns)
            coverage.to_ns = max(coverage.to_ns or read_to, read_to)
        if self._write(coverage):
            stream.write_state()

    def _write(self, coverage: PartitionCoverage) -> bool:
        sink = self.sink
        if sink is None:
            return False
        sink.write_coverage(coverage.row(self))
        return True

    # ---------------------------------------------------------------- end of run

    def summary(self) -> list[str]:
        """One line per partition: range, records, status; trouble first and in capitals."""
        order = sorted(
            self.partitions,
            key=lambda c: c.status not in ATTENTION and c.gap_reason != "retention",
        )
        lines = [
            f"Coverage of run {self.run_id} ({plural(len(self.partitions), 'partition')}; "
            "range proven complete, records, status):"
        ]
        lines += [f"  {_summary_line(coverage)}" for coverage in order]
        return lines

    def log_summary(self, logger: logging.Logger) -> None:
        """The summary on stderr: INFO when all is well, WARNING lines for the rest."""
        if not self.partitions:
            return
        lines = self.summary()
        trouble = any(c.status in ATTENTION or c.gap_reason == "retention" for c in self.partitions)
        logger.log(logging.WARNING if trouble else logging.INFO, "%s", "\n".join(lines))

    def retention_error(self, config: t.Mapping[str, t.Any]) -> RetentionGapError | None:
        """The run's retention gaps as an error, unless ``retention_gap_is_error`` is false."""
        if not self.lost or not config["retention_gap_is_error"]:
            return None
        gaps = [
            f"{c.provider_label} {c.organization_id}: {_short(c.gap_from_ns)} to "
            f"{_short(c.gap_to_ns)}"
            for c in self.lost
        ]
        return RetentionGapError(
            "Retention gap: events older than the providers keep them were never read ("
            + "; ".join(gaps)
            + "). Everything that still exists was read and its state saved. Run the tap "
            "more often than the retention, or set retention_gap_is_error to false."
        )
