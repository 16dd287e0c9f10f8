"""How Torq events read in ``audit_events``: its event types and unified fields."""

from __future__ import annotations

import typing as t

from tap_auditlogs.unified import UnifiedMapping

if t.TYPE_CHECKING:
    from tap_auditlogs.strategies import Context, Record
    from tap_auditlogs.unified import Taxon

# Every action of Torq's audit-log event list (developers.torq.io/apidocs/resources-audit-logs
# and learn.torq.io/docs/audit-logs; ``action`` carries this text, e.g. "Workflow edited")
# -> (category, operation, target type); taxonomy in unified.py. The stored copy of the
# list ends at "IdP connection updated"; whatever follows it, or comes later, is ``other``.
EVENT_TYPES: dict[str, Taxon] = {
    "User invited": ("membership", "create", "invitation"),
    "User accepted invitation": ("membership", "create", "member"),
    "User role updated": ("membership", "update", "user"),
    "User deleted": ("membership", "delete", "user"),
    "User logged in": ("authentication", "login", "user"),
    "User logged out": ("authentication", "logout", "user"),
    "User switched accounts": ("authentication", "other", "user"),
    "Workflow created": ("resource", "create", "workflow"),
    "Workflow deleted": ("resource", "delete", "workflow"),
    "Workflow updated": ("resource", "update", "workflow"),
    "Workflow published": ("resource", "update", "workflow"),
    "Workflow unpublished": ("resource", "update", "workflow"),
    "Workflow edited": ("resource", "update", "workflow"),
    "Workflow reverted": ("resource", "update", "workflow"),
    "Workflow enabled": ("resource", "enable", "workflow"),
    "Workflow disabled": ("resource", "disable", "workflow"),
    "Workspace variable created": ("configuration", "create", "workspace_variable"),
    "Workspace variable updated": ("configuration", "update", "workspace_variable"),
    "Workspace variable deleted": ("configuration", "delete", "workspace_variable"),
    "Email address added": ("configuration", "create", "notification_email"),
    "Email address removed": ("configuration", "delete", "notification_email"),
    "Webhook added": ("integration", "create", "webhook"),
    "Webhook removed": ("integration", "delete", "webhook"),
    "Webhook authentication headers added": ("credential", "create", "webhook_auth_headers"),
    "Webhook authentication headers removed": ("credential", "delete", "webhook_auth_headers"),
    "Webhook authentication headers updated": ("credential", "update", "webhook_auth_headers"),
    "API key enabled": ("credential", "enable", "api_key"),
    "API key deleted": ("credential", "delete", "api_key"),
    "Secret created": ("credential", "create", "secret"),
    "Secret deleted": ("credential", "delete", "secret"),
    "Secret updated": ("credential", "update", "secret"),
    "Integration created": ("integration", "create", "integration"),
    "Integration deleted": ("integration", "delete", "integration"),
    "Integration updated": ("integration", "update", "integration"),
    "Custom step created": ("resource", "create", "custom_step"),
    "Custom step deleted": ("resource", "delete", "custom_step"),
    "Runner created": ("resource", "create", "runner"),
    "Runner deleted": ("resource", "delete", "runner"),
    "IdP connection created": ("authentication", "create", "idp_connection"),
    "IdP connection updated": ("authentication", "update", "idp_connection"),
}

#: Torq's ``actor_type`` -> unified actor type (Slack: a person acting through Slack).
ACTOR_TYPES = {"web_app": "user", "slack": "user", "api_key": "api_key"}


def unified_fields(entry: Record, _context: Context) -> dict[str, t.Any]:
    """A Torq entry's unified fields; the workspace is the organization."""
    return {
        "organization_id": entry.get("account_id"),
        "organization_name": entry.get("account_name"),
        "event_id": entry.get("id"),
        "occurred_at": entry.get("timestamp"),
        # For an API key, the email of the user who created it (Torq's docs).
        "actor_email": entry.get("email"),
        "actor_name": entry.get("actor_name"),
        "actor_type": ACTOR_TYPES.get(str(entry.get("actor_type")), "unknown"),
        "target_id": entry.get("resource_id"),
        "target_name": entry.get("resource_name"),
        "source_ip": entry.get("ip"),
        "user_agent": entry.get("user_agent"),
    }


UNIFIED = UnifiedMapping(
    event_types=EVENT_TYPES, action=lambda entry: entry.get("action"), fields=unified_fields
)
