"""``audit_events.ocsf``: the unified record as an OCSF 1.3.0 event (docs/ocsf.md).

Each provider's table of event types (output/unified.py ``UnifiedMapping``) names the class an
event type is written as: one of the ``OcsfClass`` constants here. ``ocsf_event`` builds
the object: the base event's attributes, the acting user, source and user agent, and the
class's own subject (``OCSF_SUBJECTS``). Every value goes through ``_Fitter``: what does not
fit its OCSF type (an IP or email address that is not one, text over 65,535 characters) goes
to ``unmapped`` whole, so that every object meets the schema's constraints (checked in
tests/test_ocsf.py against the official schema export).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
import time
import typing as t

from tap_auditlogs.core.instants import parse_instant

if t.TYPE_CHECKING:
    from collections.abc import Callable, Mapping

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
                if row["organization_id"] == UNKNOWN_NAME
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
