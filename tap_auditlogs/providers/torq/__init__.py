"""Torq workspace audit log.

API: ``GET {base}/v1alpha/audit_logs``, base ``https://api.torq.io/public``
(EU: ``https://api.eu.torq.io/public``). Documented at
https://developers.torq.io/apidocs/list-audit-logs (query, response),
https://developers.torq.io/apidocs/resources-audit-logs (events, Owner key, 5 minutes late),
https://developers.torq.io/apidocs/authentication (token), https://developers.torq.io/apidocs/errors
(302, 401, 403...) and https://developers.torq.io/apidocs/overview (domains, rate limit).

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
  500), ``page_token``. ``start_time`` means "created after" (exclusive); the tap asks
  from one second before the first instant it wants (``LOWER_BOUND_MARGIN_NS``: a server
  that rounds the bound to microseconds still returns the event at it). Without
  ``start_time`` the API returns only the last 24 hours.
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

from singer_sdk import typing as th

from tap_auditlogs.providers import Provider, lookback_setting
from tap_auditlogs.providers.torq.events import UNIFIED
from tap_auditlogs.providers.torq.log import DEFAULT_REGION, REGIONS, TorqAuditLog

PROVIDER = Provider(
    source_class=TorqAuditLog,
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
            TorqAuditLog,
            "Seconds re-read before the bookmark on every run; Torq entries can appear "
            "up to 5 minutes late.",
        ),
    ),
)
