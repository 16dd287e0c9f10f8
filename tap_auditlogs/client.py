"""``AuditLogStream``: what every provider stream shares, as singer-sdk stream glue.

No provider names appear here. A provider module subclasses ``AuditLogStream`` and says
where its API lives, how it authenticates, how a page is parsed and which reading
strategy (``strategies.py``) fits its API.

* HTTP: ``request_json`` hands every GET to the provider's ``ApiClient`` (api.py: retries
  with ``backoff``, ``Retry-After``, no redirects, errors without secrets).
* Secrets: ``Redactor`` (redaction.py) scrubs every secret from every log line.
* State: the SDK's bookmarks assume sorted streams or end-of-run promotion; the reading
  strategies keep their own state in the SDK's partition state dicts instead, so
  the SDK's record-by-record bookmarking is switched off (sdk.py).
* Output: every record fits the stream's schema (conform.py, ``undeclared_fields``).
"""

from __future__ import annotations

import logging
import threading
import typing as t
from functools import cached_property
from urllib.parse import urlsplit

import requests
from singer_sdk import SchemaDirectory
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.streams import RESTStream

from tap_auditlogs import schemas
from tap_auditlogs.api import USER_AGENT, ApiClient
from tap_auditlogs.bookmarks import check_saved_state, saved_state
from tap_auditlogs.conform import ClosedStreamSchema, FieldSorter
from tap_auditlogs.errors import (
    AuditLogsError,
    ProviderError,
)
from tap_auditlogs.instants import now_instant, parse_instant, seconds_to_ns
from tap_auditlogs.organizations import (
    non_empty,
    organization_partitions,
    organizations_to_read,
)
from tap_auditlogs.paging import new_progress, read_pages
from tap_auditlogs.parallel import (
    RateLimiter,
    replay,
)
from tap_auditlogs.responses import ERROR_MESSAGE_KEYS, ApiResponse, retry_after_seconds
from tap_auditlogs.retry import RetryPolicy
from tap_auditlogs.sdk import StreamHooks
from tap_auditlogs.strategies import Page, PartitionState

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping

    from singer_sdk.pagination import BaseAPIPaginator

    from tap_auditlogs.parallel import Worker
    from tap_auditlogs.strategies import Context, Record, Strategy


class EventSink(t.Protocol):
    """A stream written from another stream's records as they are read (``audit_events``)."""

    def write_event(self, source: AuditLogStream, record: Record, context: Context) -> None:
        """Write what ``record`` (read by ``source``, unchanged) becomes in this stream."""


class AuditLogStream(StreamHooks, RESTStream):
    """Base class of the provider streams: HTTP policy, errors, state, progress."""

    #: Provider key: the name of its settings block (``socket``, ``configcat``...).
    provider: t.ClassVar[str]
    #: Provider name for people (``Socket``).
    provider_label: t.ClassVar[str]
    #: How this provider's log is read (a class attribute, or a property when settings shape it).
    strategy: Strategy
    #: The field that names the partition in a record and in the state (e.g. ``org_slug``).
    partition_field: t.ClassVar[str]
    #: Where the API lives unless ``<provider>.base_url`` says otherwise.
    default_base_url: t.ClassVar[str]
    #: Seconds re-read before the bookmark on every run (late events).
    default_lookback_seconds: t.ClassVar[int] = 300
    #: Hint shown with authentication errors.
    credentials_hint: t.ClassVar[str] = "check the credentials"
    #: Keys of the API's error bodies that hold the message, in order of preference.
    error_message_keys: t.ClassVar[tuple[str, ...]] = ERROR_MESSAGE_KEYS
    #: Query parameters that make the connection test's page as small as the API allows.
    probe_query: t.ClassVar[dict[str, t.Any]] = {}
    #: The documented rate limit: (requests, per seconds); None when none is documented.
    #: ``<provider>.max_requests_per_second`` replaces the rate (same window).
    rate_limit: t.ClassVar[tuple[int, float] | None] = None

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
        self._halted: ProviderError | None = None
        self._said: set[tuple[int, str]] = set()
        #: Streams fed with every record as it is read (``audit_events``, see unified.py).
        self.event_sinks: list[EventSink] = []

    # ----------------------------------------------------------------- settings

    @property
    def settings(self) -> Mapping[str, t.Any]:
        """This provider's settings block."""
        return t.cast("Mapping[str, t.Any]", self.config.get(self.provider) or {})

    @property
    def url_base(self) -> str:
        """The API's base URL."""
        return str(self.settings.get("base_url") or self.default_base_url).rstrip("/")

    @property
    def http_headers(self) -> dict[str, str]:
        """Headers sent with every request (authentication is added by the authenticator)."""
        return {"User-Agent": USER_AGENT, "Accept": "application/json"}

    @property
    def timeout(self) -> int:
        """Seconds to wait for a connection or for each read of a response."""
        return int(self.config.get("request_timeout", 60))

    @cached_property
    def api(self) -> ApiClient:
        """This provider's API client (shared by every thread that reads it)."""
        return ApiClient(
            self,
            timeout_s=self.timeout,
            policy=RetryPolicy.from_config(self.config),
            rate_limiter=self.rate_limiter,
        )

    def rate_limit_wait(self, response: requests.Response) -> float | None:
        """Seconds a 429 or 503 asks to wait: ``Retry-After``; a provider may read others."""
        return retry_after_seconds(response)

    @cached_property
    def rate_limiter(self) -> RateLimiter | None:
        """Keeps the provider's rate limit across every thread that reads it."""
        rate = self.settings.get("max_requests_per_second")
        limit, window_s = self.rate_limit or (None, 1.0)
        if rate is not None:
            return RateLimiter.per_second(float(rate), window_s)
        return None if limit is None else RateLimiter(limit, window_s)

    @property
    def lookback_ns(self) -> int:
        """The lookback in nanoseconds."""
        seconds = self.settings.get("lookback_seconds", self.default_lookback_seconds)
        return seconds_to_ns(float(seconds))

    @cached_property
    def start_ns(self) -> int | None:
        """``start_date`` in nanoseconds, if set."""
        value = self.config.get("start_date")
        return parse_instant(str(value), allow_naive=True) if value else None

    # ------------------------------------------------------------ strategy API

    def prefetch(self, context: Context, requests: list[tuple[dict, int | None]]) -> None:
        """Requests a strategy will make next; read-ahead workers fetch them side by side."""

    def split_points(self, context: Context, first: Page) -> list[int]:
        """Where to split an ascending read after its first page: none, one at a time."""
        return []

    def lower_bound(self, bookmark: int | None) -> int | None:
        """The oldest instant to read: bookmark minus lookback, never before ``start_date``."""
        candidates = [v for v in (self.start_ns,) if v is not None]
        if bookmark is not None:
            candidates.append(bookmark - self.lookback_ns)
        return max(candidates) if candidates else None

    def run_started_ns(self) -> int:
        """When this stream was created, in ns."""
        return self._run_started

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

    def checkpoint(self) -> None:
        """Write a STATE message now (the SDK would skip it when no record was written)."""
        self.write_state()

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

    def instant_of(self, record: Record) -> int:
        """The record's replication-key value as ns."""
        return parse_instant(str(record[t.cast("str", self.replication_key)]), allow_naive=True)

    def id_of(self, record: Record) -> str:
        """The record's provider id."""
        return str(record[self.primary_keys[-1]])

    def request_params(self, context: Context, lower: int | None, upper: int | None) -> dict:
        """Query parameters of a pass; providers add their time bounds and filters."""
        return {}

    def page_params(self, token: t.Any) -> dict:
        """Query parameters that select the page ``token``."""
        raise NotImplementedError

    def page_request(self, url: str, params: dict, token: t.Any) -> tuple[str, dict]:
        """URL and query of the page ``token`` (None: the first page) of a pass.

        By default the pass's query plus ``page_params(token)``; an API whose next page is
        a full URL (a ``Link`` header) returns that URL and no query.
        """
        if token is None:
            return url, params
        return url, {**params, **self.page_params(token)}

    def parse_page(self, payload: t.Any) -> tuple[list[Record], int | None]:
        """Records and total count of a decoded page; ValueError if the shape is wrong."""
        raise NotImplementedError

    def get_new_paginator(self, start_value: t.Any = None) -> BaseAPIPaginator:
        """A paginator positioned at ``start_value`` (the first page when None)."""
        raise NotImplementedError

    # -------------------------------------------------------------- the sync

    def get_replication_key_signpost(self, context: Context = None) -> None:
        """No signpost: the strategies bound every pass themselves."""
        return

    def describe(self, context: Context) -> str:
        """Provider and partition, for messages: ``Socket org 'acme'``."""
        if not context:
            return self.provider_label
        parts = [f"{key} '{value}'" for key, value in context.items()]
        return f"{self.provider_label} {', '.join(parts)}"

    def get_records(self, context: Context) -> Iterator[Record]:
        """Read one partition with the provider's strategy; report errors, don't crash.

        When the partition was read ahead (``parallel.py``), its channel is replayed
        instead: the same records and checkpoints, in the same order.
        """
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
        if not context and self.partitions is not None:
            return  # partitions could not be listed; that failure is reported already
        progress = new_progress()
        try:
            for record in self.strategy.read(self, context):
                progress["records"] += 1
                yield record
        except ProviderError as error:
            self.report_failure(error)
        self.log_done(context, progress["records"], progress["pages"])

    def log_done(self, context: Context, records: int, pages: int) -> None:
        self.logger.info(
            "%s: done, %d records in %d pages.", self.describe(context), records, pages
        )

    def report_failure(self, error: ProviderError, *, halt: bool = False) -> None:
        """Hand a failure to the tap; ``halt`` (or a provider-wide error) stops this stream."""
        if halt or error.whole_provider:
            self._halted = error
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
        if context and self.partition_field in context:
            row[self.partition_field] = context[self.partition_field]
        sort = self.sort_fields
        if sort.flat and row.keys() <= sort.keys:
            return row  # the usual case: everything declared, and no nested schema to check
        return sort(row)

    @cached_property
    def sort_fields(self) -> FieldSorter:
        """Moves what the schema does not declare into ``undeclared_fields`` (conform.py)."""
        return FieldSorter(self.schema)

    def generate_child_contexts(self, record: Record, context: Context) -> Iterator[Context]:
        """None: the only child, ``audit_events``, is fed in ``post_process``, never synced."""
        yield from ()

    # ------------------------------------------------------------- organizations

    #: The setting that names the organizations to read (``org_slugs``); None: the API
    #: serves one log, with no partitions. Unset, every organization listed is read.
    organizations_setting: t.ClassVar[str | None] = None
    #: What lists them and what to do when none is seen, for messages.
    organizations_listing: t.ClassVar[str] = "the organization listing"
    no_organization_hint: t.ClassVar[str] = ""
    #: The partition field of an event-type filter (``event_types`` setting), if any.
    event_type_field: t.ClassVar[str | None] = None

    def list_organizations(self) -> dict[str, str | None]:
        """Every organization the credentials see: id -> name (None when unknown)."""
        raise NotImplementedError

    def event_type_filter(self, name: str) -> str:
        """A configured event type as the API's filter takes it."""
        return name

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
        return read_pages(self, context, params, start_token, worker)

    def probe_params(self, context: Context) -> dict:
        """The connection test's query: the log's first page, as small as the API allows."""
        return {**self.request_params(context, None, None), **self.probe_query}

    # ------------------------------------------------------------- HTTP policy

    def handle_auth_failure(self, response: requests.Response) -> bool:
        """Called on 401 and redirects; return True after renewing credentials to retry once."""
        return False

    def request_json(
        self,
        context: Context,
        url: str,
        params: Mapping[str, t.Any],
        *,
        parse: Callable[[t.Any], t.Any] | None = None,
        worker: Worker | None = None,
    ) -> ApiResponse:
        """GET ``url`` with the tap's retry policy (api.py); the answer comes decoded.

        On the main thread, what was read so far goes out first, so records never wait for
        the network; a read-ahead ``worker`` sends within its request slots instead.
        """
        if worker is None:
            flush = getattr(self.owner, "flush_messages", None)
            if flush is not None and threading.current_thread() is threading.main_thread():
                flush()
        where = f"{self.describe(context)}: GET {urlsplit(url).path}"
        return self.api.get(where, url, params, parse=parse, worker=worker)

    def redirect_hint(self) -> str:
        """What the user can do about an unexpected redirect."""
        return f"Check {self.provider}.base_url."

    def error_hint(self, status: int) -> str:
        """What the user can do about an HTTP error status."""
        hints = {
            400: "The request was rejected; check this provider's filter settings.",
            403: "The credentials lack a permission; " + self.credentials_hint + ".",
            404: f"Not found; check the organization settings of {self.provider}.",
        }
        return hints.get(status, "")


__all__ = ["AuditLogStream", "AuditLogsError", "non_empty"]
