"""Socket (socket.dev) organization audit log.

API: ``GET {base}/orgs/{org_slug}/audit-log``, base ``https://api.socket.dev/v0``.
Documented at https://docs.socket.dev/reference/getauditlogevents (the endpoint: query,
response, errors), https://docs.socket.dev/reference/rate-limits and
https://docs.socket.dev/reference/quota (limits), https://docs.socket.dev/reference/authentication.

* Auth: an organization API token with scope ``audit-log:list`` (Enterprise plan), sent
  as ``Authorization: Bearer <token>``.
* Query: ``per_page`` 1..100 (default 30: we always send 100), ``page`` a string token
  (``"1"`` first), ``type`` one PascalCase event type (responses carry lowerCamel).
  ``from`` (unix seconds) is documented as "filter results prior to this date"; whether
  that is an upper or a lower bound is uncertain, so the tap never sends it.
* Response: ``{"results": [...], "nextPage": "2"}``; the end is ``nextPage`` null, ``""``,
  ``"0"``, ``0`` or missing. An empty ``results`` that still names a next page is followed
  (a server that filters after paging); a long run of them ends the log with a WARNING.
* Order: newest first (observed, undocumented), so the tap reads with the newest-first
  strategy and checks every page; an unordered page makes it read to the end.
* Organizations: ``GET {base}/organizations`` returns a map keyed by id; when
  ``socket.org_slugs`` is not set, every organization the token sees is read.
* Limits: 600 requests/min and an hourly quota per token; over it, 429 with a
  ``Retry-After`` that can reach an hour (then the tap stops cleanly, state saved).
"""

from __future__ import annotations

from singer_sdk import typing as th

from tap_auditlogs.providers import Provider, base_url_setting, lookback_setting
from tap_auditlogs.providers.socketdev.events import UNIFIED
from tap_auditlogs.providers.socketdev.log import SocketAuditLog

PROVIDER = Provider(
    source_class=SocketAuditLog,
    required=("api_token",),
    description="Socket (socket.dev) organization audit log.",
    unified=UNIFIED,
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
                "Only these event types, e.g. CreateApiToken or SSOLoginCompleted: values "
                "of the type enum of Socket's Get Audit Log Events "
                "(https://docs.socket.dev/reference/getauditlogevents), in any case "
                "(createApiToken works too). An unknown type is refused at start-up. "
                "Default: all types."
            ),
        ),
        base_url_setting(SocketAuditLog, "Socket API"),
        lookback_setting(SocketAuditLog),
    ),
)
