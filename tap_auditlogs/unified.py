"""``audit_events``: one table for every provider, and the taxonomy that classifies it.

What lives where, and why:

* Here: the unified record's fields, the taxonomy (every category and operation, with what
  it means), ``UnifiedMapping`` (what a provider fills in), the optional OCSF view, and
  the ``audit_events`` stream itself.
* In each provider module (its section "audit_events"): that provider's table of event
  types -> (category, operation, target type) and the small function that picks actor,
  target, source and organization out of one record. Event types are part of the
  provider's API vocabulary, so they sit with the rest of what the tap knows about that
  API (architecture.md: a provider module reads like the provider's API page, and a fifth
  provider is one new module). The tables are data; nothing here branches on a provider.

One pass feeds both tables. ``audit_events`` never calls an API. Every provider stream
hands each record it reads, exactly as the API sent it, to ``AuditEventsStream.write_event``
(from ``AuditLogStream.post_process``), which writes the unified record through this
stream's own record writing, so its stream maps and field selection apply; its
SCHEMA goes out once, before its first record. ``post_process`` runs for every record
whether or not the provider stream itself is selected, so:

* both selected: one request per page, two RECORDs per event;
* only ``audit_events`` selected: the provider stream still runs (see below) and writes
  its STATE, but none of its own SCHEMA or RECORD messages;
* only the provider stream selected: ``write_event`` returns at once.

Why the provider stream runs when only ``audit_events`` is selected: ``Tap.sync_all``
syncs a stream when ``stream.selected or stream.has_selected_descendents``, and
``has_selected_descendents`` is ``@t.final``: it reads ``child_streams``. The SDK fills
that list in ``load_streams`` (also final) only for a child class with one
``parent_stream_type``, which cannot name four provider classes, so this stream appends
itself to each provider stream's ``child_streams``. The SDK then syncs the provider
stream for its selected descendant, as for any parent; the provider streams yield no child
contexts (``AuditLogStream.generate_child_contexts``), so the SDK never syncs this stream
per record. ``parent_stream_type`` is set on the instance (not the class, which
``load_streams`` would try to wire), so ``sync_all`` skips this stream's own invocation
like any child's ("expected to be called by parent stream").

State: ``audit_events`` keeps no bookmark. The provider streams' bookmarks cover it: the
SDK writes the unified record inside its loop over ``get_records``, before it asks the
strategy for the next record, and the strategies checkpoint only after the last record of
a page came back from that loop. So every STATE that covers an event follows that event's
unified RECORD, and a run killed anywhere resumes (from the provider's state) without
losing a unified record, exactly as for the provider tables. The consequence: a provider
stream's state is shared by both tables, so selecting ``audit_events`` later does not
backfill it; run once with a fresh state (or a fresh Meltano state id) to fill it.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import ipaddress
import re
import time
import typing as t
from functools import cached_property

from singer_sdk import SchemaDirectory, StreamSchema
from singer_sdk import typing as th

from tap_auditlogs import schemas
from tap_auditlogs.client import AuditLogStream
from tap_auditlogs.instants import NS_PER_SECOND, format_instant, parse_instant, read_epoch
from tap_auditlogs.sdk import StreamHooks

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping, Sequence

    from singer_sdk import Tap

    from tap_auditlogs.providers import Provider
    from tap_auditlogs.strategies import Context, Record

STREAM_NAME = "audit_events"

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
EventType = tuple[str, str, "str | None", "OcsfClass"]

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
            status_code=_integer(found.get("status_code")),
            raw=copy.deepcopy(record),
        )
        return row


def _text(value: object) -> str | None:
    """A string field: None and ``""`` are null, numbers become text."""
    if value is None or isinstance(value, (dict, list, bool)):
        return None
    text = str(value)
    return text if text.strip() else None


def _integer(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


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


# ---------------------------------------------------------------------------------- OCSF

OCSF_VERSION = "1.3.0"
_IAM = (3, "Identity & Access Management")


@dataclasses.dataclass(frozen=True)
class OcsfClass:
    """An OCSF 1.3.0 event class an event type is written as (docs/ocsf.md).

    ``activities``: our operation -> (``activity_id``, its caption); any other operation is
    99 ``Other``. ``subject``: what the class's required subject describes: ``actor`` (the
    user who signed in), ``target`` (the account, key or entity changed).
    """

    uid: int
    name: str
    category_uid: int
    category_name: str
    activities: Mapping[str, tuple[int, str]]
    subject: str = "target"


#: Logins, logouts, sign-in steps: Authentication (3002); ``user`` is who signed in.
AUTHENTICATION = OcsfClass(
    3002, "Authentication", *_IAM, {"login": (1, "Logon"), "logout": (2, "Logoff")}, "actor"
)
#: The lifecycle of users, members, invitations, API keys and tokens: Account Change (3001).
ACCOUNT = OcsfClass(
    3001,
    "Account Change",
    *_IAM,
    {"create": (1, "Create"), "enable": (2, "Enable"), "disable": (5, "Disable"),
     "delete": (6, "Delete")},
)  # fmt: skip
#: A second factor switched on or off for an account: Account Change (3001), MFA activities.
MFA = OcsfClass(
    3001,
    "Account Change",
    *_IAM,
    {"enable": (10, "MFA Factor Enable"), "disable": (11, "MFA Factor Disable")},
)
#: A user's role or access granted, changed or taken: User Access Management (3005).
ACCESS = OcsfClass(
    3005,
    "User Access Management",
    *_IAM,
    {"create": (1, "Assign Privileges"), "update": (1, "Assign Privileges"),
     "delete": (2, "Revoke Privileges")},
)  # fmt: skip
#: Create/update/delete of the vendor's own objects: Entity Management (3004), "activity
#: by a user at a management console ... on a managed entity" (API Activity, 6003, needs a
#: source endpoint most of these logs do not have). Also every event type not in a table.
ENTITY = OcsfClass(
    3004,
    "Entity Management",
    *_IAM,
    {"create": (1, "Create"), "update": (3, "Update"), "delete": (4, "Delete"),
     "enable": (8, "Enable"), "disable": (9, "Disable")},
)  # fmt: skip
OCSF_CLASSES = (AUTHENTICATION, ACCOUNT, MFA, ACCESS, ENTITY)
OTHER_ACTIVITY = (99, "Other")
#: What stands in for a name the class requires when the vendor gives none (Socket names
#: no target; some events no actor).
UNKNOWN_NAME = "unknown"

#: Our actor type -> OCSF User ``type_id`` and its caption (99: the caption is ours).
OCSF_USER_TYPES: dict[str, tuple[int, str]] = {
    "user": (1, "User"),
    "service": (3, "System"),
    "api_key": (99, "API Key"),
    "unknown": (0, "Unknown"),
}
#: OCSF's limits: ``string_t`` at most 65,535 characters, ``ip_t`` at most 40; ``email_t``
#: matches this pattern (the schema's own regex).
OCSF_MAX_TEXT = 65_535
OCSF_MAX_IP = 40
OCSF_EMAIL = re.compile(r"[a-zA-Z0-9!#$%&'*+-/=?^_`{|}~.]+@[a-zA-Z0-9-]+\.[a-zA-Z0-9-.]+")

UNIFIED_SETTINGS = (
    th.Property(
        "unified_ocsf",
        th.BooleanType,
        default=False,
        description=(
            "Add an `ocsf` object to every audit_events record: the event as OCSF "
            f"{OCSF_VERSION}, in the class its event type maps to (docs/ocsf.md)."
        ),
    ),
)


class _Fitter:
    """Fits values into OCSF's typed fields; what does not fit goes to ``unmapped`` whole."""

    def __init__(self, unmapped: dict[str, t.Any]) -> None:
        self.unmapped = unmapped

    def text(self, field: str, value: object) -> str | None:
        """A ``string_t``: cut to 65,535 characters (the whole value in ``unmapped``)."""
        if value is None:
            return None
        text = str(value)
        if len(text) > OCSF_MAX_TEXT:
            self.unmapped[field] = text
            return text[:OCSF_MAX_TEXT]
        return text

    def ip(self, field: str, value: object) -> str | None:
        """An ``ip_t``, or None (the value in ``unmapped``) when it is not an IP address."""
        if value is None:
            return None
        text = str(value)
        try:
            ipaddress.ip_address(text)
        except ValueError:
            self.unmapped[field] = text
            return None
        if len(text) > OCSF_MAX_IP:
            self.unmapped[field] = text
            return None
        return text

    def email(self, field: str, value: object) -> str | None:
        """An ``email_t``, or None (the value in ``unmapped``) when it is not an address."""
        if value is None:
            return None
        text = str(value)
        if len(text) > OCSF_MAX_TEXT or not OCSF_EMAIL.fullmatch(text):
            self.unmapped[field] = text
            return None
        return text


def ocsf_event(row: Mapping[str, t.Any], vendor: str, ocsf: OcsfClass = ENTITY) -> dict[str, t.Any]:
    """The unified record as an OCSF 1.3.0 event of class ``ocsf`` (docs/ocsf.md).

    Every class gets the base event's attributes (``time`` in milliseconds, OCSF's
    timestamp type; ``metadata.original_time`` keeps the provider's full precision;
    ``metadata.event_code`` the vendor's event type), the acting user when the vendor names
    one, the source IP and user agent when they are valid, and its own subject: ``user``
    (Authentication: who signed in; Account Change, User Access Management: the account
    changed), ``entity`` (Entity Management). Our category, operation and organization go in
    ``unmapped``, with every value that does not fit its typed field, whole. An optional
    object with nothing to say is left out.
    """
    operation = str(row["operation"])
    activity_id, activity_name = ocsf.activities.get(operation, OTHER_ACTIVITY)
    status_code = row.get("status_code")
    status_id, status = _ocsf_status(status_code)
    unmapped = _present(
        {
            "provider": row["provider"],
            "organization_id": row["organization_id"],
            "organization_name": row.get("organization_name"),
            "category": row["category"],
            "operation": operation,
        }
    )
    fit = _Fitter(unmapped)
    event: dict[str, t.Any] = {
        "class_uid": ocsf.uid,
        "class_name": ocsf.name,
        "category_uid": ocsf.category_uid,
        "category_name": ocsf.category_name,
        "activity_id": activity_id,
        "activity_name": activity_name,
        "type_uid": ocsf.uid * 100 + activity_id,
        "type_name": f"{ocsf.name}: {activity_name}",
        "severity_id": 1,
        "severity": "Informational",
        "time": _ocsf_time(row["occurred_at"], unmapped),
        "status_id": status_id,
        "status": status,
        "metadata": _present(
            {
                "version": OCSF_VERSION,
                "product": {"name": f"{vendor} audit log", "vendor_name": vendor},
                "uid": fit.text("event_id", row["event_id"]),
                "event_code": fit.text("action", row.get("action")),
                "original_time": row["occurred_at"],
                "tenant_uid": None
                if row["organization_id"] == UNKNOWN_ORGANIZATION
                else fit.text("organization_id", row["organization_id"]),
            }
        ),
    }
    if status_code is not None:
        event["status_code"] = str(status_code)
    actor = _ocsf_user(row, fit)
    if actor is not None:
        event["actor"] = {"user": actor}
        if ocsf is ACCESS:  # its actor comes with the host profile
            event["metadata"]["profiles"] = ["host"]
    ip = fit.ip("source_ip", row.get("source_ip"))
    if ip is not None:
        endpoint: dict[str, t.Any] = {"ip": ip}
        country = fit.text("country_code", row.get("country_code"))
        if country:
            endpoint["location"] = {"country": country}
        event["src_endpoint"] = endpoint
    elif row.get("country_code"):
        unmapped["country_code"] = row["country_code"]
    user_agent = fit.text("user_agent", row.get("user_agent"))
    if user_agent:
        event["http_request"] = {"user_agent": user_agent}
    target = _present(
        {
            "uid": fit.text("target_id", row.get("target_id")),
            "name": fit.text("target_name", row.get("target_name")),
        }
    )
    OCSF_SUBJECTS[ocsf.uid](event, _Parts(row, actor, target, vendor))
    event["unmapped"] = unmapped
    return event


def _ocsf_user(row: Mapping[str, t.Any], fit: _Fitter) -> dict[str, t.Any] | None:
    """The acting user, or None when the vendor names no one (not uid, name nor email)."""
    user_type_id, user_type = OCSF_USER_TYPES[str(row["actor_type"])]
    email = fit.email("actor_email", row.get("actor_email"))
    user = _present(
        {
            "uid": fit.text("actor_id", row.get("actor_id")),
            # An email address is the user name of these products when they send no name.
            "name": fit.text("actor_name", row.get("actor_name")) or email,
            "email_addr": email,
        }
    )
    if not user.get("uid") and not user.get("name"):
        return None
    return {**user, "type_id": user_type_id, "type": user_type}


def _target_user(target: dict[str, t.Any], row: Mapping[str, t.Any]) -> dict[str, t.Any]:
    """The account an Account Change or User Access event changed (``unknown`` unnamed)."""
    user = dict(target) or {"name": UNKNOWN_NAME}
    kind = row.get("target_type")
    user_type = OCSF_USER_TYPES["api_key"] if kind in OCSF_KEY_TYPES else (0, "Unknown")
    if kind in OCSF_PERSON_TYPES:
        user_type = OCSF_USER_TYPES["user"]
    return {**user, "type_id": user_type[0], "type": user_type[1]}


#: Target types that are keys or tokens (an Account Change's ``user`` is then of type 99
#: ``API Key``) and that are people.
OCSF_KEY_TYPES = frozenset({"api_token", "api_key", "oauth_token", "sdk_key"})
OCSF_PERSON_TYPES = frozenset({"user", "member", "invitation"})


class _Parts(t.NamedTuple):
    """What a class's subject is made of."""

    row: Mapping[str, t.Any]
    actor: dict[str, t.Any] | None
    target: dict[str, t.Any]
    vendor: str


def _authentication(event: dict[str, t.Any], parts: _Parts) -> None:
    """``user``: who signed in (the actor); ``service``: the vendor's product."""
    event["user"] = parts.actor or {"name": UNKNOWN_NAME, "type_id": 0, "type": "Unknown"}
    event["service"] = {"name": parts.vendor}


def _account(event: dict[str, t.Any], parts: _Parts) -> None:
    """``user``: the account, member, invitation, key or token changed."""
    event["user"] = _target_user(parts.target, parts.row)


def _access(event: dict[str, t.Any], parts: _Parts) -> None:
    """``user``: whose access changed; ``privileges``: the vendor's event type (the APIs
    name no role)."""
    event["user"] = _target_user(parts.target, parts.row)
    event["privileges"] = [event["metadata"].get("event_code") or UNKNOWN_NAME]


def _entity(event: dict[str, t.Any], parts: _Parts) -> None:
    """``entity``: the vendor's object that changed (``unknown`` when it names none)."""
    entity = dict(parts.target) or {"name": UNKNOWN_NAME}
    if parts.row.get("target_type"):
        entity["type"] = parts.row["target_type"]
    event["entity"] = entity


#: class_uid -> the function that adds the class's own subject attributes.
OCSF_SUBJECTS: dict[int, Callable[[dict[str, t.Any], _Parts], None]] = {
    AUTHENTICATION.uid: _authentication,
    ACCOUNT.uid: _account,
    ACCESS.uid: _access,
    ENTITY.uid: _entity,
}


def _ocsf_time(occurred_at: str | None, unmapped: dict[str, t.Any]) -> int:
    """``time`` in ms; the time of writing (``unmapped.time_is_processed_time``) for an event
    sent without a readable instant (the class requires a time)."""
    if occurred_at:
        return parse_instant(occurred_at) // 1_000_000
    unmapped["time_is_processed_time"] = True
    return time.time_ns() // 1_000_000


def _ocsf_status(code: object) -> tuple[int, str]:
    """OCSF ``status_id``/``status`` from an HTTP-like status code (0 Unknown without one)."""
    if isinstance(code, int) and 100 <= code < 400:
        return 1, "Success"
    if isinstance(code, int) and 400 <= code < 600:
        return 2, "Failure"
    return 0, "Unknown"


def _present(values: Mapping[str, t.Any]) -> dict[str, t.Any]:
    return {key: value for key, value in values.items() if value is not None}


# -------------------------------------------------------------------------------- stream


class AuditEventsStream(StreamHooks):
    """Every event of every configured provider in one shape (fed by the provider streams)."""

    name = STREAM_NAME
    primary_keys = ("provider", "organization_id", "event_id")
    replication_key = "occurred_at"
    is_sorted = False
    check_sorted = False
    #: Opt-in: it repeats every event of the provider tables. Select it in the catalog
    #: (``select: [audit_events.*]`` in Meltano).
    selected_by_default = False
    schema = StreamSchema(SchemaDirectory(schemas))

    def __init__(self, tap: Tap, feeders: Sequence[tuple[Provider, AuditLogStream]]) -> None:
        """Create the stream and register it with the provider streams that feed it."""
        super().__init__(tap)
        self._mappings: dict[str, tuple[UnifiedMapping, str]] = {}
        self._schema_written = False
        self._ocsf = bool(self.config.get("unified_ocsf"))
        for provider, stream in feeders:
            if provider.unified is None:
                continue
            self._mappings[stream.provider] = (provider.unified, provider.label)
            stream.child_streams.append(self)  # so that has_selected_descendents sees us
            stream.event_sinks.append(self)
        # On the instance: Tap.sync_all skips a child stream's own invocation.
        self.parent_stream_type = AuditLogStream

    def write_event(self, source: AuditLogStream, record: Record, context: Context) -> None:
        """Write the unified record of ``record``, read by ``source`` (when selected)."""
        if not self._selected:
            return
        found = self._mappings.get(source.provider)
        if found is None:
            return
        mapping, label = found
        row = mapping.unify(source.provider, record, context)
        if not row["event_id"]:  # sent without one: the provider table's substitute id
            row["event_id"] = source.id_of(record)
        row["organization_name"] = row["organization_name"] or source.organization_name(context)
        if self._ocsf:
            row["ocsf"] = ocsf_event(row, label, mapping.ocsf_class(row["action"]))
        if not self._schema_written:
            self.write_schema()
            self._schema_written = True
        self.write_record(row)

    @cached_property
    def _selected(self) -> bool:
        """``selected``, looked up once: the catalog does not change during a run."""
        return self.selected

    def get_records(self, context: Context) -> Iterator[Record]:
        """Nothing: the records are written while the provider streams read theirs."""
        yield from ()

    def finalize_state_progress_markers(self, state: dict | None = None) -> None:
        """Nothing: ``audit_events`` keeps no state; the provider streams' state covers it."""
