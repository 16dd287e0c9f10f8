"""How Torq events read in ``audit_events``: its event types and unified fields."""

from __future__ import annotations

import typing as t

from tap_auditlogs.output.ocsf import ACCESS, ACCOUNT, AUTHENTICATION, ENTITY
from tap_auditlogs.output.unified import UnifiedMapping

if t.TYPE_CHECKING:
    from tap_auditlogs.core.types import Context, Record
    from tap_auditlogs.output.unified import EventType

# Every action of Torq's audit-log event list (developers.torq.io/apidocs/resources-audit-logs
# and learn.torq.io/docs/audit-logs; ``action`` carries this text, e.g. "Workflow edited")
# -> (category, operation, target type); taxonomy in output/unified.py. The stored copy of the
# list ends at "IdP connection updated"; whatever follows it, or comes later, is ``other``.
EVENT_TYPES: dict[str, EventType] = {
    "User invited": ("membership", "create", "invitation", ACCOUNT),
    "User accepted invitation": ("membership", "create", "member", ACCOUNT),
    "User role updated": ("membership", "update", "user", ACCESS),
    "User deleted": ("membership", "delete", "user", ACCOUNT),
    "User logged in": ("authentication", "login", "user", AUTHENTICATION),
    "User logged out": ("authentication", "logout", "user", AUTHENTICATION),
    "User switched accounts": ("authentication", "other", "user", AUTHENTICATION),
    "Workflow created": ("resource", "create", "workflow", ENTITY),
    "Workflow deleted": ("resource", "delete", "workflow", ENTITY),
    "Workflow updated": ("resource", "update", "workflow", ENTITY),
    "Workflow published": ("resource", "update", "workflow", ENTITY),
    "Workflow unpublished": ("resource", "update", "workflow", ENTITY),
    "Workflow edited": ("resource", "update", "workflow", ENTITY),
    "Workflow reverted": ("resource", "update", "workflow", ENTITY),
    "Workflow enabled": ("resource", "enable", "workflow", ENTITY),
    "Workflow disabled": ("resource", "disable", "workflow", ENTITY),
    "Workspace variable created": ("configuration", "create", "workspace_variable", ENTITY),
    "Workspace variable updated": ("configuration", "update", "workspace_variable", ENTITY),
    "Workspace variable deleted": ("configuration", "delete", "workspace_variable", ENTITY),
    "Email address added": ("configuration", "create", "notification_email", ENTITY),
    "Email address removed": ("configuration", "delete", "notification_email", ENTITY),
    "Webhook added": ("integration", "create", "webhook", ENTITY),
    "Webhook removed": ("integration", "delete", "webhook", ENTITY),
    "Webhook authentication headers added": (
        "credential",
        "create",
        "webhook_auth_headers",
        ENTITY,
    ),
    "Webhook authentication headers removed": (
        "credential",
        "delete",
        "webhook_auth_headers",
        ENTITY,
    ),
    "Webhook authentication headers updated": (
        "credential",
        "update",
        "webhook_auth_headers",
        ENTITY,
    ),
    "API key enabled": ("credential", "enable", "api_key", ACCOUNT),
    "API key deleted": ("credential", "delete", "api_key", ACCOUNT),
    "Secret created": ("credential", "create", "secret", ENTITY),
    "Secret deleted": ("credential", "delete", "secret", ENTITY),
    "Secret updated": ("credential", "update", "secret", ENTITY),
    "Integration created": ("integration", "create", "integration", ENTITY),
    "Integration deleted": ("integration", "delete", "integration", ENTITY),
    "Integration updated": ("integration", "update", "integration", ENTITY),
    "Custom step created": ("resource", "create", "custom_step", ENTITY),
    "Custom step deleted": ("resource", "delete", "custom_step", ENTITY),
    "Runner created": ("resource", "create", "runner", ENTITY),
    "Runner deleted": ("resource", "delete", "runner", ENTITY),
    "IdP connection created": ("authentication", "create", "idp_connection", ENTITY),
    "IdP connection updated": ("authentication", "update", "idp_connection", ENTITY),
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
