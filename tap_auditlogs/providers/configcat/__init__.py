"""ConfigCat organization audit log.

API: ``GET {base}/v2/organizations/{organizationId}/auditlogs``, base ``https://api.configcat.com``.
Documented at https://configcat.com/docs/api/reference/get-organization-auditlogs-v-2/ (v2),
https://configcat.com/docs/api/reference/get-organization-auditlogs (v1: the 7-day default and
the 30-day span), https://configcat.com/docs/api/reference/configcat-public-management-api/
(auth, rate-limit headers), https://configcat.com/docs/news/ (v1 redirected to v2 since
2026-06-01), https://configcat.com/docs/subscription-plan-limits/ (retention).

* Auth: HTTP Basic with Public API credentials (a username and password created at
  https://app.configcat.com/my-account/public-api-credentials; not an SDK key). One
  credential may see several organizations: ``GET {base}/v1/organizations`` lists them as
  ``[{organizationId, name}]``. When ``configcat.organization_ids`` is not set, every
  organization is read.
* Query (camelCase): ``fromUtcDateTime`` and ``toUtcDateTime`` (at most 30 days apart;
  without them the API answers the last 7 days), ``pageNumber`` from 1, ``pageSize``
  1..100 (we send 100), and the filters ``productId``, ``configId``, ``environmentId`` and
  one ``auditLogType`` (so the tap makes one partition per organization and type).
* Response: ``{"data": [...], "paging": {currentPage, totalPages, pageSize, totalCount,
  hasPrevious, hasNext}}``. The end is ``hasNext`` false or the last page by ``totalPages``
  (``hasNext`` may stay true on it); an empty ``data`` with ``hasNext`` is followed. The tap
  also checks that the page served is the page asked for (a page number past the end
  clamped to the last page is the end). ``totalCount`` is reconciled: a window read with
  fewer distinct items is read again in narrower windows (strategies.py).
* Items carry no organization id, so the tap adds ``organizationId`` (part of the key).
  Timestamps have a ``+00:00`` offset and 0 to 7 fractional digits.
* Reading: time windows (``windows.TimeWindows``), oldest first. Inside a window the
  order does not matter (newest first in practice). A finished window is a checkpoint.
  The docs do not say whether the bounds are inclusive, so each window asks from one
  second earlier and the strategy drops what is older.
* v1 (``/v1/organizations/{id}/auditlogs``, a bare array of the whole window) is
  deprecated. Since 2026-06-01 ConfigCat redirects it to v2 "with default pagination".
  With ``api_version: v1`` the tap accepts both shapes and follows the paging of an
  envelope. A bare array of exactly one default page (100 items) may be cut, so that
  window is split in halves until each answer is shorter.
* Limits: answers carry ``X-Rate-Limit-Remaining`` and ``X-Rate-Limit-Reset`` (logged at
  debug level). Over the limit, 429 with ``Retry-After``; a 429 without it is waited out
  until ``X-Rate-Limit-Reset``. Retention: 7 days (Free),
  35 days (Pro/Smart), 2 years (Enterprise).
* Errors: a 400 body is ``{"field": ["message", ...]}``.
"""

from __future__ import annotations

from singer_sdk import typing as th

from tap_auditlogs.providers import Provider, base_url_setting, lookback_setting
from tap_auditlogs.providers.configcat.events import DOCUMENTATION, UNIFIED
from tap_auditlogs.providers.configcat.log import API_VERSIONS, MAX_WINDOW_DAYS, ConfigCatAuditLog

PROVIDER = Provider(
    source_class=ConfigCatAuditLog,
    required=("username", "password"),
    description="ConfigCat organization audit log (Public Management API).",
    unified=UNIFIED,
    settings=(
        th.Property(
            "username",
            th.StringType,
            description="Public API credentials: the username "
            "(https://app.configcat.com/my-account/public-api-credentials).",
        ),
        th.Property(
            "password",
            th.StringType,
            secret=True,
            description="Public API credentials: the password.",
        ),
        th.Property(
            "organization_ids",
            th.ArrayType(th.StringType),
            description="Organization ids to read. Default: every organization the "
            "credentials see (GET /v1/organizations).",
        ),
        th.Property("product_id", th.StringType, description="Only this product's items."),
        th.Property("config_id", th.StringType, description="Only this config's items."),
        th.Property("environment_id", th.StringType, description="Only this environment's items."),
        th.Property(
            "event_types",
            th.ArrayType(th.StringType),
            description="Only these audit-log types, e.g. settingValueChanged: values of "
            f"ConfigCat's AuditLogType enum ({DOCUMENTATION}), in any case; one request "
            "series per type. An unknown type is refused at start-up. Default: all types.",
        ),
        base_url_setting(ConfigCatAuditLog, "ConfigCat Public Management API"),
        th.Property(
            "api_version",
            th.StringType,
            default="v2",
            allowed_values=list(API_VERSIONS),
            description="Audit-log endpoint version: v2 (paged), or the deprecated v1.",
        ),
        lookback_setting(ConfigCatAuditLog),
        th.Property(
            "window_days",
            th.IntegerType(minimum=1, maximum=MAX_WINDOW_DAYS),
            default=MAX_WINDOW_DAYS,
            description="Days per request window (at most 30, the API's limit).",
        ),
    ),
)
