"""The unified record of ``audit_events`` and the taxonomy that classifies it.

Here: the unified record's fields, the taxonomy (every category and operation, with what it
means) and ``UnifiedMapping``, what a provider fills in. In each provider's ``events``
module: that provider's table of event types -> (category, operation, target type, OCSF
class) and the small function that picks actor, target, source and organization out of one
record. Event types are part of the provider's API vocabulary, so they sit with the rest of
what the tap knows about that API. The tables are data; nothing here branches on a provider.
The stream that writes these records is streams/audit_events.py; the OCSF view, ocsf.py.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import math
import re
import typing as t
from functools import cached_property

from tap_auditlogs.core.instants import NS_PER_SECOND, format_instant, parse_instant, read_epoch
from tap_auditlogs.output.ocsf import ENTITY, OcsfClass

if t.TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from tap_auditlogs.core.types import Context, Record

# ------------------------------------------------------------------------------ taxonomy

#: Every category, and what belongs in it.
CATEGORIES: dict[str, str] = {
    "authentication": "Sign-in and sign-out, sessions, SSO, identity providers, domains, MFA.",
    "authorization": "Roles, permission groups and access rules: what may be done by whom.",
    "membership": "People: invitations, members, their roles, users, provisioning.",
    "credential": "API tokens and keys, OAuth tokens, secrets, signing keys.",
    "configuration": "Settings of the organization or product: flag values, policies, variables.",
    "integration": "Links to other systems: webhooks, third-party integrations, proxies.",
    "resource": "What the product manages: repositories, scans, workflows, flags, VMs...",
    "billing": "Plans, subscriptions and seats.",
    "other": "Not classified: an event type the tap does not know (yet).",
}

#: Every operation, and what it means.
OPERATIONS: dict[str, str] = {
    "create": "Created, added, invited, connected, joined.",
    "update": "Changed, renamed, rotated, reordered, approved, applied.",
    "delete": "Deleted, removed, revoked, disconnected, left.",
    "enable": "Switched on.",
    "disable": "Switched off.",
    "execute": "Ran, triggered, synced or restarted something.",
    "login": "Signed in.",
    "logout": "Signed out, or a session was revoked.",
    "other": "Anything else, or unknown.",
}

#: Who acted.
ACTOR_TYPES: dict[str, str] = {
    "user": "A person (in the web app, a CLI, Slack...).",
    "api_key": "An API key or token.",
    "service": "The provider itself or an automated service.",
    "unknown": "The provider does not say.",
}

#: ``organization_id`` when the records name no organization (Nirvana: one organization
#: per API key, never named in its entries).
UNKNOWN_ORGANIZATION = "unknown"

#: (category, operation, target type or None) of one event type.
Taxon = tuple[str, str, "str | None"]
OTHER: Taxon = ("other", "other", None)
#: A row of a provider's table: the taxon and the OCSF class the event type is written as.
EventType = tuple[str, str, "str | None", OcsfClass]

#: The unified fields a provider's ``fields`` function may fill (all others are derived).
PROVIDER_FIELDS = (
    "organization_id",
    "organization_name",
    "event_id",
    "occurred_at",
    "actor_id",
    "actor_email",
    "actor_name",
    "actor_type",
    "target_id",
    "target_type",
    "target_name",
    "source_ip",
    "user_agent",
    "country_code",
    "status_code",
)


def normalize_action(action: str) -> str:
    """The lookup key of an event type: case, blanks, ``_`` and ``-`` do not matter.

    Socket's filter enum is PascalCase and its responses lowerCamel (``SSOLoginCompleted``
    may come back as ``sSOLoginCompleted`` or ``ssoLoginCompleted``); ConfigCat's item has
    the enum (``settingValueChanged``) and a label (``Setting value changed``).
    """
    return re.sub(r"[\s_\-]+", "", action).casefold()


@dataclasses.dataclass(frozen=True)
class UnifiedMapping:
    """How one provider's records read in ``audit_events`` (a provider module fills it in).

    * ``event_types``: every documented event type -> (category, operation, target type,
      OCSF class).
    * ``action``: the record's own type/action text.
    * ``fields``: the other unified fields of a record (``PROVIDER_FIELDS``), from the
      record and its partition; what it leaves out is null.
    * ``fallback``: for an action missing from the table, a classification from its
      documented grammar (Nirvana's ``resource.verb``); None: ``other`` (OCSF: ``ENTITY``).
    * ``derived``: the actions ``fallback`` reads, spelled out (rows of docs/ocsf.md).
    """

    event_types: Mapping[str, EventType]
    action: Callable[[Record], object]
    fields: Callable[[Record, Context], dict[str, t.Any]]
    fallback: Callable[[str], EventType | None] | None = None
    derived: Sequence[str] = ()

    @cached_property
    def _index(self) -> dict[str, EventType]:
        index: dict[str, EventType] = {}
        for name, taxon in self.event_types.items():
            key = normalize_action(name)
            if index.get(key, taxon) != taxon:
                raise ValueError(f"event types {name!r} and another one normalize alike")
            index[key] = taxon
        return index

    def is_mapped(self, action: str) -> bool:
        """True when ``action`` is in the provider's table."""
        return normalize_action(action) in self._index

    def classify(self, action: str | None) -> Taxon:
        """(category, operation, target type) of an action; ``OTHER`` when unknown."""
        found = self._row(action)
        return found[:3] if found else OTHER

    def ocsf_class(self, action: str | None) -> OcsfClass:
        """The OCSF class an action is written as; ``ENTITY`` when unknown."""
        found = self._row(action)
        return found[3] if found else ENTITY

    def _row(self, action: str | None) -> EventType | None:
        if not action:
            return None
        found = self._index.get(normalize_action(action))
        if found is None and self.fallback is not None:
            found = self.fallback(action)
        return found

    def unify(self, provider: str, record: Record, context: Context) -> dict[str, t.Any]:
        """The unified record of one provider record (``raw`` is a copy of it)."""
        action = _text(self.action(record))
        category, operation, target_type = self.classify(action)
        found = self.fields(record, context)
        unknown = set(found) - set(PROVIDER_FIELDS)
        if unknown:
            raise ValueError(f"{provider}: unknown unified fields {sorted(unknown)}")
        row: dict[str, t.Any] = {name: _text(found.get(name)) for name in PROVIDER_FIELDS}
        row.update(
            provider=provider,
            # Part of the primary key: never null nor "" (loaders turn "" into NULL).
            organization_id=row["organization_id"] or UNKNOWN_ORGANIZATION,
            event_id=row["event_id"] or "",
            occurred_at=occurred_at(found.get("occurred_at")),
            action=action,
            category=category,
            operation=operation,
            actor_type=row["actor_type"] if row["actor_type"] in ACTOR_TYPES else "unknown",
            target_type=row["target_type"] or target_type,
            status_code=_number(found.get("status_code")),
            raw=copy.deepcopy(record),
        )
        return row


def _text(value: object) -> str | None:
    """A string field: None and ``""`` are null, numbers become text."""
    if value is None or isinstance(value, (dict, list, bool)):
        return None
    text = str(value)
    return text if text.strip() else None


def _number(value: object) -> int | float | None:
    """A number field: an int or a finite float as sent; anything else (text, bool) is null."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return value if math.isfinite(value) else None


def as_object(value: object) -> dict[str, t.Any]:
    """A nested object of a record, or ``{}`` when it is null or not an object."""
    return value if isinstance(value, dict) else {}


def occurred_at(value: object) -> str | None:
    """``rfc3339_utc`` of an ISO 8601 instant, an epoch number (``instants.read_epoch``) in
    UTC with its unit's digits, else None (missing or unreadable: the provider stream warned)."""
    epoch = read_epoch(value)
    if epoch is not None:  # whole seconds: no digits; a fraction of one: nine
        digits = {"s": 9 if epoch[0] % NS_PER_SECOND else 0, "ms": 3, "us": 6}.get(epoch[1], 9)
        return format_instant(epoch[0], digits=digits)
    with contextlib.suppress(ValueError, OverflowError):
        return rfc3339_utc(value) if isinstance(value, str) else None
    return None


_FRACTION = re.compile(r"T\d{2}:\d{2}(?::\d{2})?(?:[.,](\d+))?")


def rfc3339_utc(value: str) -> str:
    """The instant in UTC (``Z``), with as many fractional digits as the provider gave.

    ``2026-01-02T03:04:05.1234567+00:00`` -> ``2026-01-02T03:04:05.1234567Z``; Torq's nine
    digits stay nine, Nirvana's trimmed ones stay trimmed.
    """
    ns = parse_instant(value, allow_naive=True)
    found = _FRACTION.search(value)
    digits = min(len(found.group(1) or ""), 9) if found else 0
    return format_instant(ns, digits=digits)
