"""Torq workspace audit log.

API: ``GET {base}/v1alpha/audit_logs``, base ``https://api.torq.io/public``
(EU: ``https://api.eu.torq.io/public``). Documented at
https://developers.torq.io/apidocs/list-audit-logs (query, response),
https://developers.torq.io/apidocs/resources-audit-logs (events, Owner key, 5 minutes late),
https://developers.torq.io/apidocs/authentication (token), https://developers.torq.io/apidocs/errors
(302, 401, 403...) and https://developers.torq.io/apidocs/overview (domains, rate limit).

* Auth: OAuth2 client credentials. ``POST https://auth.torq.io/v1/auth/token`` (EU:
  ``auth.eu.torq.io``) with Basic ``client_id:client_secret`` and the form
  ``grant_type=client_credentials`` returns ``{"access_token", "expires_in": 3600,
  "token_type": "Bearer"}``. Only a workspace Owner can create the API key; one key sees
  one workspace, in one region.
* An expired token is answered with a **302** redirect to a login page, not a 401. The tap
  never follows redirects: on a 302 or 401 it fetches a new token once and repeats the
  request (``handle_auth_failure``). It also renews shortly before ``expires_in`` ends.
* The docs print the path without ``/public``; every public Torq client calls
  ``/public/v1alpha/...``, so the base URL keeps ``/public`` and is a setting.
* Query: ``start_time`` / ``end_time`` (RFC 3339, up to nanoseconds), ``order`` asc|desc
  (default desc: we always send asc), ``page_size`` (default 100, max 500: we always send
  500), ``page_token``. ``start_time`` means "created after" (exclusive); the tap asks
  from one second before the first instant it wants (``LOWER_BOUND_MARGIN_NS``: a server
  that rounds the bound to microseconds still returns the event at it). Without
  ``start_time`` the API returns only the last 24 hours.
* Response: ``{"audit_logs": [...], "next_page_token": "..."}``; the last page has the
  token missing or ``""``. Proto3 JSON omits empty fields, so an empty ``audit_logs`` may
  be missing too.
* Order: ascending, as asked, so the bookmark moves page by page and a killed run resumes
  mid-way (the ``Ascending`` strategy). The strategy checks every page; if the API ever
  ignores ``order=asc`` it warns, reads to the end and moves the bookmark only then.
* Timestamps carry 6 or 9 fractional digits: compared as integer nanoseconds, the bookmark
  and ``start_time`` keep all nine digits.
* Entries can appear up to 5 minutes late: every run re-reads ``lookback_seconds`` (300)
  before the bookmark; an entry later than that is missed (documented limit).
* Limits: 50 requests/s. Errors: ``{"code", "message", "details": []}``; 401, 403, 404, 502.
"""

from __future__ import annotations

import dataclasses
import typing as t
from functools import cached_property

import requests
from singer_sdk import typing as th
from singer_sdk.pagination import BaseAPIPaginator

from tap_auditlogs.core.instants import format_instant
from tap_auditlogs.core.redaction import Redactor
from tap_auditlogs.engine.declaration import LOWER_BOUND_MARGIN_NS
from tap_auditlogs.engine.source import AuditLogSource
from tap_auditlogs.engine.strategies import Ascending
from tap_auditlogs.http.client import REDIRECT_STATUSES
from tap_auditlogs.http.responses import list_field
from tap_auditlogs.providers import Provider, lookback_setting
from tap_auditlogs.providers.torq.auth import (
    CREDENTIALS_HINT,
    TOKEN_TIMEOUT_SECONDS,
    TorqAuthenticator,
)
from tap_auditlogs.providers.torq.events import UNIFIED

if t.TYPE_CHECKING:
    from tap_auditlogs.core.types import Context, Record


@dataclasses.dataclass(frozen=True)
class Region:
    """Where a Torq region's API and token endpoint live."""

    base_url: str
    token_url: str


REGIONS: dict[str, Region] = {
    "us": Region("https://api.torq.io/public", "https://auth.torq.io/v1/auth/token"),
    "eu": Region("https://api.eu.torq.io/public", "https://auth.eu.torq.io/v1/auth/token"),
}
DEFAULT_REGION = "us"
PAGE_SIZE = 500  # documented: page_size default 100, max 500 (https://developers.torq.io/apidocs/list-audit-logs)


class TorqPageTokenPaginator(BaseAPIPaginator["str | None"]):
    """Follows ``next_page_token`` (from the page already decoded) until missing or ``""``."""

    def get_next(self, response: requests.Response) -> str | None:
        """The next page token; None (the end) when it is missing or empty."""
        token = response.json().get("next_page_token")
        return str(token) if token else None


class TorqAuditLog(AuditLogSource):
    """Audit-log entries of the Torq workspace the API key belongs to."""

    name = "torq_audit_log"
    provider = "torq"
    provider_label = "Torq"
    path = "/v1alpha/audit_logs"
    primary_keys = ("id",)
    replication_key = "timestamp"
    # One workspace per API key, so the stream has a single partition and no context: the
    # state is the stream's own bookmark (``bookmarks.torq_audit_log``), not keyed by a
    # credential, so rotating the API key keeps it. The workspace is named in every record
    # by the API itself (``account_id``, ``account_name``); nothing is added. To read two
    # workspaces, run the tap twice with separate state (e.g. two Meltano state ids).
    partition_field = "account_id"
    default_base_url = REGIONS[DEFAULT_REGION].base_url
    homepage = "https://torq.io"
    first_run_reach = "24 hours"  # documented: the answer without start_time (https://developers.torq.io/apidocs/list-audit-logs)
    # documented: 50 requests per second (https://developers.torq.io/apidocs/overview)
    rate_limit = (50, 1.0)
    credentials_hint = CREDENTIALS_HINT
    #: ``order=asc`` and ``start_time`` are documented: a long read is split into time
    #: ranges fetched side by side when reading ahead (``Ascending``).
    strategy = Ascending(splittable=True)
    page_size = PAGE_SIZE
    #: ``end_time`` is documented: every request carries ``end_date`` when set.
    upper_bound_param = "end_time"
    upper_bound_trusted = True

    @property
    def region(self) -> Region:
        """The configured region (validated against ``REGIONS`` at start-up)."""
        return REGIONS[str(self.settings.get("region") or DEFAULT_REGION)]

    @property
    def url_base(self) -> str:
        """``torq.base_url``, else the region's API."""
        return str(self.settings.get("base_url") or self.region.base_url).rstrip("/")

    @property
    def token_url(self) -> str:
        """``torq.token_url``, else the region's token endpoint."""
        return str(self.settings.get("token_url") or self.region.token_url)

    @cached_property
    def authenticator(self) -> TorqAuthenticator:
        """One authenticator per stream, so its token is reused until it runs out."""
        client_id, secret = str(self.settings["client_id"]), str(self.settings["client_secret"])
        Redactor.register_basic(client_id, secret)  # the token request's Basic credentials
        return TorqAuthenticator(
            token_url=self.token_url,
            client_id=client_id,
            client_secret=secret,
            timeout=min(self.timeout, TOKEN_TIMEOUT_SECONDS),
            deadline=self.api.deadline_s,
            backoff_base=float(self.config.get("backoff_base_seconds", 1.0)),
            logger=self.logger,
        )

    def handle_auth_failure(self, response: requests.Response) -> bool:
        """302 (Torq's answer to an expired token) or 401: get a new token, repeat once."""
        if not self.authenticator.may_renew():
            return False  # the client reports the failure (401: credentials, 3xx: base_url)
        expired = response.status_code in REDIRECT_STATUSES
        self.logger.info(
            "Torq: the API answered HTTP %d (%s); getting a new access token.",
            response.status_code,
            "the access token expired" if expired else "the access token was refused",
        )
        self.authenticator.renew_after_failure()
        return True

    def request_params(self, context: Context, lower: int | None, upper: int | None) -> dict:
        """Ascending, largest pages, from a second before ``lower`` (``start_time`` is
        exclusive: the first instant it returns is ``lower`` minus the margin), up to
        ``upper`` (``end_time``: a range's end, or ``end_date``; what comes back at or after
        it is dropped on the client)."""
        params: dict[str, t.Any] = {"order": "asc", "page_size": PAGE_SIZE}
        if lower is None:
            self.warn_once(
                "default-window",
                "no start_date and no state: the API returns only the last 24 hours. "
                "Set start_date to read further back.",
            )
        else:
            params["start_time"] = format_instant(lower - LOWER_BOUND_MARGIN_NS - 1)
        if upper is not None:
            params["end_time"] = format_instant(upper)
        return params

    def probe_params(self, context: Context) -> dict:
        """The connection test: the newest entry since ``start_date`` (else the last 24 h)."""
        params: dict[str, t.Any] = {"order": "desc", "page_size": 1}
        if self.start_ns is not None:
            params["start_time"] = format_instant(self.start_ns - LOWER_BOUND_MARGIN_NS - 1)
        return params

    def page_params(self, token: t.Any) -> dict:
        """The page token goes in ``page_token``."""
        return {"page_token": token}

    def get_new_paginator(self, start_value: t.Any = None) -> TorqPageTokenPaginator:
        """Paginator from the first page, or from a saved token."""
        return TorqPageTokenPaginator(start_value)

    def parse_page(self, payload: t.Any) -> tuple[list[Record], int | None]:
        """The ``audit_logs`` list (absent when empty, documented; null is not) of entry
        objects. An entry without an id or a readable time is kept: the strategies cope
        (``check_values`` warns) and the stream gives it an id."""
        entries = list_field(payload, "audit_logs", absent_when_empty=True)
        return entries, None

    def error_hint(self, status: int) -> str:
        """Torq-specific advice for error statuses."""
        if status == 404:
            return "Check torq.base_url (it ends in /public) and torq.region."
        if status == 403:  # documented: the key's role lacks the permission
            return (
                "The API key's role may not read audit logs: they need an API key created "
                "by a workspace Owner (https://developers.torq.io/apidocs/resources-audit-logs)."
                " Set torq.client_id and torq.client_secret to such a key."
            )
        return super().error_hint(status)


PROVIDER = Provider(
    source_class=TorqAuditLog,
    required=("client_id", "client_secret"),
    description="Torq workspace audit log (one workspace per API key).",
    unified=UNIFIED,
    settings=(
        th.Property(
            "client_id",
            th.StringType,
            description="Client ID of a Torq API key (Settings > API Keys; Owner role).",
        ),
        th.Property(
            "client_secret",
            th.StringType,
            secret=True,
            description="Client secret of the Torq API key.",
        ),
        th.Property(
            "region",
            th.StringType,
            default=DEFAULT_REGION,
            allowed_values=sorted(REGIONS),
            description="Torq region of the workspace: us (default) or eu.",
        ),
        th.Property(
            "base_url",
            th.URIType,
            description=(
                "Torq API base URL. Default from the region: "
                + ", ".join(f"{key}: {region.base_url}" for key, region in REGIONS.items())
                + "."
            ),
        ),
        th.Property(
            "token_url",
            th.URIType,
            description=(
                "Torq OAuth token endpoint. Default from the region: "
                + ", ".join(f"{key}: {region.token_url}" for key, region in REGIONS.items())
                + "."
            ),
        ),
        lookback_setting(
            TorqAuditLog,
            "Seconds re-read before the bookmark on every run; Torq entries can appear "
            "up to 5 minutes late.",
        ),
    ),
)
