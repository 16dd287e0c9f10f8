"""Example Events: the provider, tap side (a POST API with its cursor in the JSON body).

API: ``POST {base}/api/v1/auditevents``, auth ``Authorization: Bearer <token>``. The first
request's body is ``{"limit": 1000, "start_time": "<RFC 3339>"}``; an answer is ``{"items":
[...], "cursor": "...", "has_more": true}``, items oldest first; every later request's body
is ``{"cursor": "..."}`` alone, until ``has_more`` is false.
"""

from __future__ import annotations

import typing as t
from functools import cached_property
from pathlib import Path

from singer_sdk import typing as th
from singer_sdk.authenticators import BearerTokenAuthenticator
from singer_sdk.pagination import BaseAPIPaginator

from tap_auditlogs.core.instants import format_instant
from tap_auditlogs.core.redaction import Redactor
from tap_auditlogs.core.types import PageRequest
from tap_auditlogs.engine.source import AuditLogSource
from tap_auditlogs.engine.strategies import Ascending
from tap_auditlogs.http.responses import UnexpectedShapeError, list_field
from tap_auditlogs.output.ocsf import AUTHENTICATION, ENTITY
from tap_auditlogs.output.unified import UnifiedMapping, as_object
from tap_auditlogs.providers import Provider, base_url_setting, lookback_setting

if t.TYPE_CHECKING:
    import requests

    from tap_auditlogs.core.types import Context, Record


class BodyCursorPaginator(BaseAPIPaginator["str | None"]):
    """The ``cursor`` of each answer, while it says ``has_more``."""

    def has_more(self, response: requests.Response) -> bool:
        """The answer says whether more follows."""
        return response.json()["has_more"] is True

    def get_next(self, response: requests.Response) -> str | None:
        """The cursor of the next page."""
        return response.json()["cursor"]


class ExampleEvents(AuditLogSource):
    """Audit events of the Example Events account the token belongs to (one log)."""

    name = "example_events"
    provider = "exampleevents"
    provider_label = "Example Events"
    path = "/api/v1/auditevents"
    http_method = "POST"
    primary_keys = ("uuid",)
    replication_key = "timestamp"
    partition_field = ""
    default_base_url = "https://events.example.invalid"
    credentials_hint = "Check exampleevents.api_token"
    schema_directory = Path(__file__).parent
    strategy = Ascending()
    page_size = 1000
    probe_query: t.ClassVar[dict[str, t.Any]] = {"limit": 1}

    @cached_property
    def authenticator(self) -> BearerTokenAuthenticator:
        """``Authorization: Bearer <token>``."""
        token = str(self.settings["api_token"])
        Redactor.register(token)
        return BearerTokenAuthenticator(token=token)

    def request_params(self, context: Context, lower: int | None, upper: int | None) -> dict:
        """A new cursor's fields: the largest page, from ``lower`` (inclusive)."""
        params: dict[str, t.Any] = {"limit": self.page_size}
        if lower is not None:
            params["start_time"] = format_instant(lower, digits=3)
        return params

    def page_request(self, url: str, params: dict, token: t.Any) -> PageRequest:
        """The first page: the pass's fields as the body; later pages: the cursor alone."""
        return PageRequest(url, {}, params if token is None else {"cursor": token})

    def get_new_paginator(self, start_value: t.Any = None) -> BodyCursorPaginator:
        """From the first page (no page is resumed: the bookmark is)."""
        return BodyCursorPaginator(start_value)

    def parse_page(self, payload: t.Any) -> tuple[list[Record], int | None]:
        """The ``items``; ``cursor`` and ``has_more`` must be there; no total."""
        items = list_field(payload, "items")
        for field in ("cursor", "has_more"):
            if field not in payload:
                raise UnexpectedShapeError(field)
        return items, None


def unified_fields(event: Record, _context: Context) -> dict[str, t.Any]:
    """An event's unified fields (``audit_events``)."""
    actor = as_object(event.get("actor_details"))
    return {
        "event_id": event.get("uuid"),
        "occurred_at": event.get("timestamp"),
        "actor_id": event.get("actor_uuid"),
        "actor_email": actor.get("email"),
        "actor_name": actor.get("name"),
        "actor_type": "user",
        "source_ip": as_object(event.get("session")).get("ip"),
    }


UNIFIED = UnifiedMapping(
    event_types={
        "signin": ("authentication", "login", "session", AUTHENTICATION),
        "signout": ("authentication", "logout", "session", AUTHENTICATION),
        "update": ("configuration", "update", "user", ENTITY),
        "grant": ("authorization", "create", "user", ENTITY),
        "revoke": ("authorization", "delete", "user", ENTITY),
    },
    action=lambda event: event.get("action"),
    fields=unified_fields,
)

PROVIDER = Provider(
    source_class=ExampleEvents,
    required=("api_token",),
    description="Example Events audit log (a POST provider that lives only in the tests).",
    unified=UNIFIED,
    settings=(
        th.Property("api_token", th.StringType, secret=True, description="A bearer token."),
        base_url_setting(ExampleEvents, "Example Events API"),
        lookback_setting(ExampleEvents),
    ),
)
