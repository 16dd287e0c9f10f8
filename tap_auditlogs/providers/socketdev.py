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

import typing as t
from functools import cached_property

from singer_sdk import typing as th
from singer_sdk.authenticators import BearerTokenAuthenticator
from singer_sdk.pagination import BaseAPIPaginator

from tap_auditlogs.core.redaction import Redactor
from tap_auditlogs.engine.newest_first import NewestFirst
from tap_auditlogs.engine.source import AuditLogSource
from tap_auditlogs.http.responses import UnexpectedShapeError, list_field, type_name
from tap_auditlogs.output.ocsf import ACCESS, ACCOUNT, AUTHENTICATION, ENTITY
from tap_auditlogs.output.unified import UnifiedMapping
from tap_auditlogs.providers import Provider, base_url_setting, lookback_setting

if t.TYPE_CHECKING:
    import requests

    from tap_auditlogs.core.types import Context, Record
    from tap_auditlogs.output.unified import EventType

PAGE_SIZE = 100  # documented: per_page 1..100 (https://docs.socket.dev/reference/getauditlogevents)
END_MARKERS = (None, "", "0", 0)


class SocketPageTokenPaginator(BaseAPIPaginator["str | None"]):
    """Follows ``nextPage`` until one of Socket's end markers.

    An empty page that still names a next page is followed: a server that filters after
    paging answers those mid-log (paging.py ends a long run of them).
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
    # event_type_values: the ``type`` enum, EVENT_TYPES below (set after it).
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


# ------------------------------------------------------------------------- audit_events
# Every type of the ``type`` filter enum (openapi.json, 2026-08, 93 values) -> (category,
# operation, target type); taxonomy in unified.py. Responses spell them lowerCamel; the
# lookup ignores case. Unknown types become ``other``.
EVENT_TYPES: dict[str, EventType] = {
    "AddLicenseOverlayNote": ("configuration", "update", "license_overlay", ENTITY),
    "AssociateLabel": ("resource", "update", "label", ENTITY),
    "CancelInvitation": ("membership", "delete", "invitation", ACCOUNT),
    "ChangeMemberRole": ("membership", "update", "member", ACCESS),
    "ChangePlanSubscriptionSeats": ("billing", "update", "subscription", ENTITY),
    "CreateApiToken": ("credential", "create", "api_token", ACCOUNT),
    "CreateArtifact": ("resource", "create", "artifact", ENTITY),
    "CreateAlertPolicy": ("configuration", "create", "alert_policy", ENTITY),
    "CreateFirewallCustomRegistry": ("configuration", "create", "firewall_registry", ENTITY),
    "CreateFirewallDeploymentConfig": ("configuration", "create", "firewall_deployment", ENTITY),
    "CreateLabel": ("resource", "create", "label", ENTITY),
    "CreateOauthRefreshToken": ("credential", "create", "oauth_token", ACCOUNT),
    "CreateRepoAccessRule": ("authorization", "create", "repo_access_rule", ENTITY),
    "CreateUserWithPassword": ("membership", "create", "user", ACCOUNT),
    "CreateWebhook": ("integration", "create", "webhook", ENTITY),
    "CreateTicket": ("integration", "create", "ticket", ENTITY),
    "CreateTicketingConfiguration": ("integration", "create", "ticketing_configuration", ENTITY),
    "CoanaCliLegacyModeCutoffUpdated": ("configuration", "update", "cli_legacy_mode", ENTITY),
    "CoanaCliLegacyModeDemoteOrg": ("configuration", "update", "cli_legacy_mode", ENTITY),
    "CoanaCliLegacyModePromoteOrg": ("configuration", "update", "cli_legacy_mode", ENTITY),
    "CreateAlertResolution": ("resource", "create", "alert_resolution", ENTITY),
    "DeleteAlertPolicy": ("configuration", "delete", "alert_policy", ENTITY),
    "DeleteAlertResolution": ("resource", "delete", "alert_resolution", ENTITY),
    "DeleteAlertTriage": ("resource", "delete", "alert_triage", ENTITY),
    "DeleteApiToken": ("credential", "delete", "api_token", ACCOUNT),
    "DeleteFirewallCustomRegistry": ("configuration", "delete", "firewall_registry", ENTITY),
    "DeleteFirewallDeploymentConfig": ("configuration", "delete", "firewall_deployment", ENTITY),
    "DeleteFullScan": ("resource", "delete", "full_scan", ENTITY),
    "DeleteLabel": ("resource", "delete", "label", ENTITY),
    "DeleteLabelSetting": ("configuration", "delete", "label_setting", ENTITY),
    "DeleteRepoAccessRule": ("authorization", "delete", "repo_access_rule", ENTITY),
    "DeleteReport": ("resource", "delete", "report", ENTITY),
    "DeleteRepository": ("resource", "delete", "repository", ENTITY),
    "DeleteTicketingConfiguration": ("integration", "delete", "ticketing_configuration", ENTITY),
    "DeleteWebhook": ("integration", "delete", "webhook", ENTITY),
    "DisablePythonCliRunStreamingOverride": ("configuration", "disable", "cli_setting", ENTITY),
    "DisassociateLabel": ("resource", "update", "label", ENTITY),
    "DisconnectAsanaIntegration": ("integration", "delete", "asana", ENTITY),
    "DisconnectJiraIntegration": ("integration", "delete", "jira", ENTITY),
    "DisconnectLinearIntegration": ("integration", "delete", "linear", ENTITY),
    "DowngradeOrganizationPlan": ("billing", "update", "plan", ENTITY),
    "EnablePythonCliRunStreamingOverride": ("configuration", "enable", "cli_setting", ENTITY),
    "EnqueueAutopatchMergeRun": ("resource", "execute", "autopatch", ENTITY),
    "EnqueueAutopatchPrepareJob": ("resource", "execute", "autopatch", ENTITY),
    "FinalizeAlertPolicyMigration": ("configuration", "update", "alert_policy", ENTITY),
    "JoinOrganization": ("membership", "create", "member", ACCOUNT),
    "AsanaIntegrationConnected": ("integration", "create", "asana", ENTITY),
    "JiraIntegrationConnected": ("integration", "create", "jira", ENTITY),
    "LinearIntegrationConnected": ("integration", "create", "linear", ENTITY),
    "MemberAdded": ("membership", "create", "member", ACCOUNT),
    "MemberRemoved": ("membership", "delete", "member", ACCOUNT),
    "MemberRoleChanged": ("membership", "update", "member", ACCESS),
    "RemoveLicenseOverlay": ("configuration", "delete", "license_overlay", ENTITY),
    "RemoveMember": ("membership", "delete", "member", ACCOUNT),
    "RollbackAlertPolicyMigration": ("configuration", "update", "alert_policy", ENTITY),
    "ResetInvitationLink": ("membership", "update", "invitation", ACCOUNT),
    "ResetOrganizationSettingToDefault": (
        "configuration",
        "update",
        "organization_setting",
        ENTITY,
    ),
    "RevokeOauthToken": ("credential", "delete", "oauth_token", ACCOUNT),
    "RotateOauthRefreshToken": ("credential", "update", "oauth_token", ACCOUNT),
    "RevokeApiToken": ("credential", "delete", "api_token", ACCOUNT),
    "RotateApiToken": ("credential", "update", "api_token", ACCOUNT),
    "SendInvitation": ("membership", "create", "invitation", ACCOUNT),
    "SessionRevokedByUser": ("authentication", "logout", "session", AUTHENTICATION),
    "SetLabelSettingToDefault": ("configuration", "update", "label_setting", ENTITY),
    "SetSsoBypassMemberships": ("authentication", "update", "sso_bypass", ENTITY),
    "SetSsoBypassRbacRoles": ("authentication", "update", "sso_bypass", ENTITY),
    "SSOEmailVerificationCompleted": ("authentication", "other", "user", AUTHENTICATION),
    "SSOLoginCompleted": ("authentication", "login", "user", AUTHENTICATION),
    "SvdBackfillLegacyOverlay": ("configuration", "execute", "license_overlay", ENTITY),
    "SvdReprocessClusters": ("resource", "execute", "vulnerability_data", ENTITY),
    "SyncOrganization": ("integration", "execute", "organization", ENTITY),
    "TransferOwnership": ("membership", "update", "organization", ACCESS),
    "UpdateAlertTriage": ("resource", "update", "alert_triage", ENTITY),
    "UpdateApiTokenCommitter": ("credential", "update", "api_token", ACCOUNT),
    "UpdateApiTokenMaxQuota": ("credential", "update", "api_token", ACCOUNT),
    "UpdateApiTokenName": ("credential", "update", "api_token", ACCOUNT),
    "UpdateApiTokenScopes": ("credential", "update", "api_token", ACCOUNT),
    "UpdateApiTokenVisibility": ("credential", "update", "api_token", ACCOUNT),
    "UpdateAutopatchCurated": ("configuration", "update", "autopatch", ENTITY),
    "UpdateAutopatchPrepareConfig": ("configuration", "update", "autopatch", ENTITY),
    "UpdateFirewallCustomRegistry": ("configuration", "update", "firewall_registry", ENTITY),
    "UpdateFirewallDeploymentConfig": ("configuration", "update", "firewall_deployment", ENTITY),
    "UpdateLabel": ("resource", "update", "label", ENTITY),
    "UpdateLabelSetting": ("configuration", "update", "label_setting", ENTITY),
    "UpdateLicenseOverlay": ("configuration", "update", "license_overlay", ENTITY),
    "UpdateOrganizationSetting": ("configuration", "update", "organization_setting", ENTITY),
    "UpdateRepoAccessRule": ("authorization", "update", "repo_access_rule", ENTITY),
    "UpdateTicketingConfiguration": ("integration", "update", "ticketing_configuration", ENTITY),
    "UpdateWebhook": ("integration", "update", "webhook", ENTITY),
    "UpgradeOrganizationPlan": ("billing", "update", "plan", ENTITY),
    "UserMagicLinkSent": ("authentication", "other", "user", AUTHENTICATION),
    "UserSignedIn": ("authentication", "login", "user", AUTHENTICATION),
    "UserSignedOut": ("authentication", "logout", "user", AUTHENTICATION),
}

#: The ``type`` filter takes exactly these spellings (``SSOLoginCompleted``, not
#: ``SsoLoginCompleted``); a configured name is matched ignoring case.
SocketAuditLog.event_type_values = tuple(EVENT_TYPES)


def unified_fields(event: Record, context: Context) -> dict[str, t.Any]:
    """A Socket event's unified fields. Socket names no target: see ``raw.payload``."""
    acted = event.get("user_id") or event.get("user_email")
    return {
        # organization_id is nullable in the spec: then the slug names the organization.
        "organization_id": event.get("organization_id") or (context or {}).get("org_slug"),
        "organization_name": event.get("organization_name"),
        "event_id": event.get("event_id"),
        "occurred_at": event.get("created_at"),
        "actor_id": event.get("user_id"),
        "actor_email": event.get("user_email"),
        "actor_type": "user" if acted else "unknown",
        "source_ip": event.get("ip_address"),
        "user_agent": event.get("user_agent"),
        "country_code": event.get("country_code"),
        "status_code": event.get("status_code"),
    }


UNIFIED = UnifiedMapping(
    event_types=EVENT_TYPES, action=lambda event: event.get("type"), fields=unified_fields
)


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
