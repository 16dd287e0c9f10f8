"""Nirvana Labs' actions in ``audit_events``: category, operation, target and OCSF class."""

from __future__ import annotations

import typing as t

from tap_auditlogs.output.ocsf import ACCOUNT, ENTITY
from tap_auditlogs.output.unified import UnifiedMapping, as_object

if t.TYPE_CHECKING:
    from tap_auditlogs.core.types import Context, Record
    from tap_auditlogs.output.unified import EventType

# Nirvana documents its actions as ``<resource>.<past verb>`` (the docs' example:
# ``vm.created``) but publishes no list. So: the documented actions, exactly, and for the
# rest the same grammar read from two tables (resource -> category, verb -> operation);
# a part the tables do not know is ``other``. Taxonomy in output/unified.py.
EVENT_TYPES: dict[str, EventType] = {
    "vm.created": ("resource", "create", "vm", ENTITY),
}
#: Resource types (the API's resources and ``target.type``) -> category and OCSF class.
RESOURCE_CATEGORIES = {
    "vm": ("resource", ENTITY),
    "volume": ("resource", ENTITY),
    "vpc": ("resource", ENTITY),
    "firewall_rule": ("resource", ENTITY),
    "project": ("resource", ENTITY),
    "api_key": ("credential", ACCOUNT),
    "organization": ("configuration", ENTITY),
    "user": ("membership", ACCOUNT),
    "member": ("membership", ACCOUNT),
    "invitation": ("membership", ACCOUNT),
}
#: Past-tense verbs -> operation.
VERB_OPERATIONS = {
    "created": "create",
    "updated": "update",
    "deleted": "delete",
    "enabled": "enable",
    "disabled": "disable",
    "started": "execute",
    "stopped": "execute",
    "restarted": "execute",
}


def classify_action(action: str) -> EventType | None:
    """``volume.deleted`` -> (resource, delete, volume, ENTITY); None when not
    ``resource.verb``."""
    resource, dot, verb = action.strip().lower().rpartition(".")
    if not dot or not resource or not verb:
        return None
    category, ocsf = RESOURCE_CATEGORIES.get(resource, ("other", ENTITY))
    return category, VERB_OPERATIONS.get(verb, "other"), resource, ocsf


def unified_fields(entry: Record, _context: Context) -> dict[str, t.Any]:
    """A Nirvana entry's unified fields. Entries name no organization (the key's own)."""
    actor, target = as_object(entry.get("actor")), as_object(entry.get("target"))
    return {
        "event_id": entry.get("id"),
        "occurred_at": entry.get("created_at"),
        "actor_id": actor.get("id"),
        "actor_name": actor.get("name"),
        "actor_type": actor.get("type") if actor.get("type") in ("user", "api_key") else None,
        "target_id": target.get("id"),
        "target_type": target.get("type"),
        "source_ip": entry.get("client_ip"),
        "user_agent": entry.get("user_agent"),
        "status_code": entry.get("status_code"),
    }


UNIFIED = UnifiedMapping(
    event_types=EVENT_TYPES,
    action=lambda entry: entry.get("action"),
    fields=unified_fields,
    fallback=classify_action,
    derived=tuple(
        f"{resource}.{verb}" for resource in RESOURCE_CATEGORIES for verb in VERB_OPERATIONS
    ),
)
