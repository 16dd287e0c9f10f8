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

from singer_sdk import typing as th

from tap_auditlogs.providers import Provider, base_url_setting, lookback_setting
from tap_auditlogs.providers.nirvana.events import UNIFIED
from tap_auditlogs.providers.nirvana.log import NirvanaAuditLog

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
