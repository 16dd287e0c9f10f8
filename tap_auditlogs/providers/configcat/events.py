"""How ConfigCat events read in ``audit_events``: its event types and unified fields."""

from __future__ import annotations

import typing as t

from tap_auditlogs.unified import UnifiedMapping

if t.TYPE_CHECKING:
    from tap_auditlogs.strategies import Context, Record
    from tap_auditlogs.unified import Taxon

#: Where ConfigCat documents the AuditLogType enum (the audit-log endpoints' reference).
DOCUMENTATION = "https://configcat.com/docs/api/reference/get-organization-auditlogs-v-2/"

# Every value of the AuditLogType enum (DOCUMENTATION; published in the openapi.yaml of
# ConfigCat's Java client, 2026-08, 117 values), then the values its earlier generations
# listed (Go client openapi.yaml/swagger.yaml, 2020-10 to 2024-10), which items logged
# before then keep -> (category, operation, target type); taxonomy in unified.py. A
# ConfigCat "setting" is a feature flag. Unknown (newer) types become ``other``.
EVENT_TYPES: dict[str, Taxon] = {
    "productCreated": ("resource", "create", "product"),
    "productChanged": ("resource", "update", "product"),
    "productDeleted": ("resource", "delete", "product"),
    "productsReordered": ("resource", "update", "product"),
    "productPreferencesUpdated": ("configuration", "update", "product"),
    "teamMemberInvited": ("membership", "create", "invitation"),
    "teamMemberInvitationRevoked": ("membership", "delete", "invitation"),
    "teamMemberJoined": ("membership", "create", "member"),
    "teamMemberPermissionGroupChanged": ("membership", "update", "member"),
    "teamMemberRemoved": ("membership", "delete", "member"),
    "teamMemberLeft": ("membership", "delete", "member"),
    "teamMemberInvitationChanged": ("membership", "update", "invitation"),
    "teamMemberInvitationResent": ("membership", "update", "invitation"),
    "teamMemberInvitationRejected": ("membership", "delete", "invitation"),
    "teamMemberAddedToProduct": ("membership", "create", "member"),
    "configCreated": ("resource", "create", "config"),
    "configChanged": ("resource", "update", "config"),
    "configDeleted": ("resource", "delete", "config"),
    "configsReordered": ("resource", "update", "config"),
    "environmentCreated": ("resource", "create", "environment"),
    "environmentChanged": ("resource", "update", "environment"),
    "environmentDeleted": ("resource", "delete", "environment"),
    "environmentsReordered": ("resource", "update", "environment"),
    "settingCreated": ("resource", "create", "feature_flag"),
    "settingChanged": ("resource", "update", "feature_flag"),
    "settingDeleted": ("resource", "delete", "feature_flag"),
    "settingsReordered": ("resource", "update", "feature_flag"),
    "predefinedVariationsChanged": ("configuration", "update", "feature_flag"),
    "settingConvertedToPredefinedVariations": ("resource", "update", "feature_flag"),
    "settingConvertedToFreeFormValues": ("resource", "update", "feature_flag"),
    "settingValueChanged": ("configuration", "update", "feature_flag"),
    "webHookCreated": ("integration", "create", "webhook"),
    "webHookChanged": ("integration", "update", "webhook"),
    "webHookDeleted": ("integration", "delete", "webhook"),
    "permissionGroupCreated": ("authorization", "create", "permission_group"),
    "permissionGroupChanged": ("authorization", "update", "permission_group"),
    "permissionGroupDeleted": ("authorization", "delete", "permission_group"),
    "permissionGroupDefault": ("authorization", "update", "permission_group"),
    "apiKeyAdded": ("credential", "create", "sdk_key"),
    "apiKeyRemoved": ("credential", "delete", "sdk_key"),
    "integrationAdded": ("integration", "create", "integration"),
    "integrationChanged": ("integration", "update", "integration"),
    "integrationRemoved": ("integration", "delete", "integration"),
    "apiKeyConnected": ("credential", "update", "sdk_key"),
    "integrationLinkAdded": ("integration", "create", "integration_link"),
    "integrationLinkRemoved": ("integration", "delete", "integration_link"),
    "organizationAdded": ("resource", "create", "organization"),
    "organizationChanged": ("configuration", "update", "organization"),
    "organizationSubscriptionTypeChanged": ("billing", "update", "subscription"),
    "organizationAdminChanged": ("membership", "update", "member"),
    "organizationAdminLeft": ("membership", "delete", "member"),
    "twoFactorDisabledForMember": ("authentication", "disable", "mfa"),
    "tagAdded": ("resource", "create", "tag"),
    "tagChanged": ("resource", "update", "tag"),
    "tagRemoved": ("resource", "delete", "tag"),
    "settingTagAdded": ("resource", "update", "feature_flag"),
    "settingTagRemoved": ("resource", "update", "feature_flag"),
    "publicApiAccessTokenAdded": ("credential", "create", "api_token"),
    "publicApiAccessTokenRemoved": ("credential", "delete", "api_token"),
    "domainAdded": ("authentication", "create", "domain"),
    "domainVerified": ("authentication", "update", "domain"),
    "domainRemoved": ("authentication", "delete", "domain"),
    "autoProvisioningConfigurationChanged": ("membership", "update", "provisioning"),
    "samlIdpConfigurationAdded": ("authentication", "create", "saml_idp"),
    "samlIdpConfigurationRemoved": ("authentication", "delete", "saml_idp"),
    "samlIdpConfigurationUpdated": ("authentication", "update", "saml_idp"),
    "autoProvisioningEnabledChanged": ("membership", "update", "provisioning"),
    "organizationMemberJoined": ("membership", "create", "member"),
    "organizationMemberProductJoinRequested": ("membership", "create", "join_request"),
    "organizationMemberProductJoinRequestRejected": ("membership", "update", "join_request"),
    "organizationMemberProductJoinRequestApproved": ("membership", "update", "join_request"),
    "organizationMemberRemoved": ("membership", "delete", "member"),
    "codeReferencesUploaded": ("resource", "create", "code_reference"),
    "codeReferenceDeleted": ("resource", "delete", "code_reference"),
    "codeReferenceStaleBranchDeleted": ("resource", "delete", "code_reference"),
    "segmentCreated": ("resource", "create", "segment"),
    "segmentChanged": ("resource", "update", "segment"),
    "segmentDeleted": ("resource", "delete", "segment"),
    "webhookSigningKeyDeleted": ("credential", "delete", "webhook_signing_key"),
    "webhookSigningKeyCreated": ("credential", "create", "webhook_signing_key"),
    "userProvisioningConfigurationChanged": ("membership", "update", "provisioning"),
    "syncGroupProvisioningRuleChanged": ("membership", "update", "provisioning"),
    "syncGroupsReordered": ("membership", "update", "provisioning"),
    "syncUserProvisioningEnabled": ("membership", "enable", "provisioning"),
    "syncUserProvisioningDisabled": ("membership", "disable", "provisioning"),
    "userEmailChanged": ("membership", "update", "user"),
    "userFullNameChanged": ("membership", "update", "user"),
    "userDisabled": ("membership", "disable", "user"),
    "awsConnected": ("integration", "create", "aws"),
    "awsDisconnected": ("integration", "delete", "aws"),
    "userEnabled": ("membership", "enable", "user"),
    "syncUserDeleted": ("membership", "delete", "user"),
    "syncGroupDeleted": ("membership", "delete", "group"),
    "proxyConfigurationCreated": ("integration", "create", "proxy_configuration"),
    "proxyConfigurationChanged": ("integration", "update", "proxy_configuration"),
    "proxyConfigurationDeleted": ("integration", "delete", "proxy_configuration"),
    "proxyConfigurationSecretRegenerated": ("credential", "update", "proxy_secret"),
    "proxyNotificationSettingsUpdated": ("integration", "update", "proxy_notification"),
    "proxyNotificationSettingsDeleted": ("integration", "delete", "proxy_notification"),
    "proxyNotificationSigningKeyAdded": ("credential", "create", "proxy_signing_key"),
    "proxyNotificationSigningKeyDeleted": ("credential", "delete", "proxy_signing_key"),
    "changeRequestCreated": ("configuration", "create", "change_request"),
    "changeRequestUpdated": ("configuration", "update", "change_request"),
    "changeRequestSettingValuesUpdated": ("configuration", "update", "change_request"),
    "changeRequestSettingValueRebased": ("configuration", "update", "change_request"),
    "changeRequestApproved": ("configuration", "update", "change_request"),
    "changeRequestApprovalDismissed": ("configuration", "update", "change_request"),
    "changeRequestApplied": ("configuration", "update", "change_request"),
    "changeRequestAppliedOnSchedule": ("configuration", "update", "change_request"),
    "changeRequestClosed": ("configuration", "update", "change_request"),
    "changeRequestNeedsAttention": ("configuration", "update", "change_request"),
    "changeRequestCommentAdded": ("configuration", "create", "change_request_comment"),
    "changeRequestCommentEdited": ("configuration", "update", "change_request_comment"),
    "changeRequestCommentDeleted": ("configuration", "delete", "change_request_comment"),
    "changeRequestSettingDeleted": ("configuration", "update", "change_request"),
    "changeRequestNeedsAttentionFixed": ("configuration", "update", "change_request"),
    "changeRequestOwnershipClaimed": ("configuration", "update", "change_request"),
    # Listed until 2024-10 (Go client openapi.yaml, commit f19ba451).
    "productOwnershipTransferred": ("membership", "update", "product"),
    "organizationRemoved": ("resource", "delete", "organization"),
    "domainSamlConfigured": ("authentication", "update", "domain"),
    "domainSamlDeleted": ("authentication", "delete", "domain"),
    # Listed in earlier generations (2020-10 to 2024-08).
    "organizationAdminDisabled2FA": ("authentication", "disable", "mfa"),
    "subscriptionChanged": ("billing", "update", "subscription"),
    "organizationAdminAdded": ("membership", "create", "member"),
    "organizationAdminRemoved": ("membership", "delete", "member"),
    "memberGroupCreated": ("authorization", "create", "permission_group"),
    "memberGroupChanged": ("authorization", "update", "permission_group"),
    "memberGroupDeleted": ("authorization", "delete", "permission_group"),
    "codeReferenceStaleBrancheDeleted": ("resource", "delete", "code_reference"),  # sic
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
