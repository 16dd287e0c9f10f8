"""Torq workspace audit log.

API: ``GET {base}/v1alpha/audit_logs``, base ``https://api.torq.io/public``
(EU: ``https://api.eu.torq.io/public``).

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
  500), ``page_token``. ``start_time`` means "created after" (exclusive), so the tap asks
  from 1 ns before the first instant it wants. Without ``start_time`` the API returns only
  the last 24 hours.
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
import math
import threading
import time
import typing as t
from datetime import datetime, timezone
from functools import cached_property
from urllib.parse import urlsplit

import orjson
import requests
from singer_sdk import typing as th
from singer_sdk.authenticators import OAuthAuthenticator
from singer_sdk.pagination import BaseAPIPaginator

from tap_auditlogs.api import REDIRECT_STATUSES, RETRY_STATUSES
from tap_auditlogs.client import AuditLogStream
from tap_auditlogs.errors import ProviderError, TransientError
from tap_auditlogs.instants import format_instant, parse_instant
from tap_auditlogs.providers import Provider, lookback_setting
from tap_auditlogs.redaction import Redactor
from tap_auditlogs.responses import api_error_message, retry_after_seconds, undecodable_body
from tap_auditlogs.retry import RetriesExhaustedError, RetryPolicy, call_with_retries
from tap_auditlogs.strategies import Ascending
from tap_auditlogs.unified import UnifiedMapping

if t.TYPE_CHECKING:
    import logging

    from tap_auditlogs.strategies import Context, Record
    from tap_auditlogs.unified import Taxon


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
PAGE_SIZE = 500
#: Renew this long before ``expires_in`` ends (at most a tenth of the token's lifetime).
RENEW_MARGIN_SECONDS = 60.0
#: Token requests: a short timeout and a couple of retries (5xx, 429, connection errors).
TOKEN_TIMEOUT_SECONDS = 15
TOKEN_ATTEMPTS = 3
TOKEN_MAX_WAIT_SECONDS = 10.0
#: Statuses of the token endpoint that mean "these credentials are not accepted here".
REFUSED_STATUSES = frozenset({400, 401, 403})

CREDENTIALS_HINT = (
    "Check torq.client_id and torq.client_secret (a Torq API key, which only a workspace "
    "Owner can create) and torq.region (us or eu: a key works only in its own region)"
)


class TorqAuthenticator(OAuthAuthenticator):
    """Client-credentials OAuth for Torq: the SDK's ``OAuthAuthenticator``, adapted.

    Kept from the SDK: the flow (token from ``expires_in``, ``Authorization: Bearer`` on
    every request, renewal when the token is no longer valid). Replaced, because they do
    not fit a tap that must never print a traceback or a secret:

    * ``is_token_valid``: the SDK has no safety margin; we renew ``RENEW_MARGIN_SECONDS``
      (at most a tenth of the lifetime) before the token runs out.
    * ``update_access_token``: the SDK's posts with a fixed 60 s timeout, retries only
      over https and only connection errors (urllib3, up to ~100 s), logs the endpoint's
      body at ERROR and raises ``RuntimeError``. Ours: Basic client credentials, a short
      timeout, ``TOKEN_ATTEMPTS`` tries on 5xx/429/connection errors, then one clear
      ``ProviderError``; the token is registered with the ``Redactor`` the moment it
      arrives.
    * ``renew_after_failure``: the SDK has no re-authentication after a refused call.

    No ``SingletonMeta``: the stream caches one instance (``functools.cached_property``).
    """

    def __init__(
        self,
        *,
        token_url: str,
        client_id: str,
        client_secret: str,
        timeout: float,
        backoff_base: float,
        logger: logging.Logger,
    ) -> None:
        """Create the authenticator; no request is made until the first API call."""
        super().__init__(auth_endpoint=token_url, client_id=client_id, client_secret=client_secret)
        # Our own plain session: the SDK's mounts urllib3 retries that would multiply ours.
        self._session = requests.Session()
        self._timeout = timeout
        self._backoff_base = backoff_base
        self.logger = logger
        self._fetched_at: float | None = None  # time.monotonic() of the token request
        self._renewed_after_failure = False
        self._uses = 0  # API calls authenticated with the current token
        # Read-ahead workers share this authenticator: one of them fetches a token at a time.
        self._lock = threading.RLock()

    @property
    def oauth_request_body(self) -> dict:
        """The form body; the client credentials go in the Basic header."""
        return {"grant_type": "client_credentials"}

    def is_token_valid(self) -> bool:
        """True while the token has more than the renewal margin left."""
        if self.access_token is None or self._fetched_at is None:
            return False
        if not self.expires_in:
            return True
        margin = min(RENEW_MARGIN_SECONDS, self.expires_in / 10)
        return time.monotonic() - self._fetched_at < self.expires_in - margin

    def authenticate_request(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        """Add the Bearer token, fetching a new one first when needed."""
        with self._lock:
            request = super().authenticate_request(request)
            self._uses += 1
        return request

    def may_renew(self) -> bool:
        """False when the token was fetched because the last one was refused, and was
        refused again on its first use: a third will not help, the caller reports it."""
        return not (self._renewed_after_failure and self._uses <= 1)

    def renew_after_failure(self) -> None:
        """Replace the refused token with a new one now."""
        with self._lock:
            self.update_access_token()
            self._renewed_after_failure = True

    def update_access_token(self) -> None:
        """Get a new access token, or raise one clear ``ProviderError``.

        Retried like an API request (api.py, ``backoff``), within the token's own limits:
        ``TOKEN_ATTEMPTS`` tries, no wait longer than ``TOKEN_MAX_WAIT_SECONDS``.
        """
        url = str(self.auth_endpoint)
        parts = urlsplit(url)
        where = f"the token endpoint {parts.netloc}{parts.path}"
        started = time.monotonic()

        def one_try() -> dict:
            try:
                response = self._session.post(
                    url,
                    data=self.oauth_request_body,
                    auth=(str(self.client_id), str(self.client_secret)),
                    headers={"Accept": "application/json"},
                    timeout=self._timeout,
                    allow_redirects=False,
                )
            except requests.Timeout:
                raise TransientError(f"no answer within {self._timeout:.0f} s") from None
            except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
                raise TransientError(f"connection failed ({type(exc).__name__})") from None
            except requests.exceptions.ContentDecodingError:
                problem = "the compressed response body is corrupt: it could not be decompressed"
                raise TransientError(problem) from None
            except requests.RequestException as exc:
                raise ProviderError(
                    f"Torq: torq.token_url is not a usable URL ({type(exc).__name__}).",
                    whole_provider=True,
                ) from None
            token = self._accept(response, where)
            if token is not None:
                return token
            if response.status_code == 200:
                raise TransientError(undecodable_body(response, quote=False))
            raise TransientError(
                f"HTTP {response.status_code} {response.reason or ''}".strip(),
                retry_after=retry_after_seconds(response),
            )

        def warn(problem: TransientError, wait: float, _attempt: int) -> None:
            self.logger.warning(
                "Torq: getting an access token from %s failed: %s; retrying in %.1f s.",
                where,
                problem,
                wait,
            )

        policy = RetryPolicy(
            tries=TOKEN_ATTEMPTS,
            base_wait_s=self._backoff_base,
            cap_s=math.inf,
            clip_s=TOKEN_MAX_WAIT_SECONDS,
        )
        try:
            token = call_with_retries(one_try, policy, warn)
        except RetriesExhaustedError as exhausted:
            raise ProviderError(
                f"Torq: could not get an access token from {where} after {TOKEN_ATTEMPTS} "
                f"attempts; last error: {exhausted.problem}. Check torq.region and "
                "torq.token_url, or run again later.",
                whole_provider=True,
            ) from None
        self._store(token, started)

    def _accept(self, response: requests.Response, where: str) -> dict | None:
        """The decoded token answer; None to retry; ProviderError when retrying is useless."""
        status = response.status_code
        if status in RETRY_STATUSES:
            return None
        if status != 200:
            detail = api_error_message(response)
            answer = f"HTTP {status}: {detail}" if detail else f"HTTP {status}"
            if status in REFUSED_STATUSES:
                message = f"refused the API key ({answer}). {CREDENTIALS_HINT}."
            else:  # 404, a redirect...: the URL is wrong
                message = f"answered {answer}. Check torq.region and torq.token_url."
            raise ProviderError(f"Torq: {where} {message}", whole_provider=True)
        try:
            body = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            return None
        if not isinstance(body, dict) or not isinstance(body.get("access_token"), str):
            raise ProviderError(
                f"Torq: {where} answered without an access_token. Check torq.token_url.",
                whole_provider=True,
            )
        Redactor.register(body["access_token"])
        return body

    def _store(self, body: dict, started: float) -> None:
        """Keep the new token; its lifetime counts from before the request was sent."""
        expires_in = body.get("expires_in")
        self.access_token = str(body["access_token"])
        self.expires_in = int(expires_in) if isinstance(expires_in, (int, float)) else 3600
        self._fetched_at = started
        self.last_refreshed = datetime.now(timezone.utc)
        self._renewed_after_failure = False
        self._uses = 0
        self.logger.info("Torq: got a new access token (valid %d s).", self.expires_in)


class TorqPageTokenPaginator(BaseAPIPaginator["str | None"]):
    """Follows ``next_page_token`` (from the page already decoded) until missing or ``""``."""

    def get_next(self, response: requests.Response) -> str | None:
        """The next page token; None (the end) when it is missing or empty."""
        token = response.json().get("next_page_token")
        return str(token) if token else None

    def continue_if_empty(self, response: requests.Response) -> bool:
        """An empty page that still names a next page is not the end."""
        return self.get_next(response) is not None


class TorqAuditLogStream(AuditLogStream):
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
    default_lookback_seconds = 300
    rate_limit = (50, 1.0)  # documented: 50 requests per second
    credentials_hint = CREDENTIALS_HINT
    #: ``order=asc`` and ``start_time`` are documented: a long read is split into time
    #: ranges fetched side by side when reading ahead (``Ascending``).
    strategy = Ascending(splittable=True)

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
        secret = str(self.settings["client_secret"])
        Redactor.register(secret)
        return TorqAuthenticator(
            token_url=self.token_url,
            client_id=str(self.settings["client_id"]),
            client_secret=secret,
            timeout=min(self.timeout, TOKEN_TIMEOUT_SECONDS),
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
        """Ascending, largest pages, from 1 ns before ``lower`` (``start_time`` is exclusive)."""
        params: dict[str, t.Any] = {"order": "asc", "page_size": PAGE_SIZE}
        if lower is None:
            self.warn_once(
                "default-window",
                "no start_date and no state: the API returns only the last 24 hours. "
                "Set start_date to read further back.",
            )
        else:
            params["start_time"] = format_instant(lower - 1)
        if upper is not None:
            params["end_time"] = format_instant(upper)
        return params

    def probe_params(self, context: Context) -> dict:
        """The connection test: the newest entry since ``start_date`` (else the last 24 h)."""
        params: dict[str, t.Any] = {"order": "desc", "page_size": 1}
        if self.start_ns is not None:
            params["start_time"] = format_instant(self.start_ns - 1)
        return params

    def page_params(self, token: t.Any) -> dict:
        """The page token goes in ``page_token``."""
        return {"page_token": token}

    def get_new_paginator(self, start_value: t.Any = None) -> TorqPageTokenPaginator:
        """Paginator from the first page, or from a saved token."""
        return TorqPageTokenPaginator(start_value)

    def parse_page(self, payload: t.Any) -> tuple[list[Record], int | None]:
        """The ``audit_logs`` list (absent when empty); every entry has an id and a time."""
        if not isinstance(payload, dict):
            raise TypeError("the body is not an object")
        entries = payload.get("audit_logs") or []
        if not isinstance(entries, list):
            raise TypeError("audit_logs is not a list")
        for entry in entries:
            if not entry.get("id"):
                raise ValueError("an entry has no id")
            parse_instant(str(entry["timestamp"]), allow_naive=True)
        return entries, None

    def error_hint(self, status: int) -> str:
        """Torq-specific advice for error statuses."""
        if status == 404:
            return "Check torq.base_url (it ends in /public) and torq.region."
        if status == 403:
            return f"The API key lacks a permission. {CREDENTIALS_HINT}."
        return super().error_hint(status)


# ------------------------------------------------------------------------- audit_events
# Every action of Torq's audit-log event list (developers.torq.io/apidocs/resources-audit-logs
# and learn.torq.io/docs/audit-logs; ``action`` carries this text, e.g. "Workflow edited")
# -> (category, operation, target type); taxonomy in unified.py. The stored copy of the
# list ends at "IdP connection updated"; whatever follows it, or comes later, is ``other``.
EVENT_TYPES: dict[str, Taxon] = {
    "User invited": ("membership", "create", "invitation"),
    "User accepted invitation": ("membership", "create", "member"),
    "User role updated": ("membership", "update", "user"),
    "User deleted": ("membership", "delete", "user"),
    "User logged in": ("authentication", "login", "user"),
    "User logged out": ("authentication", "logout", "user"),
    "User switched accounts": ("authentication", "other", "user"),
    "Workflow created": ("resource", "create", "workflow"),
    "Workflow deleted": ("resource", "delete", "workflow"),
    "Workflow updated": ("resource", "update", "workflow"),
    "Workflow published": ("resource", "update", "workflow"),
    "Workflow unpublished": ("resource", "update", "workflow"),
    "Workflow edited": ("resource", "update", "workflow"),
    "Workflow reverted": ("resource", "update", "workflow"),
    "Workflow enabled": ("resource", "enable", "workflow"),
    "Workflow disabled": ("resource", "disable", "workflow"),
    "Workspace variable created": ("configuration", "create", "workspace_variable"),
    "Workspace variable updated": ("configuration", "update", "workspace_variable"),
    "Workspace variable deleted": ("configuration", "delete", "workspace_variable"),
    "Email address added": ("configuration", "create", "notification_email"),
    "Email address removed": ("configuration", "delete", "notification_email"),
    "Webhook added": ("integration", "create", "webhook"),
    "Webhook removed": ("integration", "delete", "webhook"),
    "Webhook authentication headers added": ("credential", "create", "webhook_auth_headers"),
    "Webhook authentication headers removed": ("credential", "delete", "webhook_auth_headers"),
    "Webhook authentication headers updated": ("credential", "update", "webhook_auth_headers"),
    "API key enabled": ("credential", "enable", "api_key"),
    "API key deleted": ("credential", "delete", "api_key"),
    "Secret created": ("credential", "create", "secret"),
    "Secret deleted": ("credential", "delete", "secret"),
    "Secret updated": ("credential", "update", "secret"),
    "Integration created": ("integration", "create", "integration"),
    "Integration deleted": ("integration", "delete", "integration"),
    "Integration updated": ("integration", "update", "integration"),
    "Custom step created": ("resource", "create", "custom_step"),
    "Custom step deleted": ("resource", "delete", "custom_step"),
    "Runner created": ("resource", "create", "runner"),
    "Runner deleted": ("resource", "delete", "runner"),
    "IdP connection created": ("authentication", "create", "idp_connection"),
    "IdP connection updated": ("authentication", "update", "idp_connection"),
}

#: Torq's ``actor_type`` -> unified actor type (Slack: a person acting through Slack).
ACTOR_TYPES = {"web_app": "user", "slack": "user", "api_key": "api_key"}


def unified_fields(entry: Record, _context: Context) -> dict[str, t.Any]:
    """A Torq entry's unified fields; the workspace is the organization."""
    return {
        "organization_id": entry.get("account_id"),
        "organization_name": entry.get("account_name"),
        "event_id": entry.get("id"),
        "occurred_at": entry.get("timestamp"),
        # For an API key, the email of the user who created it (Torq's docs).
        "actor_email": entry.get("email"),
        "actor_name": entry.get("actor_name"),
        "actor_type": ACTOR_TYPES.get(str(entry.get("actor_type")), "unknown"),
        "target_id": entry.get("resource_id"),
        "target_name": entry.get("resource_name"),
        "source_ip": entry.get("ip"),
        "user_agent": entry.get("user_agent"),
    }


UNIFIED = UnifiedMapping(
    event_types=EVENT_TYPES, action=lambda entry: entry.get("action"), fields=unified_fields
)


PROVIDER = Provider(
    stream_class=TorqAuditLogStream,
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
            TorqAuditLogStream,
            "Seconds re-read before the bookmark on every run; Torq entries can appear "
            "up to 5 minutes late.",
        ),
    ),
)
