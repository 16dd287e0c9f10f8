"""``AuditLogStream``: what every provider stream shares, as singer-sdk stream glue.

No provider names appear here. A provider module subclasses ``AuditLogStream`` and says
where its API lives, how it authenticates, how a page is parsed and which reading
strategy (``strategies.py``) fits its API.

* HTTP: ``request_json`` hands every request to the provider's ``ApiClient`` (api.py: retries
  with ``backoff``, ``Retry-After``, no redirects, errors without secrets).
* Secrets: ``Redactor`` (redaction.py) scrubs every secret from every log line.
* State: the SDK's bookmarks assume sorted streams or end-of-run promotion; the reading
  strategies keep their own state in the SDK's partition state dicts instead, so
  the SDK's record-by-record bookmarking is switched off (sdk.py).
* Output: every record fits the stream's schema (conform.py, ``undeclared_fields``: added
  fields, and values whose type drifted, one WARNING per stream and field).
"""

from __future__ import annotations

import logging
import typing as t
from functools import cached_property
from urllib.parse import urlsplit

from singer_sdk import SchemaDirectory
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.streams import RESTStream

from tap_auditlogs import schemas
from tap_auditlogs.api import ApiClient
from tap_auditlogs.bookmarks import check_saved_state, saved_state
from tap_auditlogs.clock import clock_offset
from tap_auditlogs.conform import ClosedStreamSchema, FieldSorter
from tap_auditlogs.coverage import CoverageHooks
from tap_auditlogs.declaration import ProviderDeclaration, no_value
from tap_auditlogs.errors import (
    AuditLogsError,
    ProviderError,
)
from tap_auditlogs.instants import now_instant
from tap_auditlogs.organizations import (
    non_empty,
    organization_partitions,
    organizations_to_read,
)
from tap_auditlogs.paging import Progress, read_pages
from tap_auditlogs.parallel import replay
from tap_auditlogs.ratelimit import RateLimiter
from tap_auditlogs.reader import DirectPages, PartitionReader
from tap_auditlogs.responses import ApiResponse
from tap_auditlogs.retry import RetryPolicy
from tap_auditlogs.sdk import StreamHooks
from tap_auditlogs.state import PartitionState
from tap_auditlogs.strategies import Page
from tap_auditlogs.values import OddValues

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping

    from tap_auditlogs.parallel import Worker
    from tap_auditlogs.reader import PageSource
    from tap_auditlogs.strategies import Context, Record


class EventSink(t.Protocol):
    """A stream written from another stream's records as they are read (``audit_events``)."""

    def write_event(self, source: AuditLogStream, record: Record, context: Context) -> None:
        """Write what ``record`` (read by ``source``, unchanged) becomes in this stream."""


class AuditLogStream(ProviderDeclaration, CoverageHooks, StreamHooks, RESTStream):
    """Base class of the provider streams: the singer-sdk glue that reads a provider's log
    with what the provider declares (``ProviderDeclaration``): partitions, state, records."""

    #: ``schemas/<stream name>.json``, plus ``undeclared_fields`` (conform.py).
    schema = ClosedStreamSchema(SchemaDirectory(schemas))
    is_sorted = False  # the strategies keep the state; the SDK must not check order
    check_sorted = False
    allow_redirects = False
    #: Records are decoded JSON (str, int, bool, None, dict, list: no datetime, Decimal or
    #: NaN) and every object in the schemas allows additional properties, so the SDK's
    #: conformance walks every field of every record to return it unchanged.
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE

    def __init__(self, tap: t.Any) -> None:
        """Create the stream for a configured provider."""
        super().__init__(tap)
        self._run_started = now_instant()
        #: The API's clock minus the local one (ns), from the run's first ``Date`` header.
        self._clock_offset: int | None = None
        self._halted: ProviderError | None = None
        self._said: set[tuple[int, str]] = set()
        #: Says once per event what is odd in its id or time (values.py).
        self.odd_values = OddValues(self)
        #: Streams fed with every record as it is read (``audit_events``, see unified.py).
        self.event_sinks: list[EventSink] = []

    @cached_property
    def api(self) -> ApiClient:
        """This provider's API client (shared by every thread that reads it)."""
        return ApiClient(
            self,
            timeout_s=self.timeout,
            deadline_s=float(self.config.get("request_deadline_seconds", 120)),
            policy=RetryPolicy.from_config(self.config),
            rate_limiter=self.rate_limiter,
        )

    @cached_property
    def rate_limiter(self) -> RateLimiter | None:
        """Keeps the provider's rate limit across every thread that reads it."""
        rate = self.settings.get("max_requests_per_second")
        limit, window_s = self.rate_limit or (None, 1.0)
        if rate is not None:
            return RateLimiter.per_second(float(rate), window_s)
        return None if limit is None else RateLimiter(limit, window_s)

    # ------------------------------------------------------------ strategy API

    def run_started_ns(self) -> int:
        """When this stream was created, in ns; by the API's clock once it answered, if
        that is behind (its first ``Date`` header, clock.py). No state is written past it."""
        return self._run_started + (self._clock_offset or 0)

    def clock_ns(self) -> int:
        """The time now (ns), by the API's clock where it is behind the local one."""
        return now_instant() + (self._clock_offset or 0)

    def state_of(self, context: Context) -> PartitionState:
        """The partition's state, as the strategies see it.

        A saved bookmark the strategies cannot use (another replication key's, or one for
        the whole stream when it is read per partition) is ignored: that partition is read
        again from ``start_date``, and a warning says so once.
        """
        key = t.cast("str", self.replication_key)
        state = PartitionState(self.get_context_state(context), key)
        check_saved_state(self, state.raw, context)
        return state

    def saved_state_of(self, context: Context) -> dict:
        """A copy of the partition's saved state (checked as ``state_of`` does), leaving
        the SDK's state as it is: no empty partition entries written into it."""
        raw = saved_state(self.tap_state, self.name, context) or {}
        check_saved_state(self, raw, context)
        return dict(raw)

    def warn_once(self, key: str, message: str, *args: object) -> None:
        """Log a warning once per run and key."""
        self._once(logging.WARNING, key, message, *args)

    def info_once(self, key: str, message: str, *args: object) -> None:
        """Log an INFO line once per run and key."""
        self._once(logging.INFO, key, message, *args)

    def _once(self, level: int, key: str, message: str, *args: object) -> None:
        if (level, key) not in self._said:
            self._said.add((level, key))
            self.logger.log(level, "%s: " + message, self.provider_label, *args)

    def get_replication_key_signpost(self, context: Context = None) -> None:
        """No signpost: the strategies bound every pass themselves."""
        return

    def get_records(self, context: Context) -> Iterator[Record]:
        """Read one partition with the provider's strategy; report errors, don't crash.

        When the partition was read ahead (``parallel.py``), its channel is replayed
        instead: the same records and checkpoints, in the same order.
        """
        if not context and self.partitions is not None:
            return  # partitions could not be listed; that failure is reported already
        yield from self.covered(context, self._partition_records(context))

    def _partition_records(self, context: Context) -> Iterator[Record]:
        read_ahead = getattr(self.owner, "read_ahead", None)
        job = None if read_ahead is None else read_ahead.take(self, context)
        if read_ahead is not None and job is not None:
            try:
                yield from replay(self, job, context)
            finally:
                read_ahead.done(job)
            return
        if self._halted is not None:
            return
        source = DirectPages(self, getattr(self.owner, "flush_messages", lambda: None))
        reader = self.reader(context, self.state_of(context), source, self.checkpoint)
        records = 0
        try:
            for record in self.strategy.read(reader):
                records += 1
                yield record
        except ProviderError as error:
            self.report_failure(error)
        self.log_done(context, records, reader.pages_read, held=reader.held)

    def reader(
        self,
        context: Context,
        state: PartitionState,
        source: PageSource,
        on_checkpoint: Callable[[], None],
    ) -> PartitionReader:
        """What the strategy reads partition ``context`` with (reader.py), on the main
        thread or on a read-ahead worker: the two differ only in these arguments."""
        progress = Progress(self.logger, self.describe(context))
        return PartitionReader(self, context, state, source, on_checkpoint, progress=progress)

    def report_failure(self, error: ProviderError, *, halt: bool = False) -> None:
        """Hand a failure to the tap; ``halt`` (or a provider-wide error) stops this stream."""
        if halt or error.whole_provider:
            self._halted = error
        self.note_failure(error)
        record_failure = getattr(self.owner, "record_failure", None)
        if record_failure is None:  # pragma: no cover - used without TapAuditLogs
            raise error
        record_failure(error)

    def post_process(self, row: Record, context: Context = None) -> Record:
        """Feed ``audit_events`` the record as the API sent it; add the partition (org).

        The SDK calls this for every record, selected or not, before it writes the
        record and before the strategy can checkpoint: the unified record always goes
        out ahead of the STATE that covers its event (unified.py).
        """
        for sink in self.event_sinks:
            sink.write_event(self, row, context)
        self.note_record(row)
        id_key = self.primary_keys[-1]
        if no_value(row.get(id_key)):  # the key loaders upsert on: never null (README)
            row[id_key] = self.substitute_id(row)
        if context and self.partition_field in context:
            row[self.partition_field] = context[self.partition_field]
        return self.sort_fields(row, context)

    @cached_property
    def sort_fields(self) -> FieldSorter:
        """Moves what the schema does not declare, and declared values that do not fit their
        type, into ``undeclared_fields`` (conform.py). The primary key is left as it is
        (``substitute_id`` fills a missing one). The replication key is not: the strategies
        read it before the record comes here (values.py), so a time they could not read
        (missing, null, garbage) or read from an epoch number goes out null, kept as sent."""
        return FieldSorter(
            self.schema, protected=self.primary_keys, on_drift=self.odd_values.warn_drift
        )

    def generate_child_contexts(self, record: Record, context: Context) -> Iterator[Context]:
        """None: the only child, ``audit_events``, is fed in ``post_process``, never synced."""
        yield from ()

    @cached_property
    def organizations(self) -> dict[str, str | None]:
        """The organizations to read (id -> name): the setting's, else all those listed."""
        return organizations_to_read(self)

    @property
    def partitions(self) -> list[dict] | None:
        """One partition per organization (and per event type, when types are filtered);
        the SDK's for a provider with one log."""
        if self.organizations_setting is None:
            return super().partitions
        return self._organization_partitions

    @cached_property
    def _organization_partitions(self) -> list[dict]:
        return organization_partitions(self)

    def organization_name(self, context: Context) -> str | None:
        """The partition's organization name when the records do not carry it."""
        if self.organizations_setting is None or not context:
            return None
        return (self.__dict__.get("organizations") or {}).get(
            str(context.get(self.partition_field))
        )

    def pages(
        self,
        context: Context,
        params: dict,
        start_token: t.Any = None,
        worker: Worker | None = None,
    ) -> Iterator[Page]:
        """Pages from ``start_token`` until the paginator or an empty page says stop.

        ``worker``: the read-ahead worker asking (None: the main thread, one at a time).
        """
        for page in read_pages(self, context, params, start_token, worker):
            self.odd_values.check(context, page.records)
            yield page

    def request_json(
        self,
        context: Context,
        url: str,
        params: Mapping[str, t.Any],
        *,
        parse: Callable[[t.Any], t.Any] | None = None,
        worker: Worker | None = None,
        method: str = "GET",
        body: t.Any = None,
    ) -> ApiResponse:
        """Send ``method`` to ``url`` (``body``: JSON, None: none) with the tap's retry
        policy (api.py); the answer comes decoded.

        ``worker``: the read-ahead worker sending it, within its request slots (None: sent
        now, from the main thread or the organization listing).
        """
        where = f"{self.describe(context)}: {method} {urlsplit(url).path}"
        response = self.api.get(
            where, url, params, parse=parse, worker=worker, method=method, body=body
        )
        if self._clock_offset is None:
            self._clock_offset = clock_offset(response.headers.get("Date"), self.warn_once)
        return response


__all__ = ["AuditLogStream", "AuditLogsError", "non_empty"]
