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

    from tap_auditlogs.client import AuditLogStream


def organizations_to_read(stream: AuditLogStream) -> dict[str, str | None]:
    """The organizations to read (id -> name): the setting's, else all those listed."""
    configured = non_empty(stream.settings.get(t.cast("str", stream.organizations_setting)))
    if configured:
        return dict.fromkeys(configured)
    found = stream.list_organizations()
    if not found:
        raise ProviderError(
            f"{stream.provider_label}: {stream.who_lists} no organization "
            f"({stream.organizations_listing} returned none). Set "
            f"{stream.provider}.{stream.organizations_setting}{stream.no_organization_hint}.",
            whole_provider=True,
        )
    stream.logger.info(
        "%s: %s %s: %s",
        stream.provider_label,
        stream.who_lists,
        plural(len(found), "organization"),
        ", ".join(f"{name} ({org})" if name else org for org, name in found.items()),
    )
    return found


def organization_partitions(stream: AuditLogStream) -> list[dict]:
    """One partition per organization (and event type); none when the listing failed (the
    failure is reported, and the provider stops)."""
    try:
        organizations = list(stream.organizations)
    except ProviderError as error:
        stream.report_failure(error, halt=True)
        return []
    field, type_field = stream.partition_field, stream.event_type_field
    types = [stream.event_type_filter(n) for n in non_empty(stream.settings.get("event_types"))]
    if not types or type_field is None:
        return [{field: org} for org in organizations]
    return [{field: org, type_field: kind} for org in organizations for kind in types]


def non_empty(values: Iterable[object] | None) -> list[str]:
    """Strings of a config list, blanks dropped."""
    return [str(v).strip() for v in values or () if str(v).strip()]
