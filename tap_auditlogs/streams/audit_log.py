"""``AuditLogStream``: a provider's log as a singer-sdk stream, SDK glue around its source.

No provider names appear here. A provider module subclasses ``AuditLogSource`` (source.py:
its API, paging, strategy); ``stream_class`` makes the stream class from it. The stream
keeps what belongs to the SDK:

* State: the SDK's bookmarks assume sorted streams or end-of-run promotion; the reading
  strategies keep their own state in the SDK's partition state dicts instead, so
  the SDK's record-by-record bookmarking is switched off (sdk.py). Each partition is read
  by the run's read-ahead (read_ahead.py) and replayed here: records, then the STATE that
  covers them.
* Output: every record fits the stream's schema (conform.py, ``undeclared_fields``: added
  fields, and values whose type drifted, one WARNING per stream and field); ``audit_events``
  is fed every record as it is read (audit_events.py); coverage follows (coverage.py).
* Failures: reported to the tap, never raised (one organization's trouble never stops
  another's); a failed stream's sync METRIC says failed.
"""

from __future__ import annotations

import functools
import typing as t
from functools import cached_property

from singer_sdk import SchemaDirectory, metrics
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.streams import RESTStream

from tap_auditlogs.core.errors import ProviderError, ReadCancelledError
from tap_auditlogs.core.text import plural
from tap_auditlogs.engine.declaration import no_value
from tap_auditlogs.engine.handover import RECORDS, STATE
from tap_auditlogs.engine.read_ahead import LogToRead, apply_state
from tap_auditlogs.output.conform import ClosedStreamSchema, FieldSorter
from tap_auditlogs.streams.bookmarks import (
    check_saved_state,
    saved_state,
    warn_unmatched_partitions,
)
from tap_auditlogs.streams.coverage import PartitionCoverage, RunCoverage
from tap_auditlogs.streams.sdk import StreamHooks

if t.TYPE_CHECKING:
    from collections.abc import Iterator

    from singer_sdk import Tap

    from tap_auditlogs.core.types import Context, Record
    from tap_auditlogs.engine.read_ahead import Job, ReadAhead
    from tap_auditlogs.engine.source import AuditLogSource


class SyncHost(t.Protocol):
    """What a provider stream needs of the tap that syncs it (``TapAuditLogs``)."""

    #: What this run proves it read, per partition.
    coverage: RunCoverage

    def reading(self) -> ReadAhead:
        """The run's read-ahead, which reads every partition of a sync."""

    def record_failure(self, error: ProviderError) -> None:
        """Note a failure (reported in full at the end of the run)."""

    def flush_messages(self) -> None:
        """Write out the buffered output."""


class EventSink(t.Protocol):
    """A stream written from another stream's records as they are read (``audit_events``)."""

    def write_event(self, stream: AuditLogStream, record: Record, context: Context) -> None:
        """Write what ``record`` (read by ``stream``, unchanged) becomes in this stream."""


class CoverageHooks:
    """The coverage side of ``AuditLogStream`` (audit_log.py stays SDK glue): it follows the
    partition being emitted, on the main thread, read there or replayed from a worker."""

    #: What this run proves of the partition being emitted now.
    coverage: PartitionCoverage | None = None
    coverage_context: Context = None

    @property
    def run_coverage(self) -> RunCoverage | None:
        """The run's coverage (the stream's: ``AuditLogStream`` has its tap's)."""
        raise NotImplementedError

    @property
    def halted(self) -> ProviderError | None:
        """The error that stopped this stream for the rest of the run, if any."""
        raise NotImplementedError

    def covered(self, context: Context, records: Iterator[Record]) -> Iterator[Record]:
        """``records`` of partition ``context``, its coverage followed on the way."""
        stream = t.cast("AuditLogStream", self)
        run = self.run_coverage
        self.coverage_context = context
        self.coverage = None if run is None else run.begin(stream, context)
        try:
            yield from records
            coverage = self.coverage
            if run is not None and coverage is not None:
                if coverage.pages is None and self.halted is not None:
                    self.note_failure(self.halted)  # not read: its provider stopped
                run.end(stream, coverage, stream.get_context_state(context))
        finally:
            self.coverage = None

    def checkpoint(self) -> None:
        """Write a STATE message now (the SDK would skip it when no record was written);
        the partition's coverage record goes first."""
        stream = t.cast("AuditLogStream", self)
        run = self.run_coverage
        if run is not None and self.coverage is not None:
            raw = stream.get_context_state(self.coverage_context)
            run.checkpoint(stream, self.coverage, raw)
        stream.write_state()

    def read_ended(
        self, context: Context, records: int, pages: int, *, held: bool = False, ok: bool = True
    ) -> None:
        """The partition's read ended, completely (``ok``: logged as done) or with a failure
        (reported apart); ``held``: a shortfall kept its bookmark (totals.py)."""
        stream = t.cast("AuditLogStream", self)
        if ok:
            done = f"{plural(records, 'record')} in {plural(pages, 'page')}"
            stream.logger.info("%s: done, %s.", stream.source.describe(context), done)
        if self.coverage is not None:
            self.coverage.pages, self.coverage.held = pages, held

    def note_failure(self, error: ProviderError) -> None:
        """The partition being emitted stopped with ``error`` (its coverage says so)."""
        run = self.run_coverage
        if run is not None and self.coverage is not None:
            run.failed(self.coverage, error)

    def note_record(self, row: Record) -> None:
        """A record of the partition being emitted goes out."""
        run = self.run_coverage
        if run is not None and self.coverage is not None:
            run.record(t.cast("AuditLogStream", self), self.coverage, row)


class AuditLogStream(CoverageHooks, StreamHooks, RESTStream):
    """The singer-sdk stream of one provider's log: SDK glue around its ``source``.

    Made per provider by ``stream_class`` (name, keys and schema from the source class);
    state, messages, ``audit_events`` and coverage are here, reading is the source's.
    """

    #: The provider object this stream reads with (``stream_class`` sets it).
    source_class: t.ClassVar[type[AuditLogSource]]
    #: ``<stream name>.json`` in the source's ``schema_directory``, plus
    #: ``undeclared_fields`` (conform.py); set by ``stream_class``.
    schema: t.Any
    is_sorted = False  # the strategies keep the state; the SDK must not check order
    check_sorted = False
    allow_redirects = False
    #: Records are decoded JSON (str, int, bool, None, dict, list: no datetime, Decimal or
    #: NaN) and every object in the schemas allows additional properties, so the SDK's
    #: conformance walks every field of every record to return it unchanged.
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE

    def __init__(self, tap: SyncHost) -> None:
        """Create the stream for a configured provider of ``tap``."""
        super().__init__(t.cast("Tap", tap))
        #: The run this stream is synced in (``TapAuditLogs``): its read-ahead, failures.
        self.host = tap
        #: The provider's log, as the engine reads it (source.py).
        self.source = self.source_class(self.config, self.logger, self.schema)
        self._halted: ProviderError | None = None
        self._sync_timer: metrics.Timer | None = None
        #: Streams fed with every record as it is read (``audit_events``, see audit_events.py).
        self.event_sinks: list[EventSink] = []
        #: This stream's log as the read-ahead reads it (read_ahead.py).
        self.to_read = LogToRead(
            self.name, self.source, lambda: self.partitions, self.saved_state_of
        )

    @property
    def url_base(self) -> str:
        """The API's base URL (the source's)."""
        return self.source.url_base

    def saved_state_of(self, context: Context) -> dict:
        """A copy of the partition's saved state, leaving the SDK's state as it is (no
        empty partition entries written into it). A saved bookmark the strategies cannot
        use (another replication key's, or one for the whole stream when it is read per
        partition) is ignored: that partition is read again from ``start_date``, and a
        warning says so once."""
        raw = saved_state(self.tap_state, self.name, context) or {}
        check_saved_state(self, raw, context)
        return dict(raw)

    def get_replication_key_signpost(self, context: Context = None) -> None:
        """No signpost: the strategies bound every pass themselves."""
        return

    def get_records(self, context: Context) -> Iterator[Record]:
        """One partition as the run's read-ahead read it (read_ahead.py: with ``concurrency``
        1 one partition at a time, else several side by side; one path either way)."""
        if not context and self.partitions is not None:
            return  # partitions could not be listed; that failure is reported already
        yield from self.covered(context, self._partition_records(context))

    def _partition_records(self, context: Context) -> Iterator[Record]:
        read_ahead = self.host.reading()
        job = read_ahead.take(self.to_read, context)
        try:
            yield from self._replay(job, context)
        finally:
            read_ahead.done(job)

    def _replay(self, job: Job, context: Context) -> Iterator[Record]:
        """Emit what a worker read: its records, its state at each checkpoint and its
        progress lines, in the order it read them; then how the read ended."""
        records = 0
        for kind, payload in job.channel.events(before_waiting=self.host.flush_messages):
            if kind == RECORDS:
                records += len(payload)
                yield from payload
            elif kind == STATE:
                apply_state(self.get_context_state(context), payload)
                self.checkpoint()
            else:
                self.logger.info("%s", payload)
        error, pages, held = job.channel.error, job.channel.pages, job.channel.held
        if isinstance(error, ProviderError):
            self.read_ended(context, records, pages, held=held, ok=False)
            # Workers running side by side may each meet the failure that stopped the
            # whole provider (refused credentials): it is reported once.
            if not (error.whole_provider and self.halted is not None):
                self.report_failure(error)
            else:
                self.note_failure(error)
        elif error is not None and not isinstance(error, ReadCancelledError):
            raise error
        elif error is None:
            self.read_ended(context, records, pages, held=held)

    def get_sync_timer(self) -> metrics.Timer:
        """The SDK's timer of this stream's sync, kept: a failure makes its METRIC say so."""
        self._sync_timer = timer = super().get_sync_timer()
        if self._halted is not None:  # stopped before its sync began (organization listing)
            timer.tags[metrics.Tag.STATUS] = metrics.Status.FAILED
        return timer

    def note_failure(self, error: ProviderError) -> None:
        """The partition being emitted stopped with ``error``: its coverage and the stream's
        sync METRIC (``status``: failed) say so."""
        super().note_failure(error)
        if self._sync_timer is not None:
            self._sync_timer.tags[metrics.Tag.STATUS] = metrics.Status.FAILED

    def report_failure(self, error: ProviderError, *, halt: bool = False) -> None:
        """Hand a failure to the tap; ``halt`` (or a provider-wide error) stops this stream."""
        if halt or error.whole_provider:
            self._halted = error
        self.note_failure(error)
        self.host.record_failure(error)

    def post_process(self, row: Record, context: Context = None) -> Record:
        """Feed ``audit_events`` the record as the API sent it; add the partition (org).

        The SDK calls this for every record, selected or not, before it writes the
        record and before the strategy can checkpoint: the unified record always goes
        out ahead of the STATE that covers its event (audit_events.py).
        """
        for sink in self.event_sinks:
            sink.write_event(self, row, context)
        self.note_record(row)
        id_key = self.primary_keys[-1]
        if no_value(row.get(id_key)):  # the key loaders upsert on: never null (README)
            row[id_key] = self.source.substitute_id(row)
        field = self.source.partition_field
        if context and field in context:
            row[field] = context[field]
        return self.sort_fields(row, context)

    def as_written(self, record: Record, context: Context) -> Record:
        """``record`` of partition ``context`` as a sync writes it, without feeding
        ``audit_events`` or coverage (the connection test's sample)."""
        field = self.source.partition_field
        added = {field: context[field]} if context and field in context else {}
        return self.sort_fields({**record, **added}, context)

    @cached_property
    def sort_fields(self) -> FieldSorter:
        """Moves what the schema does not declare, and declared values that do not fit their
        type, into ``undeclared_fields`` (conform.py). The primary key is left as it is
        (``substitute_id`` fills a missing one). The replication key is not: the strategies
        read it before the record comes here (values.py), so a time they could not read
        (missing, null, garbage) or read from an epoch number goes out null, kept as sent."""
        return FieldSorter(
            self.schema, protected=self.primary_keys, on_drift=self.source.odd_values.warn_drift
        )

    def generate_child_contexts(self, record: Record, context: Context) -> Iterator[Context]:
        """None: the only child, ``audit_events``, is fed in ``post_process``, never synced."""
        yield from ()

    @property
    def partitions(self) -> list[dict] | None:
        """One partition per organization (and per event type, when types are filtered);
        none when the organizations could not be listed (the failure is reported, and the
        provider stops); the SDK's for a provider with one log."""
        if self.source.organizations_setting is None:
            return super().partitions
        return self._organization_partitions

    @cached_property
    def _organization_partitions(self) -> list[dict]:
        try:
            partitions = self.source.partitions() or []
        except ProviderError as error:
            self.report_failure(error, halt=True)
            return []
        warn_unmatched_partitions(self, partitions)  # saved ones no longer read (bookmarks.py)
        return partitions

    @property
    def halted(self) -> ProviderError | None:
        """The error that stopped this stream for the rest of the run, if any."""
        return self._halted

    @property
    def run_coverage(self) -> RunCoverage:
        """The run's coverage (the tap's)."""
        return self.host.coverage


def stream_class(source_class: type[AuditLogSource]) -> type[AuditLogStream]:
    """The singer-sdk stream class of a provider's source class (one per class)."""
    if source_class not in _STREAM_CLASSES:
        _STREAM_CLASSES[source_class] = _make_stream_class(source_class)
    return _STREAM_CLASSES[source_class]


def _make_stream_class(source_class: type[AuditLogSource]) -> type[AuditLogStream]:
    return type(
        source_class.__name__ + "Stream",
        (AuditLogStream,),
        {
            "__module__": source_class.__module__,
            "__doc__": source_class.__doc__,
            "source_class": source_class,
            "name": source_class.name,
            "primary_keys": tuple(source_class.primary_keys),
            "replication_key": source_class.replication_key,
            "schema": _schema_in(source_class.schema_directory),
        },
    )


@functools.cache
def _schema_in(directory: t.Any) -> ClosedStreamSchema:
    """The schemas of a directory, one loader per directory."""
    return ClosedStreamSchema(SchemaDirectory(directory))


_STREAM_CLASSES: dict[type[AuditLogSource], type[AuditLogStream]] = {}
