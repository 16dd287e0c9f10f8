"""Torq's audit log as the engine reads it: regions, the source class and its paginator."""

from __future__ import annotations

import dataclasses
import typing as t
from functools import cached_property

import requests
from singer_sdk.pagination import BaseAPIPaginator

from tap_auditlogs.core.instants import format_instant
from tap_auditlogs.core.redaction import Redactor
from tap_auditlogs.engine.declaration import LOWER_BOUND_MARGIN_NS
from tap_auditlogs.engine.source import AuditLogSource
from tap_auditlogs.engine.strategies import Ascending
from tap_auditlogs.http.client import REDIRECT_STATUSES
from tap_auditlogs.http.responses import list_field
from tap_auditlogs.providers.torq.auth import (
    CREDENTIALS_HINT,
    TOKEN_TIMEOUT_SECONDS,
    TorqAuthenticator,
)

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
            backoff_base=float(self.config["backoff_base_seconds"]),
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
