"""What a provider declares: its API, its settings block, its log's shape, its quirks.

``ProviderDeclaration`` holds every attribute and hook a provider module sets or overrides,
with the defaults that fit most APIs; ``AuditLogSource`` (source.py) adds what reading them
takes. A provider's source class is both (``class SocketAuditLog(AuditLogSource)``) and
overrides only what its API needs: see ``tests/example_provider/example_log.py``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import typing as t
from functools import cached_property

from tap_auditlogs.core.instants import NS_PER_SECOND, parse_instant, read_instant, seconds_to_ns
from tap_auditlogs.core.types import PageRequest
from tap_auditlogs.http.client import USER_AGENT
from tap_auditlogs.http.responses import (
    ERROR_MESSAGE_KEYS,
    reset_header_seconds,
    retry_after_seconds,
)

if t.TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    import requests
    from singer_sdk.pagination import BaseAPIPaginator

    from tap_auditlogs.core.types import Context, Record
    from tap_auditlogs.engine.strategies import Strategy


#: Every lower bound a provider sends asks from this much earlier than the first instant it
#: wants (``request_params``): a server that reads the bound as exclusive, or rounds it
#: (to microseconds, to the second), still returns the event exactly at it. What comes back
#: older is dropped on the client (the strategies' ``lower``), repeats by id.
LOWER_BOUND_MARGIN_NS = NS_PER_SECOND


def no_value(value: object) -> bool:
    """True for what stands for no value in a key field: missing (None), null or blank."""
    return value is None or (isinstance(value, str) and not value.strip())


class ProviderDeclaration:
    """The attributes and hooks of one provider (defaults here; a provider overrides)."""

    # What the source is given (``AuditLogSource.__init__``) or declares per provider.
    config: Mapping[str, t.Any]
    replication_key: str | None
    primary_keys: t.Sequence[str]
    logger: logging.Logger
    schema: dict[str, t.Any]
    #: The method of the log's requests (the SDK's ``http_method``): a POST API sets "POST".
    http_method: t.ClassVar[str] = "GET"

    #: Provider key: the name of its settings block (``socket``, ``configcat``...).
    provider: t.ClassVar[str]
    #: Provider name for people (``Socket``).
    provider_label: t.ClassVar[str]
    #: How this provider's log is read (a class attribute, or a property when settings shape it).
    strategy: Strategy
    #: The field that names the partition in a record and in the state (e.g. ``org_slug``).
    partition_field: t.ClassVar[str]
    #: The provider's web site, for the docs.
    homepage: t.ClassVar[str] = ""
    #: Where the API lives unless ``<provider>.base_url`` says otherwise.
    default_base_url: t.ClassVar[str]
    #: What a first run reads without ``start_date`` (the API's own reach), for the docs.
    first_run_reach: t.ClassVar[str] = "everything"
    #: Days the vendor documents that it keeps events (``retention_days``'s default; None:
    #: no single number is documented), and what the docs say about it.
    default_retention_days: t.ClassVar[int | None] = None
    retention_documented: t.ClassVar[str] = "No retention is documented: no default."
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
    #: Documented headers that say when a rate limit resets (epoch seconds, seconds or a
    #: date): a 429 without ``Retry-After`` is waited out until then.
    rate_limit_reset_headers: t.ClassVar[tuple[str, ...]] = ()
    #: The documented query parameter ``request_params`` sends an upper bound in (``upper``:
    #: ``end_date``, a window's or a range's end), for the docs; None: none is sent.
    upper_bound_param: t.ClassVar[str | None] = None
    #: True: the API honours that parameter on every request (documented), so every request
    #: carries ``end_date`` when set (partition_reader.py ``Clocked``). False: only the requests a
    #: strategy bounds itself (windows; ranges of a read proven sorted). Either way, no
    #: event at or after ``end_date`` is emitted (strategies.py ``_is_new``).
    upper_bound_trusted: t.ClassVar[bool] = False
    #: Records per page the tap asks for: a shorter page is the last of a listing (page_loop.py).
    page_size: t.ClassVar[int | None] = None
    #: The API documents an empty page as the end of the log: a long run of empty pages that
    #: still point on ends the read with a WARNING instead of an error (page_loop.py).
    empty_page_may_end: t.ClassVar[bool] = False

    # ------------------------------------------------------------- organizations

    #: The setting that names the organizations to read (``org_slugs``); None: the API
    #: serves one log, with no partitions. Unset, every organization listed is read.
    organizations_setting: t.ClassVar[str | None] = None
    #: What lists them and what to do when none is seen, for messages.
    organizations_listing: t.ClassVar[str] = "the organization listing"
    no_organization_hint: t.ClassVar[str] = ""
    #: Who sees the organizations, for messages ("the token sees").
    who_lists: t.ClassVar[str] = "the credentials see"
    #: The partition field of an event-type filter (``event_types`` setting), if any.
    event_type_field: t.ClassVar[str | None] = None
    #: Every documented value of that filter, spelled as the API takes it. A configured
    #: type is matched ignoring case (``documented_spelling``) and sent in this spelling;
    #: one that matches none is refused at start-up (settings.py). Empty: any value is sent.
    event_type_values: t.ClassVar[tuple[str, ...]] = ()
    #: The vendor's page that lists them, for messages.
    event_type_source: t.ClassVar[str] = ""

    def list_organizations(self) -> dict[str, str | None]:
        """Every organization the credentials see: id -> name (None when unknown)."""
        raise NotImplementedError

    def event_type_filter(self, name: str) -> str:
        """A configured event type as the API's filter spells it (checked at start-up)."""
        return documented_spelling(name, self.event_type_values) or name

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
        return int(self.config["request_timeout"])

    @property
    def lookback_ns(self) -> int:
        """The lookback in nanoseconds."""
        seconds = self.settings["lookback_seconds"]
        return seconds_to_ns(float(seconds))

    @cached_property
    def start_ns(self) -> int | None:
        """``start_date`` in nanoseconds, if set."""
        value = self.config.get("start_date")
        return parse_instant(str(value), allow_naive=True) if value else None

    @cached_property
    def end_ns(self) -> int | None:
        """``end_date`` in nanoseconds (exclusive), if set."""
        value = self.config.get("end_date")
        return parse_instant(str(value), allow_naive=True) if value else None

    def rate_limit_wait(self, response: requests.Response) -> float | None:
        """Seconds a 429 or 503 asks to wait: ``Retry-After``, else on a 429 the latest of
        ``rate_limit_reset_headers``; a provider may read others."""
        wait = retry_after_seconds(response)
        if wait is not None or response.status_code != 429:
            return wait
        resets = [reset_header_seconds(response, name) for name in self.rate_limit_reset_headers]
        return max((reset for reset in resets if reset is not None), default=None)

    def lower_bound(self, bookmark: int | None) -> int | None:
        """The oldest instant to read: bookmark minus lookback, never before ``start_date``."""
        candidates = [v for v in (self.start_ns,) if v is not None]
        if bookmark is not None:
            candidates.append(bookmark - self.lookback_ns)
        return max(candidates) if candidates else None

    def instant_of(self, record: Record) -> int | None:
        """The record's replication-key value as ns: ISO 8601, or an epoch number read by its
        magnitude (``instants.read_epoch``). None when it is missing, null or unreadable: the
        strategies still emit such a record, but never move a bookmark or judge an order on it
        (``AuditLogStream.check_values`` warns once per event)."""
        return read_instant(record.get(t.cast("str", self.replication_key)))

    def id_of(self, record: Record) -> str:
        """The record's provider id as text; for one sent without (missing, null or blank),
        its ``substitute_id``, so two such events are never taken for one."""
        value = record.get(self.primary_keys[-1])
        return str(self.substitute_id(record) if no_value(value) else value)

    def substitute_id(self, record: Record) -> str | int:
        """A deterministic id for an event the API sent without one (docs/guarantees.md).

        The SHA-256 of the event's canonical JSON (keys sorted, no blanks, UTF-8, the id field
        left out): the same event read again gets the same id, two events that differ in any
        field get different ones. Text ids become ``sha256:`` and 32 hex digits; an id the
        schema declares as an integer (ConfigCat ``auditLogId``) becomes a negative integer of
        52 bits of the hash: it fits the column, never equals a real (positive) id, and stays
        exact in loaders that read numbers as doubles.
        """
        key = self.primary_keys[-1]
        rest = {name: value for name, value in record.items() if name != key}
        canonical = json.dumps(
            rest, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=repr
        )
        digest = hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).digest()
        if self._integer_id:
            return -(int.from_bytes(digest[:8], "big") >> 12) - 1
        return f"sha256:{digest.hex()[:32]}"

    @cached_property
    def _integer_id(self) -> bool:
        """True when the schema declares the id field as an integer."""
        declared = self.schema.get("properties", {}).get(self.primary_keys[-1], {})
        types = declared.get("type", [])
        return "integer" in ([types] if isinstance(types, str) else types)

    def request_params(self, context: Context, lower: int | None, upper: int | None) -> dict:
        """Query parameters of a pass; providers add their time bounds and filters."""
        return {}

    def page_params(self, token: t.Any) -> dict:
        """Query parameters that select the page ``token``."""
        raise NotImplementedError

    def page_request(self, url: str, params: dict, token: t.Any) -> PageRequest | tuple[str, dict]:
        """URL, query and body of the page ``token`` (None: the first page) of a pass.

        By default the pass's query plus ``page_params(token)``, no body; an API whose next
        page is a full URL (a ``Link`` header) returns that URL and no query; one that POSTs
        (``http_method``) may send the pass's parameters as the first body and only the cursor
        after. A plain ``(url, query)`` pair is read as a request without a body.
        """
        if token is None:
            return PageRequest(url, params)
        return PageRequest(url, {**params, **self.page_params(token)})

    def prepare_request_payload(self, context: Context, next_page_token: t.Any) -> t.Any:
        """The SDK's body hook: the JSON body of a page's request when ``page_request`` gives
        none (None: no body)."""
        return None

    def build_page_request(
        self, context: Context, url: str, params: dict, token: t.Any
    ) -> PageRequest:
        """The request of page ``token`` of a pass (the page loop's and the connection
        test's): ``page_request``'s, its body else ``prepare_request_payload``'s."""
        request = PageRequest(*self.page_request(url, params, token))
        if request.body is None:
            request = request._replace(body=self.prepare_request_payload(context, token))
        return request

    def parse_page(self, payload: t.Any) -> tuple[list[Record], int | None]:
        """Records and total count of a decoded page; ValueError if the shape is wrong."""
        raise NotImplementedError

    def get_new_paginator(self, start_value: t.Any = None) -> BaseAPIPaginator:
        """A paginator positioned at ``start_value`` (the first page when None)."""
        raise NotImplementedError

    # -------------------------------------------------------------- the sync

    def describe(self, context: Context) -> str:
        """Provider and partition, for messages: ``Socket org 'acme'``."""
        if not context:
            return self.provider_label
        parts = [f"{key} '{value}'" for key, value in context.items()]
        return f"{self.provider_label} {', '.join(parts)}"

    def probe_params(self, context: Context) -> dict:
        """The connection test's query: the log's first page, as small as the API allows."""
        return {**self.request_params(context, None, None), **self.probe_query}

    # ------------------------------------------------------------- HTTP policy

    def handle_auth_failure(self, response: requests.Response) -> bool:
        """Called on 401 and redirects; return True after renewing credentials to retry once."""
        return False

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


def spelling_key(name: str) -> str:
    """What identifies a documented value: case, blanks, ``_`` and ``-`` do not matter."""
    return re.sub(r"[\s_\-]+", "", name).casefold()


def documented_spelling(name: str, documented: Iterable[str]) -> str | None:
    """The documented value ``name`` stands for (``ssoLoginCompleted`` ->
    ``SSOLoginCompleted``); None when it stands for none."""
    key = spelling_key(name)
    return next((value for value in documented if spelling_key(value) == key), None)
