"""How ConfigCat events read in ``audit_events``: its event types and unified fields."""

from __future__ import annotations

import typing as t

from tap_auditlogs.output.ocsf import ACCESS, ACCOUNT, ENTITY, MFA
from tap_auditlogs.output.unified import UnifiedMapping

if t.TYPE_CHECKING:
    from tap_auditlogs.core.types import Context, Record
    from tap_auditlogs.output.unified import EventType

#: Where ConfigCat documents the AuditLogType enum (the audit-log endpoints' reference).
DOCUMENTATION = "https://configcat.com/docs/api/reference/get-organization-auditlogs-v-2/"

# Every value of the AuditLogType enum (DOCUMENTATION; published in the openapi.yaml of
# ConfigCat's Java client, 2026-08, 117 values), then the values its earlier generations
# listed (Go client openapi.yaml/swagger.yaml, 2020-10 to 2024-10), which items logged
# before then keep -> (category, operation, target type); taxonomy in output/unified.py. A
# ConfigCat "setting" is a feature flag. Unknown (newer) types become ``other``.
EVENT_TYPES: dict[str, EventType] = {
    "productCreated": ("resource", "create", "product", ENTITY),
    "productChanged": ("resource", "update", "product", ENTITY),
    "productDeleted": ("resource", "delete", "product", ENTITY),
    "productsReordered": ("resource", "update", "product", ENTITY),
    "productPreferencesUpdated": ("configuration", "update", "product", ENTITY),
    "teamMemberInvited": ("membership", "create", "invitation", ACCOUNT),
    "teamMemberInvitationRevoked": ("membership", "delete", "invitation", ACCOUNT),
    "teamMemberJoined": ("membership", "create", "member", ACCOUNT),
    "teamMemberPermissionGroupChanged": ("membership", "update", "member", ACCESS),
    "teamMemberRemoved": ("membership", "delete", "member", ACCOUNT),
    "teamMemberLeft": ("membership", "delete", "member", ACCOUNT),
    "teamMemberInvitationChanged": ("membership", "update", "invitation", ACCOUNT),
    "teamMemberInvitationResent": ("membership", "update", "invitation", ACCOUNT),
    "teamMemberInvitationRejected": ("membership", "delete", "invitation", ACCOUNT),
    "teamMemberAddedToProduct": ("membership", "create", "member", ACCESS),
    "configCreated": ("resource", "create", "config", ENTITY),
    "configChanged": ("resource", "update", "config", ENTITY),
    "configDeleted": ("resource", "delete", "config", ENTITY),
    "configsReordered": ("resource", "update", "config", ENTITY),
    "environmentCreated": ("resource", "create", "environment", ENTITY),
    "environmentChanged": ("resource", "update", "environment", ENTITY),
    "environmentDeleted": ("resource", "delete", "environment", ENTITY),
    "environmentsReordered": ("resource", "update", "environment", ENTITY),
    "settingCreated": ("resource", "create", "feature_flag", ENTITY),
    "settingChanged": ("resource", "update", "feature_flag", ENTITY),
    "settingDeleted": ("resource", "delete", "feature_flag", ENTITY),
    "settingsReordered": ("resource", "update", "feature_flag", ENTITY),
    "predefinedVariationsChanged": ("configuration", "update", "feature_flag", ENTITY),
    "settingConvertedToPredefinedVariations": ("resource", "update", "feature_flag", ENTITY),
    "settingConvertedToFreeFormValues": ("resource", "update", "feature_flag", ENTITY),
    "settingValueChanged": ("configuration", "update", "feature_flag", ENTITY),
    "webHookCreated": ("integration", "create", "webhook", ENTITY),
    "webHookChanged": ("integration", "update", "webhook", ENTITY),
    "webHookDeleted": ("integration", "delete", "webhook", ENTITY),
    "permissionGroupCreated": ("authorization", "create", "permission_group", ENTITY),
    "permissionGroupChanged": ("authorization", "update", "permission_group", ENTITY),
    "permissionGroupDeleted": ("authorization", "delete", "permission_group", ENTITY),
    "permissionGroupDefault": ("authorization", "update", "permission_group", ENTITY),
    "apiKeyAdded": ("credential", "create", "sdk_key", ACCOUNT),
    "apiKeyRemoved": ("credential", "delete", "sdk_key", ACCOUNT),
    "integrationAdded": ("integration", "create", "integration", ENTITY),
    "integrationChanged": ("integration", "update", "integration", ENTITY),
    "integrationRemoved": ("integration", "delete", "integration", ENTITY),
    "apiKeyConnected": ("credential", "update", "sdk_key", ACCOUNT),
    "integrationLinkAdded": ("integration", "create", "integration_link", ENTITY),
    "integrationLinkRemoved": ("integration", "delete", "integration_link", ENTITY),
    "organizationAdded": ("resource", "create", "organization", ENTITY),
    "organizationChanged": ("configuration", "update", "organization", ENTITY),
    "organizationSubscriptionTypeChanged": ("billing", "update", "subscription", ENTITY),
    "organizationAdminChanged": ("membership", "update", "member", ACCESS),
    "organizationAdminLeft": ("membership", "delete", "member", ACCOUNT),
    "twoFactorDisabledForMember": ("authentication", "disable", "mfa", MFA),
    "tagAdded": ("resource", "create", "tag", ENTITY),
    "tagChanged": ("resource", "update", "tag", ENTITY),
    "tagRemoved": ("resource", "delete", "tag", ENTITY),
    "settingTagAdded": ("resource", "update", "feature_flag", ENTITY),
    "settingTagRemoved": ("resource", "update", "feature_flag", ENTITY),
    "publicApiAccessTokenAdded": ("credential", "create", "api_token", ACCOUNT),
    "publicApiAccessTokenRemoved": ("credential", "delete", "api_token", ACCOUNT),
    "domainAdded": ("authentication", "create", "domain", ENTITY),
    "domainVerified": ("authentication", "update", "domain", ENTITY),
    "domainRemoved": ("authentication", "delete", "domain", ENTITY),
    "autoProvisioningConfigurationChanged": ("membership", "update", "provisioning", ENTITY),
    "samlIdpConfigurationAdded": ("authentication", "create", "saml_idp", ENTITY),
    "samlIdpConfigurationRemoved": ("authentication", "delete", "saml_idp", ENTITY),
    "samlIdpConfigurationUpdated": ("authentication", "update", "saml_idp", ENTITY),
    "autoProvisioningEnabledChanged": ("membership", "update", "provisioning", ENTITY),
    "organizationMemberJoined": ("membership", "create", "member", ACCOUNT),
    "organizationMemberProductJoinRequested": ("membership", "create", "join_request", ENTITY),
    "organizationMemberProductJoinRequestRejected": (
        "membership",
        "update",
        "join_request",
        ENTITY,
    ),
    "organizationMemberProductJoinRequestApproved": (
        "membership",
        "update",
        "join_request",
        ACCESS,
    ),
    "organizationMemberRemoved": ("membership", "delete", "member", ACCOUNT),
    "codeReferencesUploaded": ("resource", "create", "code_reference", ENTITY),
    "codeReferenceDeleted": ("resource", "delete", "code_reference", ENTITY),
    "codeReferenceStaleBranchDeleted": ("resource", "delete", "code_reference", ENTITY),
    "segmentCreated": ("resource", "create", "segment", ENTITY),
    "segmentChanged": ("resource", "update", "segment", ENTITY),
    "segmentDeleted": ("resource", "delete", "segment", ENTITY),
    "webhookSigningKeyDeleted": ("credential", "delete", "webhook_signing_key", ENTITY),
    "webhookSigningKeyCreated": ("credential", "create", "webhook_signing_key", ENTITY),
    "userProvisioningConfigurationChanged": ("membership", "update", "provisioning", ENTITY),
    "syncGroupProvisioningRuleChanged": ("membership", "update", "provisioning", ENTITY),
    "syncGroupsReordered": ("membership", "update", "provisioning", ENTITY),
    "syncUserProvisioningEnabled": ("membership", "enable", "provisioning", ENTITY),
    "syncUserProvisioningDisabled": ("membership", "disable", "provisioning", ENTITY),
    "userEmailChanged": ("membership", "update", "user", ACCOUNT),
    "userFullNameChanged": ("membership", "update", "user", ACCOUNT),
    "userDisabled": ("membership", "disable", "user", ACCOUNT),
    "awsConnected": ("integration", "create", "aws", ENTITY),
    "awsDisconnected": ("integration", "delete", "aws", ENTITY),
    "userEnabled": ("membership", "enable", "user", ACCOUNT),
    "syncUserDeleted": ("membership", "delete", "user", ACCOUNT),
    "syncGroupDeleted": ("membership", "delete", "group", ENTITY),
    "proxyConfigurationCreated": ("integration", "create", "proxy_configuration", ENTITY),
    "proxyConfigurationChanged": ("integration", "update", "proxy_configuration", ENTITY),
    "proxyConfigurationDeleted": ("integration", "delete", "proxy_configuration", ENTITY),
    "proxyConfigurationSecretRegenerated": ("credential", "update", "proxy_secret", ENTITY),
    "proxyNotificationSettingsUpdated": ("integration", "update", "proxy_notification", ENTITY),
    "proxyNotificationSettingsDeleted": ("integration", "delete", "proxy_notification", ENTITY),
    "proxyNotificationSigningKeyAdded": ("credential", "create", "proxy_signing_key", ENTITY),
    "proxyNotificationSigningKeyDeleted": ("credential", "delete", "proxy_signing_key", ENTITY),
    "changeRequestCreated": ("configuration", "create", "change_request", ENTITY),
    "changeRequestUpdated": ("configuration", "update", "change_request", ENTITY),
    "changeRequestSettingValuesUpdated": ("configuration", "update", "change_request", ENTITY),
    "changeRequestSettingValueRebased": ("configuration", "update", "change_request", ENTITY),
    "changeRequestApproved": ("configuration", "update", "change_request", ENTITY),
    "changeRequestApprovalDismissed": ("configuration", "update", "change_request", ENTITY),
    "changeRequestApplied": ("configuration", "update", "change_request", ENTITY),
    "changeRequestAppliedOnSchedule": ("configuration", "update", "change_request", ENTITY),
    "changeRequestClosed": ("configuration", "update", "change_request", ENTITY),
    "changeRequestNeedsAttention": ("configuration", "update", "change_request", ENTITY),
    "changeRequestCommentAdded": ("configuration", "create", "change_request_comment", ENTITY),
    "changeRequestCommentEdited": ("configuration", "update", "change_request_comment", ENTITY),
    "changeRequestCommentDeleted": ("configuration", "delete", "change_request_comment", ENTITY),
    "changeRequestSettingDeleted": ("configuration", "update", "change_request", ENTITY),
    "changeRequestNeedsAttentionFixed": ("configuration", "update", "change_request", ENTITY),
    "changeRequestOwnershipClaimed": ("configuration", "update", "change_request", ENTITY),
    # Listed until 2024-10 (Go client openapi.yaml, commit f19ba451).
    "productOwnershipTransferred": ("membership", "update", "product", ACCESS),
    "organizationRemoved": ("resource", "delete", "organization", ENTITY),
    "domainSamlConfigured": ("authentication", "update", "domain", ENTITY),
    "domainSamlDeleted": ("authentication", "delete", "domain", ENTITY),
    # Listed in earlier generations (2020-10 to 2024-08).
    "organizationAdminDisabled2FA": ("authentication", "disable", "mfa", MFA),
    "subscriptionChanged": ("billing", "update", "subscription", ENTITY),
    "organizationAdminAdded": ("membership", "create", "member", ACCESS),
    "organizationAdminRemoved": ("membership", "delete", "member", ACCESS),
    "memberGroupCreated": ("authorization", "create", "permission_group", ENTITY),
    "memberGroupChanged": ("authorization", "update", "permission_group", ENTITY),
    "memberGroupDeleted": ("authorization", "delete", "permission_group", ENTITY),
    "codeReferenceStaleBrancheDeleted": ("resource", "delete", "code_reference", ENTITY),  # sic
}


def unified_fields(item: Record, context: Context) -> dict[str, t.Any]:
    """A ConfigCat item's unified fields (it names no id of its actor or target)."""
    return {
        "organization_id": (context or {}).get("organizationId"),
        "event_id": item.get("auditLogId"),
        "occurred_at": item.get("auditLogDateTime"),
        "actor_email": item.get("userEmail"),
        "actor_name": item.get("userName"),
        "actor_type": "user" if item.get("userEmail") or item.get("userName") else "unknown",
        "target_name": item.get("actionTarget"),
    }


UNIFIED = UnifiedMapping(
    event_types=EVENT_TYPES,
    # The enum value; older items may carry only the label ("Setting value changed").
    action=lambda item: item.get("auditLogTypeEnum") or item.get("auditLogType"),
    fields=unified_fields,
)
