"""Example system log: the provider, tap side (the whole of what the tap needs to know).

API: ``GET {base}/api/v1/logs?since=<RFC 3339>&sortOrder=ASCENDING&limit=1000``, auth
``Authorization: SSWS <token>``. A page is a JSON array, oldest first; the next page is the
full URL in ``Link: <...>; rel="next"``; the last page is empty and links to itself (where to
poll later). A 429 says when to come back in ``X-Rate-Limit-Reset`` (epoch seconds).
"""

from __future__ import annotations

import typing as t
from functools import cached_property
from pathlib import Path

from singer_sdk import typing as th
from singer_sdk.authenticators import APIKeyAuthenticator
from singer_sdk.pagination import BaseAPIPaginator

from tap_auditlogs.core.instants import format_instant
from tap_auditlogs.core.redaction import Redactor
from tap_auditlogs.engine.source import AuditLogSource
from tap_auditlogs.engine.strategies import Ascending
from tap_auditlogs.output.ocsf import ACCOUNT, AUTHENTICATION, ENTITY
from tap_auditlogs.output.unified import UnifiedMapping, as_object
from tap_auditlogs.providers import Provider, base_url_setting, lookback_setting

if t.TYPE_CHECKING:
    import requests

    from tap_auditlogs.core.types import Context, Record


class LinkHeaderPaginator(BaseAPIPaginator["str | None"]):
    """Follows ``Link: <url>; rel="next"`` until a page is empty (it links to itself)."""

    def has_more(self, response: requests.Response) -> bool:
        """An empty page is the last, whatever it links to."""
        return bool(response.json())

    def get_next(self, response: requests.Response) -> str | None:
        """The full URL of the next page."""
        return response.links.get("next", {}).get("url")


class ExampleLog(AuditLogSource):
    """Events of the Example organization the token belongs to (one log, no partitions)."""

    name = "example_audit_log"
    provider = "example"
    provider_label = "Example"
    path = "/api/v1/logs"
    primary_keys = ("uuid",)
    replication_key = "published"
    partition_field = ""
    default_base_url = "https://example.invalid"
    credentials_hint = "Check example.api_token"
    schema_directory = Path(__file__).parent
    strategy = Ascending()
    rate_limit_reset_headers = ("X-Rate-Limit-Reset",)  # a 429 says when, in epoch seconds
    probe_query: t.ClassVar[dict[str, t.Any]] = {"limit": 1}

    @cached_property
    def authenticator(self) -> APIKeyAuthenticator:
        """``Authorization: SSWS <token>``."""
        token = str(self.settings["api_token"])
        Redactor.register(token)
        return APIKeyAuthenticator(key="Authorization", value=f"SSWS {token}")

    def request_params(self, context: Context, lower: int | None, upper: int | None) -> dict:
        """Oldest first, largest pages, from ``lower`` (``since`` is inclusive)."""
        params: dict[str, t.Any] = {"sortOrder": "ASCENDING", "limit": 1000}
        if lower is not None:
            params["since"] = format_instant(lower, digits=3)
        return params

    def page_request(self, url: str, params: dict, token: t.Any) -> tuple[str, dict]:
        """Later pages: the full URL of the ``Link`` header, as it is."""
        return (url, params) if token is None else (str(token), {})

    def get_new_paginator(self, start_value: t.Any = None) -> LinkHeaderPaginator:
        """From the first page (no page is resumed: the bookmark is)."""
        return LinkHeaderPaginator(start_value)

    def parse_page(self, payload: t.Any) -> tuple[list[Record], int | None]:
        """The array of events; no total."""
        if not isinstance(payload, list):
            raise TypeError("a page is a JSON array")
        return payload, None


def unified_fields(event: Record, _context: Context) -> dict[str, t.Any]:
    """An event's unified fields (``audit_events``)."""
    actor = as_object(event.get("actor"))
    return {
        "event_id": event.get("uuid"),
        "occurred_at": event.get("published"),
        "actor_id": actor.get("id"),
        "actor_email": actor.get("alternateId"),
        "actor_name": actor.get("displayName"),
        "actor_type": "user" if actor.get("type") == "User" else None,
        "source_ip": as_object(event.get("client")).get("ipAddress"),
    }


UNIFIED = UnifiedMapping(
    event_types={
        "user.session.start": ("authentication", "login", "session", AUTHENTICATION),
        "user.session.end": ("authentication", "logout", "session", AUTHENTICATION),
        "user.account.update_password": ("credential", "update", "user", ACCOUNT),
        "group.user_membership.add": ("membership", "create", "group", ENTITY),
        "policy.lifecycle.update": ("configuration", "update", "policy", ENTITY),
    },
    action=lambda event: event.get("eventType"),
    fields=unified_fields,
)

PROVIDER = Provider(
    source_class=ExampleLog,
    required=("api_token",),
    description="Example system log (a provider that lives only in the tests).",
    unified=UNIFIED,
    settings=(
        th.Property("api_token", th.StringType, secret=True, description="An API token."),
        base_url_setting(ExampleLog, "Example API"),
        lookback_setting(ExampleLog),
    ),
)
