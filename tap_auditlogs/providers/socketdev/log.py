"""Socket's audit log as the engine reads it: the source class and its paginator."""

from __future__ import annotations

import typing as t
from functools import cached_property

from singer_sdk.authenticators import BearerTokenAuthenticator
from singer_sdk.pagination import BaseAPIPaginator

from tap_auditlogs.core.redaction import Redactor
from tap_auditlogs.engine.newest_first import NewestFirst
from tap_auditlogs.engine.source import AuditLogSource
from tap_auditlogs.http.responses import UnexpectedShapeError, list_field, type_name
from tap_auditlogs.providers.socketdev.events import EVENT_TYPES

if t.TYPE_CHECKING:
    import requests

    from tap_auditlogs.core.types import Context, Record

PAGE_SIZE = 100  # documented: per_page 1..100 (https://docs.socket.dev/reference/getauditlogevents)
END_MARKERS = (None, "", "0", 0)


class SocketPageTokenPaginator(BaseAPIPaginator["str | None"]):
    """Follows ``nextPage`` until one of Socket's end markers.

    An empty page that still names a next page is followed: a server that filters after
    paging answers those mid-log (page_loop.py ends a long run of them).
    """

    def has_more(self, response: requests.Response) -> bool:
        """More pages exist while ``nextPage`` is usable."""
        return response.json().get("nextPage") not in END_MARKERS

    def get_next(self, response: requests.Response) -> str | None:
        """The next page token, as a string."""
        return str(response.json()["nextPage"])


class SocketAuditLog(AuditLogSource):
    """Audit-log events of every configured Socket organization (one partition per org)."""

    name = "socket_audit_log"
    provider = "socket"
    provider_label = "Socket"
    path = "/orgs/{org_slug}/audit-log"
    primary_keys = ("event_id",)
    replication_key = "created_at"
    partition_field = "org_slug"
    organizations_setting = "org_slugs"
    organizations_listing = "GET /organizations"
    no_organization_hint = ", or use an organization token"
    who_lists = "the token sees"
    event_type_field = "event_type"
    #: The ``type`` filter takes exactly these spellings (``SSOLoginCompleted``, not
    #: ``SsoLoginCompleted``); a configured name is matched ignoring case (events.py).
    event_type_values = tuple(EVENT_TYPES)
    event_type_source = "https://docs.socket.dev/reference/getauditlogevents"
    default_base_url = "https://api.socket.dev/v0"
    homepage = "https://socket.dev"
    # documented: 600 requests per minute (https://docs.socket.dev/reference/rate-limits)
    rate_limit = (600, 60.0)
    credentials_hint = (
        "Check socket.api_token: an organization API token with the scope "
        "audit-log:list (Socket Enterprise plan)"
    )
    strategy = NewestFirst()
    page_size = PAGE_SIZE
    #: No upper bound is sent (``from`` may mean either end): ``end_date`` is applied on the
    #: client, and the newest-first pass reads past newer events without stopping there.
    upper_bound_param = None
    empty_page_may_end = True  # documented: an empty ``results`` ends the log
    probe_query: t.ClassVar[dict[str, t.Any]] = {"per_page": 1}  # the connection test

    @cached_property
    def authenticator(self) -> BearerTokenAuthenticator:
        """Bearer token authentication."""
        token = str(self.settings["api_token"])
        Redactor.register(token)
        return BearerTokenAuthenticator(token=token)

    def list_organizations(self) -> dict[str, str | None]:
        """``GET /organizations``: every organization the token sees, by slug."""
        response = self.request_json(
            None, f"{self.url_base}/organizations", {}, parse=_organizations
        )
        organizations = response.page
        return {
            str(org["slug"]): org.get("name")
            for org in sorted(organizations.values(), key=lambda org: str(org.get("slug")))
            if org.get("slug")
        }

    def request_params(self, context: Context, lower: int | None, upper: int | None) -> dict:
        """Largest pages, the type filter if any; never ``from`` (its meaning is uncertain)."""
        params: dict[str, t.Any] = {"per_page": PAGE_SIZE}
        if context and context.get("event_type"):
            params["type"] = context["event_type"]
        return params

    def page_params(self, token: t.Any) -> dict:
        """The page token goes in ``page``."""
        return {"page": token}

    def get_new_paginator(self, start_value: t.Any = None) -> SocketPageTokenPaginator:
        """Paginator from the first page, or from a saved token."""
        return SocketPageTokenPaginator(start_value)

    def parse_page(self, payload: t.Any) -> tuple[list[Record], int | None]:
        """The ``results`` list; Socket gives no total."""
        return list_field(payload, "results"), None

    def error_hint(self, status: int) -> str:
        """Socket-specific advice for error statuses."""
        if status == 404:
            return "Check socket.org_slugs: the organization slug is unknown to Socket."
        if status == 403:
            return (
                "The token lacks the scope audit-log:list, the organization is not on the "
                "Enterprise plan, or the token's quota is too small."
            )
        return super().error_hint(status)


def _organizations(payload: t.Any) -> dict[str, dict]:
    """``organizations`` of ``GET /organizations``: a map of id -> organization objects."""
    if not isinstance(payload, dict):
        raise UnexpectedShapeError("the body", f"is {type_name(payload)}, not an object")
    organizations = payload.get("organizations") or {}
    if not isinstance(organizations, dict) or not all(
        isinstance(org, dict) for org in organizations.values()
    ):
        raise UnexpectedShapeError("organizations", "is not a map of organization objects")
    return organizations
