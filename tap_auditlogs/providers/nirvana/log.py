"""Nirvana Labs' audit log as the engine reads it: the source class and its paginator."""

from __future__ import annotations

import typing as t
from functools import cached_property

from singer_sdk.authenticators import BearerTokenAuthenticator
from singer_sdk.pagination import BaseAPIPaginator

from tap_auditlogs.core.instants import NS_PER_SECOND, format_instant
from tap_auditlogs.core.redaction import Redactor
from tap_auditlogs.engine.declaration import LOWER_BOUND_MARGIN_NS
from tap_auditlogs.engine.source import AuditLogSource
from tap_auditlogs.engine.verified import VerifiedAscending
from tap_auditlogs.http.responses import UnexpectedShapeError, list_field, type_name

if t.TYPE_CHECKING:
    import requests

    from tap_auditlogs.core.types import Context, Record

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
