"""Nirvana Labs audit log of the API key's organization.

API: ``GET {base}/v1/audit_logs``, base ``https://api.nirvanalabs.io``. Documented at
https://docs.nirvanalabs.io/api/resources/audit_logs/methods/list (query, response); the
August-2026 filters in the Go SDK (github.com/nirvana-labs/nirvana-go, audit_logs/auditlog.go).

* Auth: an API key, sent as ``Authorization: Bearer <key>`` (the official SDKs read it from
  ``NIRVANA_LABS_API_KEY``). Keys carry permissions per resource type; reading the audit
  log needs ``read`` on ``audit_log``.
* Organization: the key's own; the endpoint takes none and items name none (before
  March 2026 the path was ``/v1/organizations/{id}/audit_logs``).
* Query: ``limit`` 10..100 (default 10: we always send 100), ``cursor`` from the previous
  page. The August-2026 SDKs add ``created_at_min``/``created_at_max`` (inclusive,
  RFC 3339) and ``sort`` (``created_at:asc``...); whether the live API honours them is
  not known, so the tap sends them and checks every page (below).
* Response: ``{"items": [...], "pagination": {"next_cursor", "previous_cursor",
  "total_count"}}``. The next page is the same query with ``cursor=<next_cursor>`` (a
  cursor is only valid for the same filters and sort); the end is ``next_cursor`` null,
  ``""`` or missing (an empty ``items`` with a cursor is followed). ``total_count`` feeds
  the progress line and is reconciled: a read that ends with fewer distinct items is read
  again (strategies.py).
* Items: ``id``, ``action`` (``vm.created``), ``actor {id, name|null, type: user|api_key}``,
  ``client_ip``, ``created_at``, ``method``, ``path``, ``status_code``, ``user_agent``,
  ``target {id, type}`` that may be null or absent.
* Order: undocumented. The tap asks for ``sort=created_at:asc`` from ``created_at_min``
  and reads with ``VerifiedAscending``: if the first page is oldest first it reads
  ``Ascending`` (bookmark per page); newest first, ``NewestFirst`` (early stop); no order,
  the whole log with a client-side filter. It logs the path once per run ("path: ...").
* Errors: ``{"message": ...}`` (per the SDKs); 400, 401, 403, 404, 422, 429, 5xx.
"""

from __future__ import annotations

import typing as t
from functools import cached_property

from singer_sdk import typing as th
from singer_sdk.authenticators import BearerTokenAuthenticator
from singer_sdk.pagination import BaseAPIPaginator

from tap_auditlogs.core.instants import NS_PER_SECOND, format_instant
from tap_auditlogs.core.redaction import Redactor
from tap_auditlogs.engine.declaration import LOWER_BOUND_MARGIN_NS
from tap_auditlogs.engine.source import AuditLogSource
from tap_auditlogs.engine.verified import VerifiedAscending
from tap_auditlogs.http.responses import UnexpectedShapeError, list_field, type_name
from tap_auditlogs.output.ocsf import ACCOUNT, ENTITY
from tap_auditlogs.output.unified import UnifiedMapping, as_object
from tap_auditlogs.providers import Provider, base_url_setting, lookback_setting

if t.TYPE_CHECKING:
    import requests

    from tap_auditlogs.core.types import Context, Record
    from tap_auditlogs.output.unified import EventType

PAGE_SIZE = 100  # documented: limit 10..100 (https://docs.nirvanalabs.io/api/resources/audit_logs/methods/list)


class NirvanaCursorPaginator(BaseAPIPaginator["str | None"]):
    """Follows ``pagination.next_cursor`` until it is null, ``""`` or missing (an empty page
    that still names a cursor is followed: a server that filters after paging)."""

    def has_more(self, response: requests.Response) -> bool:
        """More pages exist while ``next_cursor`` is usable."""
        cursor = (response.json().get("pagination") or {}).get("next_cursor")
        return cursor not in (None, "")

    def get_next(self, response: requests.Response) -> str | None:
        """The next cursor."""
        return str(response.json()["pagination"]["next_cursor"])


class NirvanaAuditLog(AuditLogSource):
    """Audit-log entries of the API key's Nirvana Labs organization."""

    name = "nirvana_audit_log"
    provider = "nirvana"
    provider_label = "Nirvana Labs"
    path = "/v1/audit_logs"
    primary_keys = ("id",)
    replication_key = "created_at"
    #: No partitions: one organization per key, so the stream is one unpartitioned log. A
    #: partition would have to be named after the organization (an extra call to an endpoint
    #: whose permissions we cannot rely on) or after the key (a secret, which must stay out
    #: of the state). So the state is the stream's own, readable as it is:
    #: ``bookmarks.nirvana_audit_log = {replication_key, replication_key_value, recent_ids[,
    #: pending_pass]}``. Switching a config to another organization's key means starting
    #: from a fresh state.
    partition_field = ""
    default_base_url = "https://api.nirvanalabs.io"
    homepage = "https://nirvanalabs.io"
    credentials_hint = (
        "Check nirvana.api_key: a Nirvana Labs API key with the read permission on audit "
        "logs (resource type audit_log)"
    )
    # created_at_min goes out in whole seconds (rounded down, after the margin): items up to
    # 1 s older than the bound asked for are expected and do not prove the filter ignored.
    strategy = VerifiedAscending(bound_slack_ns=NS_PER_SECOND)
    probe_query: t.ClassVar[dict[str, t.Any]] = {"limit": 10}  # the connection test (min 10)
    page_size = PAGE_SIZE
    empty_page_may_end = True  # documented: an empty ``items`` ends the log
    #: ``created_at_max`` is sent only where the pages proved the filters honoured (the
    #: ranges of a proven ascending read, verified.py); ``end_date`` is applied on the
    #: client everywhere.
    upper_bound_param = "created_at_max"

    @cached_property
    def authenticator(self) -> BearerTokenAuthenticator:
        """Bearer API key."""
        key = str(self.settings["api_key"])
        Redactor.register(key)
        return BearerTokenAuthenticator(token=key)

    def request_params(self, context: Context, lower: int | None, upper: int | None) -> dict:
        """Largest pages, oldest first, from a second before ``lower``, rounded down to the
        second (a server that reads the bound as exclusive still returns the event at it)."""
        params: dict[str, t.Any] = {"limit": PAGE_SIZE, "sort": "created_at:asc"}
        if lower is not None:
            first = lower - LOWER_BOUND_MARGIN_NS
            params["created_at_min"] = format_instant(first - first % NS_PER_SECOND, digits=0)
        if upper is not None:  # a proven range's end or end_date; checked on the client too
            params["created_at_max"] = format_instant(upper - upper % -NS_PER_SECOND, digits=0)
        return params

    def page_params(self, token: t.Any) -> dict:
        """The cursor goes in ``cursor``; the rest of the query stays the same."""
        return {"cursor": token}

    def get_new_paginator(self, start_value: t.Any = None) -> NirvanaCursorPaginator:
        """Paginator from the first page, or from a saved cursor."""
        return NirvanaCursorPaginator(start_value)

    def parse_page(self, payload: t.Any) -> tuple[list[Record], int | None]:
        """The ``items`` list and ``pagination.total_count`` when it is there.

        Entries without an id or ``created_at`` are kept (the strategies cope, the stream
        gives them an id); ``pagination`` may be missing or null (documented: no next
        cursor, the end).
        """
        items = list_field(payload, "items")
        pagination = payload.get("pagination")
        if pagination is not None and not isinstance(pagination, dict):
            raise UnexpectedShapeError("pagination", f"is {type_name(pagination)}, not an object")
        total = (pagination or {}).get("total_count")
        return items, total if isinstance(total, int) and not isinstance(total, bool) else None

    def error_hint(self, status: int) -> str:
        """Nirvana-specific advice for error statuses."""
        hints = {
            400: "The API rejected the query (limit, cursor, created_at_min or sort).",
            403: "The API key lacks the read permission on audit logs; check nirvana.api_key.",
            404: "Check nirvana.base_url (default https://api.nirvanalabs.io).",
            422: "The API rejected the query (limit, cursor, created_at_min or sort).",
        }
        return hints.get(status) or super().error_hint(status)


# ------------------------------------------------------------------------- audit_events
# Nirvana documents its actions as ``<resource>.<past verb>`` (the docs' example:
# ``vm.created``) but publishes no list. So: the documented actions, exactly, and for the
# rest the same grammar read from two tables (resource -> category, verb -> operation);
# a part the tables do not know is ``other``. Taxonomy in unified.py.
EVENT_TYPES: dict[str, EventType] = {
    "vm.created": ("resource", "create", "vm", ENTITY),
}
#: Resource types (the API's resources and ``target.type``) -> category and OCSF class.
RESOURCE_CATEGORIES = {
    "vm": ("resource", ENTITY),
    "volume": ("resource", ENTITY),
    "vpc": ("resource", ENTITY),
    "firewall_rule": ("resource", ENTITY),
    "project": ("resource", ENTITY),
    "api_key": ("credential", ACCOUNT),
    "organization": ("configuration", ENTITY),
    "user": ("membership", ACCOUNT),
    "member": ("membership", ACCOUNT),
    "invitation": ("membership", ACCOUNT),
}
#: Past-tense verbs -> operation.
VERB_OPERATIONS = {
    "created": "create",
    "updated": "update",
    "deleted": "delete",
    "enabled": "enable",
    "disabled": "disable",
    "started": "execute",
    "stopped": "execute",
    "restarted": "execute",
}


def classify_action(action: str) -> EventType | None:
    """``volume.deleted`` -> (resource, delete, volume, ENTITY); None when not
    ``resource.verb``."""
    resource, dot, verb = action.strip().lower().rpartition(".")
    if not dot or not resource or not verb:
        return None
    category, ocsf = RESOURCE_CATEGORIES.get(resource, ("other", ENTITY))
    return category, VERB_OPERATIONS.get(verb, "other"), resource, ocsf


def unified_fields(entry: Record, _context: Context) -> dict[str, t.Any]:
    """A Nirvana entry's unified fields. Entries name no organization (the key's own)."""
    actor, target = as_object(entry.get("actor")), as_object(entry.get("target"))
    return {
        "event_id": entry.get("id"),
        "occurred_at": entry.get("created_at"),
        "actor_id": actor.get("id"),
        "actor_name": actor.get("name"),
        "actor_type": actor.get("type") if actor.get("type") in ("user", "api_key") else None,
        "target_id": target.get("id"),
        "target_type": target.get("type"),
        "source_ip": entry.get("client_ip"),
        "user_agent": entry.get("user_agent"),
        "status_code": entry.get("status_code"),
    }


UNIFIED = UnifiedMapping(
    event_types=EVENT_TYPES,
    action=lambda entry: entry.get("action"),
    fields=unified_fields,
    fallback=classify_action,
    derived=tuple(
        f"{resource}.{verb}" for resource in RESOURCE_CATEGORIES for verb in VERB_OPERATIONS
    ),
)


PROVIDER = Provider(
    source_class=NirvanaAuditLog,
    required=("api_key",),
    description="Nirvana Labs audit log of the API key's organization.",
    unified=UNIFIED,
    settings=(
        th.Property(
            "api_key",
            th.StringType,
            secret=True,
            description="Nirvana Labs API key with the read permission on audit logs.",
        ),
        base_url_setting(NirvanaAuditLog, "Nirvana Labs API"),
        lookback_setting(NirvanaAuditLog),
    ),
)
