"""Organizations as partitions, the same way for every provider that has several.

A provider sets ``organizations_setting`` (``org_slugs``) and implements
``list_organizations``. Unset, every organization the credentials see is read (one request
lists them, and the tap logs what it found); set, exactly those. A configured
``event_types`` filter multiplies them: one partition per organization and event type.
"""

from __future__ import annotations

import typing as t

from tap_auditlogs.errors import ProviderError
from tap_auditlogs.text import plural

if t.TYPE_CHECKING:
    from collections.abc import Iterable

    from tap_auditlogs.source import AuditLogSource


def organizations_to_read(source: AuditLogSource) -> dict[str, str | None]:
    """The organizations to read (id -> name): the setting's, else all those listed."""
    configured = non_empty(source.settings.get(t.cast("str", source.organizations_setting)))
    if configured:
        return dict.fromkeys(configured)
    found = source.list_organizations()
    if not found:
        raise ProviderError(
            f"{source.provider_label}: {source.who_lists} no organization "
            f"({source.organizations_listing} returned none). Set "
            f"{source.provider}.{source.organizations_setting}{source.no_organization_hint}.",
            whole_provider=True,
        )
    source.logger.info(
        "%s: %s %s: %s",
        source.provider_label,
        source.who_lists,
        plural(len(found), "organization"),
        ", ".join(f"{name} ({org})" if name else org for org, name in found.items()),
    )
    return found


def organization_partitions(source: AuditLogSource) -> list[dict]:
    """One partition per organization (and event type); raises ``ProviderError`` when the
    organizations cannot be listed."""
    organizations = list(source.organizations)
    field, type_field = source.partition_field, source.event_type_field
    types = [source.event_type_filter(n) for n in non_empty(source.settings.get("event_types"))]
    if not types or type_field is None:
        partitions = [{field: org} for org in organizations]
    else:
        partitions = [{field: org, type_field: kind} for org in organizations for kind in types]
    return partitions


def non_empty(values: Iterable[object] | None) -> list[str]:
    """Strings of a config list, blanks dropped."""
    return [str(v).strip() for v in values or () if str(v).strip()]
