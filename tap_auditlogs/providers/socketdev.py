"""Socket (socket.dev) organization audit log.

API: ``GET {base}/orgs/{org_slug}/audit-log``, base ``https://api.socket.dev/v0``.

* Auth: an organization API token with scope ``audit-log:list`` (Enterprise plan), sent
  as ``Authorization: Bearer <token>``.
* Query: ``per_page`` 1..100 (default 30: we always send 100), ``page`` a string token
  (``"1"`` first), ``type`` one PascalCase event type (responses carry lowerCamel).
  ``from`` (unix seconds) is documented as "filter results prior to this date"; whether
  that is an upper or a lower bound is uncertain, so the tap never sends it.
* Response: ``{"results": [...], "nextPage": "2"}``; the end is ``nextPage`` null, ``""``,
  ``"0"``, ``0`` or missing, or an empty ``results``.
* Order: newest first (observed, undocumented), so the tap reads with the newest-first
  strategy and checks every page; an unordered page makes it read to the end.
* Organizations: ``GET {base}/organizations`` returns a map keyed by id; when
  ``socket.org_slugs`` is not set, every organization the token sees is read.
* Limits: 600 requests/min and an hourly quota per token; over it, 429 with a
  ``Retry-After`` that can reach an hour (then the tap stops cleanly, state saved).
"""

from __future__ import annotations

import typing as t
from functools import cached_property

from singer_sdk import SchemaDirectory, StreamSchema
from singer_sdk import typing as th
from singer_sdk.authenticators import BearerTokenAuthenticator
from singer_sdk.pagination import BaseAPIPaginator

from tap_auditlogs import schemas
from tap_auditlogs.client import AuditLogStream, Redactor, non_empty
from tap_auditlogs.errors import ProviderError
from tap_auditlogs.providers import Provider
from tap_auditlogs.strategies import NewestFirst

if t.TYPE_CHECKING:
    import requests

    from tap_auditlogs.strategies import Context, Record

PAGE_SIZE = 100
END_MARKERS = (None, "", "0", 0)


class SocketPageTokenPaginator(BaseAPIPaginator["str | None"]):
    """Follows ``nextPage`` until one of Socket's end markers or an empty page."""

    def has_more(self, response: requests.Response) -> bool:
        """More pages exist while the page had results and a usable ``nextPage``."""
        payload = response.auditlogs_payload  # type: ignore[attr-defined]
        return bool(payload.get("results")) and payload.get("nextPage") not in END_MARKERS

    def get_next(self, response: requests.Response) -> str | None:
        """The next page token, as a string."""
        return str(response.auditlogs_payload["nextPage"])  # type: ignore[attr-defined]


class SocketAuditLogStream(AuditLogStream):
    """Audit-log events of every configured Socket organization (one partition per org)."""

    name = "socket_audit_log"
    provider = "socket"
    provider_label = "Socket"
    path = "/orgs/{org_slug}/audit-log"
    primary_keys = ("event_id",)
    replication_key = "created_at"
    partition_field = "org_slug"
    default_base_url = "https://api.socket.dev/v0"
    default_lookback_seconds = 300
    credentials_hint = (
        "Check socket.api_token: an organization API token with the scope "
        "audit-log:list (Socket Enterprise plan)"
    )
    schema = StreamSchema(SchemaDirectory(schemas))
    strategy = NewestFirst()

    @cached_property
    def authenticator(self) -> BearerTokenAuthenticator:
        """Bearer token authentication."""
        token = str(self.settings["api_token"])
        Redactor.register(token)
        return BearerTokenAuthenticator(token=token)

    @cached_property
    def partitions(self) -> list[dict]:
        """One partition per organization (and per event type, when types are filtered)."""
        slugs = non_empty(self.settings.get("org_slugs"))
        if not slugs:
            try:
                slugs = self._discover_org_slugs()
            except ProviderError as error:
                self._report(error, halt=True)
                return []
        types = [_pascal_case(name) for name in non_empty(self.settings.get("event_types"))]
        if not types:
            return [{"org_slug": slug} for slug in slugs]
        return [{"org_slug": slug, "event_type": kind} for slug in slugs for kind in types]

    def _discover_org_slugs(self) -> list[str]:
        response = self.request_json(None, f"{self.url_base}/organizations", {})
        organizations = response.auditlogs_payload.get("organizations") or {}  # type: ignore[attr-defined]
        slugs = sorted(str(org["slug"]) for org in organizations.values() if org.get("slug"))
        if not slugs:
            raise ProviderError(
                "Socket: the token sees no organization (GET /organizations returned none). "
                "Set socket.org_slugs, or use an organization token.",
                whole_provider=True,
            )
        self.logger.info("Socket: the token sees %d organizations: %s", len(slugs), slugs)
        return slugs

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
        results = payload["results"]
        if not isinstance(results, list):
            raise TypeError("results is not a list")
        return results, None

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


def _pascal_case(name: str) -> str:
    """``createApiToken`` (as responses spell it) -> ``CreateApiToken`` (as the filter wants)."""
    return name[:1].upper() + name[1:]


PROVIDER = Provider(
    key="socket",
    label="Socket",
    stream_class=SocketAuditLogStream,
    required=("api_token",),
    description="Socket (socket.dev) organization audit log.",
    settings=(
        th.Property(
            "api_token",
            th.StringType,
            secret=True,
            description="Socket organization API token with the scope audit-log:list.",
        ),
        th.Property(
            "org_slugs",
            th.ArrayType(th.StringType),
            description="Organization slugs to read. Default: every organization the token sees.",
        ),
        th.Property(
            "event_types",
            th.ArrayType(th.StringType),
            description=(
                "Only these event types, e.g. CreateApiToken (PascalCase or lowerCamel). "
                "Default: all types."
            ),
        ),
        th.Property(
            "base_url",
            th.URIType,
            default=SocketAuditLogStream.default_base_url,
            description="Socket API base URL.",
        ),
        th.Property(
            "lookback_seconds",
            th.IntegerType,
            default=SocketAuditLogStream.default_lookback_seconds,
            description="Seconds re-read before the bookmark on every run, for late events.",
        ),
    ),
)
