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

import copy
import logging
import threading
import time
import typing as t
from functools import cached_property
from urllib.parse import urlsplit

import requests
from singer_sdk import SchemaDirectory
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.mapper import SameRecordTransform
from singer_sdk.streams import RESTStream

from tap_auditlogs import schemas
from tap_auditlogs.api import (
    ERROR_MESSAGE_KEYS,
    USER_AGENT,
    ApiClient,
    ApiResponse,
    RetryPolicy,
    retry_after_seconds,
)
from tap_auditlogs.conform import ClosedStreamSchema, FieldSorter
from tap_auditlogs.errors import (
    AuditLogsError,
    ProviderError,
    QuotaExhaustedError,
)
from tap_auditlogs.instants import now_instant, parse_instant, seconds_to_ns
from tap_auditlogs.parallel import (
    RECORDS,
    RateLimiter,
    ReadCancelledError,
    apply_state,
    current_job,
)
from tap_auditlogs.redaction import Redactor
from tap_auditlogs.sdk import StreamHooks
from tap_auditlogs.strategies import Page, PartitionState

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Mapping

    from singer_sdk.pagination import BaseAPIPaginator

    from tap_auditlogs.parallel import Job
    from tap_auditlogs.strategies import Context, Record, Strategy

PROGRESS_EVERY_SECONDS = 15.0
#: Empty pages with a next token (APIs that filter after paging) tolerated in a row.
MAX_EMPTY_PAGES_IN_A_ROW = 50


class ConnectionCheck(t.NamedTuple):
    """The connection test's verdict on one provider partition (``--test``)."""

    what: str  # e.g. "Socket org_slug 'acme'"
    problem: str | None  # None: OK
    records: list[Record] = []  # the first page (never mutated)


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
        self._local = threading.local()  # per thread: progress of the read
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

    @property
    def _progress(self) -> dict[str, t.Any]:
        """Counters of the partition this thread reads (for progress lines)."""
        progress = getattr(self._local, "progress", None)
        if progress is None:
            progress = self._local.progress = _new_progress()
        return t.cast("dict[str, t.Any]", progress)

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
        self._check_saved_state(state.raw, context)
        return state

    def saved_state_of(self, context: Context) -> dict:
        """A copy of the partition's saved state (checked as ``state_of`` does), leaving
        the SDK's state as it is: no empty partition entries written into it."""
        raw = saved_state(self.tap_state, self.name, context) or {}
        self._check_saved_state(raw, context)
        return dict(raw)

    def _check_saved_state(self, raw: Mapping[str, t.Any], context: Context) -> None:
        key = t.cast("str", self.replication_key)
        if raw.get("replication_key_value"):
            other = raw.get("replication_key")
            if other not in (None, key):
                self._ignored_bookmark(context, f"is for the replication key {other!r}")
        elif context and (saved_state(self.tap_state, self.name, None) or {}).get(
            "replication_key_value"
        ):
            self._ignored_bookmark(context, "is for the whole stream, read per partition now")

    def _ignored_bookmark(self, context: Context, why: str) -> None:
        where = ", ".join(f"{key} '{value}'" for key, value in (context or {}).items())
        self.warn_once(
            f"ignored-bookmark:{where}",
            "the saved bookmark%s %s (an older version of the tap?); reading it again from "
            "start_date, duplicates possible.",
            f" of {where}" if where else "",
            why,
        )

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

    @cached_property
    def _everything_selected(self) -> bool:
        """True when the catalog deselects no property (the usual case)."""
        return all(self.mask.values())

    @cached_property
    def _records_as_they_are(self) -> bool:
        """True when every record goes out unchanged: nothing deselected, no stream map
        and no flattening (the SDK's pass-through map only)."""
        maps = self.stream_maps
        return (
            self._everything_selected
            and len(maps) == 1
            and type(maps[0]) is SameRecordTransform
            and maps[0].stream_alias == self.name
            and not maps[0].flattening_enabled
        )

    @cached_property
    def _direct_writer(self) -> Callable[[str, Record], None] | None:
        """The writer's ``write_record`` when records go out unchanged, else None."""
        write_record = getattr(self.owner.message_writer, "write_record", None)
        return write_record if self._records_as_they_are else None

    def write_unchanged(self, record: Record) -> bool:
        """Straight into the writer's buffer when records go out unchanged (sdk.py)."""
        write = self._direct_writer
        if write is None:
            return False
        write(self.name, record)
        return True

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
                yield from self._replay(job, context)
            finally:
                read_ahead.done(job)
            return
        if self._halted is not None:
            return
        if not context and self.partitions is not None:
            return  # partitions could not be listed; that failure is reported already
        self._local.progress = progress = _new_progress()
        try:
            for record in self.strategy.read(self, context):
                progress["records"] += 1
                yield record
        except ProviderError as error:
            self._report(error)
        self._log_done(context, progress["records"], progress["pages"])

    def _replay(self, job: Job, context: Context) -> Iterator[Record]:
        """Emit what a worker read: its records, and its state at each checkpoint."""
        flush = getattr(self.owner, "flush_messages", lambda: None)
        records = 0
        for kind, payload in job.channel.events(before_waiting=flush):
            if kind == RECORDS:
                records += len(payload)
                yield from payload
            else:
                apply_state(self.get_context_state(context), payload)
                self.checkpoint()
        error = job.channel.error
        if isinstance(error, ProviderError):
            # Workers running side by side may each meet the failure that stopped the
            # whole provider (refused credentials): it is reported once.
            if not (error.whole_provider and self._halted is not None):
                self._report(error)
        elif error is not None and not isinstance(error, ReadCancelledError):
            raise error
        if error is None or isinstance(error, ProviderError):
            self._log_done(context, records, job.channel.pages)

    def _log_done(self, context: Context, records: int, pages: int) -> None:
        self.logger.info(
            "%s: done, %d records in %d pages.", self.describe(context), records, pages
        )

    def _report(self, error: ProviderError, *, halt: bool = False) -> None:
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
        return self.sort_fields(row)

    @cached_property
    def sort_fields(self) -> FieldSorter:
        """Moves what the schema does not declare into ``undeclared_fields`` (conform.py)."""
        return FieldSorter(self.schema)

    def generate_child_contexts(self, record: Record, context: Context) -> Iterator[Context]:
        """None: the only child, ``audit_events``, is fed in ``post_process``, never synced."""
        yield from ()

    def organization_name(self, context: Context) -> str | None:
        """The partition's organization name when the records do not carry it."""
        return None

    def pages(self, context: Context, params: dict, start_token: t.Any = None) -> Iterator[Page]:
        """Fetch pages from ``start_token`` until the paginator or an empty page says stop."""
        paginator = self.get_new_paginator(start_token)
        seen: set[str] = set() if start_token is None else {repr(start_token)}
        url = self.get_url(dict(context or {}))
        read_in_pass = 0
        previous_ids: list[str] = []
        empty_in_a_row = 0
        while not paginator.finished:
            token = paginator.current_value
            page_url, query = self.page_request(url, params, token)
            response = self.request_json(context, page_url, query, parse=self.parse_page)
            records, total = response.page
            try:
                paginator.advance(t.cast("requests.Response", response))  # read as one
            except RuntimeError as loop:
                raise self._loop_error(context, token) from loop
            # A server that ignores the page parameter serves the same page again under
            # a new token (or page number): that is a loop too.
            ids = [self.id_of(record) for record in records]
            if ids and ids == previous_ids:
                raise self._loop_error(context, token, same_page=True)
            previous_ids = ids
            next_token = None if paginator.finished else paginator.current_value
            if next_token is not None:
                key = repr(next_token)
                if key in seen:
                    raise self._loop_error(context, next_token)
                seen.add(key)
            read_in_pass += len(records)
            self._log_progress(
                context, len(records), None if total is None else total - read_in_pass
            )
            yield Page(
                records=records,
                token=token,
                next_token=next_token,
                total=total,
                elapsed_s=response.elapsed.total_seconds(),
            )
            if records:
                empty_in_a_row = 0
                continue
            if not paginator.continue_if_empty(t.cast("requests.Response", response)):
                return
            empty_in_a_row += 1
            if empty_in_a_row >= MAX_EMPTY_PAGES_IN_A_ROW:
                raise self._loop_error(context, next_token, empty=empty_in_a_row)

    def _loop_error(
        self, context: Context, token: object, *, same_page: bool = False, empty: int = 0
    ) -> ProviderError:
        if empty:
            what = f"returned {empty} empty pages in a row, each with a new page token"
        elif same_page:
            what = f"served the same page again for the page token {token!r} (it ignores paging)"
        else:
            what = f"returned the page token {token!r} twice"
        return ProviderError(
            f"{self.describe(context)}: the API {what}; stopped to avoid an endless loop. "
            "The state up to the last page is saved."
        )

    def _log_progress(self, context: Context, records: int, left_in_pass: int | None) -> None:
        progress = self._progress
        progress["pages"] += 1
        progress["read"] = progress.get("read", 0) + records
        now = time.monotonic()
        if now - progress["logged"] < PROGRESS_EVERY_SECONDS:
            return
        progress["logged"] = now
        elapsed = max(now - progress["started"], 1e-6)
        done = progress["read"]
        left = f", about {max(left_in_pass, 0):,} left in this pass" if left_in_pass else ""
        pages = progress["pages"]
        self.logger.info(
            "%s: %d page%s, %d records read (%.0f/s)%s.",
            self.describe(context),
            pages,
            "" if pages == 1 else "s",
            done,
            done / elapsed,
            left,
        )

    # --------------------------------------------------------- connection test

    def probe_params(self, context: Context) -> dict:
        """The connection test's query: the log's first page, as small as the API allows."""
        return {**self.request_params(context, None, None), **self.probe_query}

    def check_connection(self, context: Context) -> list[Record]:
        """One cheap request proving the URL, credentials, permission and organization.

        Returns the records of that page (few, maybe none). Raises ``ProviderError`` with
        the precise reason (refused credentials, a missing permission, an unknown
        organization, an unreachable host...).
        """
        url = self.get_url(dict(context or {}))
        params = self.probe_params(context)
        response = self.request_json(context, url, params, parse=self.parse_page)
        records, _total = response.page
        # Not ``post_process``: it would feed ``audit_events`` before the verdict is known.
        field = self.partition_field
        added = {field: context[field]} if context and field in context else {}
        return [self.sort_fields({**copy.deepcopy(record), **added}) for record in records]

    def check_connections(self) -> list[ConnectionCheck]:
        """Probe the provider: list its organizations when needed, then one page each."""
        failures = getattr(self.owner, "failures", None)
        known = len(failures) if failures is not None else 0
        label = self.provider_label
        try:
            partitions = self.partitions  # may list the organizations (one request)
        except ProviderError as error:
            return [ConnectionCheck(label, self._probe_problem(error))]
        if failures is not None and len(failures) > known:  # the listing failed
            return [ConnectionCheck(label, self._probe_problem(e)) for e in failures[known:]]
        if partitions is not None and not partitions:
            return [ConnectionCheck(label, f"{label}: no organization to read.")]
        checks = []
        contexts: list[dict | None] = list(partitions) if partitions is not None else [None]
        for context in contexts:
            try:
                records = self.check_connection(context)
            except ProviderError as error:
                checks.append(ConnectionCheck(self.describe(context), self._probe_problem(error)))
                if error.whole_provider:
                    break  # every other organization would fail the same way
            except Exception as error:  # never a traceback: name it and go on
                where = self.describe(context)
                detail = Redactor.scrub(str(error))[:300]
                problem = f"{where}: unexpected {type(error).__name__} ({detail})."
                checks.append(ConnectionCheck(where, problem))
            else:
                checks.append(ConnectionCheck(self.describe(context), None, records))
        return checks

    def _probe_problem(self, error: ProviderError) -> str:
        """A sync's error message, worded for the connection test (no state, no resume)."""
        if isinstance(error, QuotaExhaustedError):
            return (
                f"{str(error).partition(': ')[0]}: rate-limited, the API asks to wait "
                f"{error.wait_seconds:.0f} s (Retry-After). The credentials could not be "
                "checked; run the test again later."
            )
        text = str(error)
        if "gave up after" in text:  # timeouts, refused connections, 5xx: the host
            text = text.partition(" The state ")[0]
            text += (
                f" Check {self.provider}.base_url (the host must be reachable from here), "
                "or try again later."
            )
        return text

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
    ) -> ApiResponse:
        """GET ``url`` with the tap's retry policy (api.py); the answer comes decoded.

        What was read so far goes out first, so records never wait for the network.
        """
        flush = getattr(self.owner, "flush_messages", None)
        if flush is not None and threading.current_thread() is threading.main_thread():
            flush()
        where = f"{self.describe(context)}: GET {urlsplit(url).path}"
        return self.api.get(where, url, params, parse=parse, worker=current_job())

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


def _new_progress() -> dict[str, t.Any]:
    return {"pages": 0, "records": 0, "started": time.monotonic(), "logged": 0.0}


def saved_state(tap_state: Mapping[str, t.Any], stream: str, context: Context) -> dict | None:
    """The saved state of ``stream`` (of its partition ``context``, when given), if any."""
    stream_state = (tap_state.get("bookmarks") or {}).get(stream)
    if not isinstance(stream_state, dict) or not context:
        return stream_state if isinstance(stream_state, dict) else None
    for partition in stream_state.get("partitions") or ():
        if isinstance(partition, dict) and partition.get("context") == context:
            return partition
    return None


def non_empty(values: Iterable[object] | None) -> list[str]:
    """Strings of a config list, blanks dropped."""
    return [str(v).strip() for v in values or () if str(v).strip()]


__all__ = ["AuditLogStream", "AuditLogsError", "ConnectionCheck", "non_empty"]
