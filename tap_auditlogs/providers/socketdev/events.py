"""Socket's event types in ``audit_events``: category, operation, target and OCSF class of each."""

from __future__ import annotations

import typing as t

from tap_auditlogs.output.ocsf import ACCESS, ACCOUNT, AUTHENTICATION, ENTITY
from tap_auditlogs.output.unified import UnifiedMapping

if t.TYPE_CHECKING:
    from tap_auditlogs.core.types import Context, Record
    from tap_auditlogs.output.unified import EventType

# Every type of the ``type`` filter enum (openapi.json, 2026-08, 93 values) -> (category,
# operation, target type); taxonomy in output/unified.py. Responses spell them lowerCamel; the
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
