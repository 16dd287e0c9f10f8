"""Nirvana Labs audit log: `GET /v1/audit_logs`, base `.../nirvana` (one organization per key).

Reads like the API page (https://docs.nirvanalabs.io/api/resources/audit_logs/methods/list)
and the August-2026 Go SDK (nirvana-labs/nirvana-go, audit_logs/auditlog.go): auth
(`Authorization: Bearer <API key>`), one route, query parameters
(`limit` 10..100, default 10; opaque `cursor`; the August-2026 `created_at_min`/`created_at_max`,
inclusive RFC 3339, and `sort` "field:asc|desc,..." over `created_at`, `status_code`), response
`{"items": [...], "pagination": {"next_cursor", "previous_cursor", "total_count"}}`, error body
`{"message": ...}`. Each UNCERTAIN reading is a switch (tables below):

* `nirvana_filters`: "honoured" (the live API has the new parameters) or "ignored" (it does
  not: `created_at_*` and `sort` are dropped silently and the cursor knows nothing of them);
* `nirvana_order`: the order when no `sort` applies ("desc", "asc", "random");
* `nirvana_end_marker`: the last page's `next_cursor` (null, `""` or missing);
* `nirvana_total_count`: whether `pagination.total_count` is sent.

Cursors are opaque base64url strings holding an offset and, when filters are honoured, a digest
of the filters and sort: a cursor is "only valid for the same filters and sort order" (400 else).
Timestamps are served like Go's RFC3339Nano (trailing zeros trimmed, so precision varies).
"""

from __future__ import annotations

import base64
import binascii
import calendar
import hashlib
import random
import re
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from .odd import draw_odd
from .provider import ApiRequest, Chaos, Provider, Response, Route, TruthEvent
from .scenario import COMMON_SWITCHES, Switch

API_KEY = "nirvana_emulator_api_key_do_not_leak"
UTC = timezone.utc

# action -> (HTTP method, request path, target type or None)
ACTIONS: dict[str, tuple[str, str, str | None]] = {
    "vm.created": ("POST", "/v1/compute/vms", "vm"),
    "vm.updated": ("PATCH", "/v1/compute/vms/{id}", "vm"),
    "vm.deleted": ("DELETE", "/v1/compute/vms/{id}", "vm"),
    "vm.restarted": ("POST", "/v1/compute/vms/{id}/restart", "vm"),
    "volume.created": ("POST", "/v1/compute/volumes", "volume"),
    "volume.deleted": ("DELETE", "/v1/compute/volumes/{id}", "volume"),
    "vpc.created": ("POST", "/v1/networking/vpcs", "vpc"),
    "vpc.deleted": ("DELETE", "/v1/networking/vpcs/{id}", "vpc"),
    "firewall_rule.created": ("POST", "/v1/networking/firewall_rules", "firewall_rule"),
    "api_key.created": ("POST", "/v1/api_keys", "api_key"),
    "api_key.deleted": ("DELETE", "/v1/api_keys/{id}", "api_key"),
    "organization.updated": ("PATCH", "/v1/organization", None),
}
USER_AGENTS = (
    "nirvana-go/1.52.0",
    "nirvana-typescript/1.51.0 node/22.5.1",
    "terraform-provider-nirvana/1.9.0",
    "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
)
STATUS_CODES = (200, 200, 201, 201, 202, 204, 400, 403, 404, 422)
PEOPLE = ("Ada Lovelace", "Grace Hopper", "Linus Torvalds", "Margaret Hamilton", None)

# ---- UNCERTAIN readings, as tables ------------------------------------------------------
END_MARKERS: dict[str, dict[str, Any]] = {
    "null": {"next_cursor": None},
    "empty": {"next_cursor": ""},
    "missing": {},
}


def _sort_key(ev: TruthEvent) -> tuple[datetime, str]:
    return ev.at, ev.id


def _shuffle_key(seed: int) -> Callable[[TruthEvent], bytes]:
    # A fixed pseudo-random position per event: insertions never reorder the others.
    return lambda ev: hashlib.sha256(f"{seed}:{ev.id}".encode()).digest()


# The order when no `sort` applies.
ORDERS: dict[str, Callable[[list[TruthEvent], int], list[TruthEvent]]] = {
    "desc": lambda evs, seed: sorted(evs, key=_sort_key, reverse=True),
    "asc": lambda evs, seed: sorted(evs, key=_sort_key),
    "random": lambda evs, seed: sorted(evs, key=_shuffle_key(seed)),
}
SORT_FIELDS: dict[str, Callable[[TruthEvent], Any]] = {
    "created_at": lambda ev: _ns(ev.at),
    "status_code": lambda ev: ev.item["status_code"],
}
FILTERS = ("created_at_min", "created_at_max", "sort")
_RFC3339 = re.compile(
    r"^(\d{4}-\d{2}-\d{2})[Tt](\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|z|[+-]\d{2}:\d{2})$"
)


class NirvanaProvider(Provider):
    """Nirvana Labs' audit log of the API key's organization."""

    name = "nirvana"
    resume_bound = 100  # one page
    list_key = "items"
    api_root = ""
    switches = {
        **COMMON_SWITCHES,
        "orgs": Switch(("acme",), runtime=False, convert=tuple,
                       doc="the key's organization (only the first is served)"),
        "filters": Switch("honoured", choices=("honoured", "ignored"),
                          doc="whether created_at_min/created_at_max/sort are applied"),
        "order": Switch("desc", choices=tuple(ORDERS), doc="order when no sort applies"),
        "end_marker": Switch("null", choices=tuple(END_MARKERS), doc="last page's next_cursor"),
        "total_count": Switch(True, choices=(True, False), doc="send pagination.total_count"),
        "cursor": Switch("normal", choices=("normal", "repeat"),
                         doc="repeat: every next_cursor points at the second page (a loop)"),
    }  # fmt: skip
    routes = (Route("GET", r"/v1/audit_logs", "audit_logs"),)

    # ---- auth ---------------------------------------------------------------------------
    @classmethod
    def credentials(cls) -> dict[str, str]:
        """The tap's credential setting."""
        return {"api_key": API_KEY}

    def authenticate(self, req: ApiRequest) -> Response | None:
        """`Authorization: Bearer <API key>`."""
        scheme, _, value = req.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and value.strip() == API_KEY:
            return None
        return self.error(401, "Unauthorized: missing or invalid API key")

    # ---- data ---------------------------------------------------------------------------
    def setup(self) -> None:
        """A few users and API keys acting in the organization."""
        rng = self.rng
        self.actors: list[dict[str, Any]] = [
            {"id": str(uuid.UUID(int=rng.getrandbits(128), version=4)), "name": name,
             "type": "user"}
            for name in PEOPLE
        ] + [
            {"id": str(uuid.UUID(int=rng.getrandbits(128), version=4)), "name": name,
             "type": "api_key"}
            for name in ("terraform", "ci-deploy", None)
        ]  # fmt: skip

    def make_event(self, org: str, at: datetime) -> TruthEvent:
        """One audit-log entry shaped like Nirvana's (µs precision, Go-style trimmed)."""
        rng = self.rng
        at = at.astimezone(UTC)
        if rng.random() < 0.1:
            at = at.replace(microsecond=0)  # served without a fraction
        action = rng.choice(tuple(ACTIONS))
        method, path, target_type = ACTIONS[action]
        target_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        created_at = rfc3339_nano(at)
        item: dict[str, Any] = {
            "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "action": action,
            "actor": dict(rng.choice(self.actors)),
            "client_ip": f"198.51.100.{rng.randint(1, 254)}",
            "created_at": created_at,
            "method": method,
            "path": path.format(id=target_id),
            "status_code": rng.choice(STATUS_CODES),
            "user_agent": rng.choice(USER_AGENTS),
        }
        if target_type is not None:
            item["target"] = {"id": target_id, "type": target_type}
        elif rng.random() < 0.5:
            item["target"] = None  # else absent
        return TruthEvent(org=org, id=item["id"], ts=created_at, item=item, at=at)

    # ---- routes -------------------------------------------------------------------------
    def audit_logs(self, req: ApiRequest) -> Response:
        """One page of the key's organization's audit log."""
        q = req.query
        limit = _int(q.get("limit", "10"))
        if limit is None or not 10 <= limit <= 100:
            return self.error(400, "limit must be an integer between 10 and 100")
        honoured = self.opt("filters") == "honoured"
        filters: list[tuple[Callable[[int, int], bool], int]] = []
        sort_terms: list[tuple[str, bool]] = []
        if honoured:
            for name, keep in (("created_at_min", _ge), ("created_at_max", _le)):
                if name not in q:
                    continue
                bound = parse_rfc3339_ns(q[name])
                if bound is None:
                    return self.error(400, f"{name} must be an RFC 3339 date-time")
                filters.append((keep, bound))
            if q.get("sort"):
                parsed = _sort_terms(q["sort"])
                if parsed is None:
                    return self.error(400, f"invalid sort: {q['sort']!r}")
                sort_terms = parsed
        order = self.opt("order")

        def build(events: list[TruthEvent]) -> list[TruthEvent]:
            for keep, bound in filters:
                events = [ev for ev in events if keep(_ns(ev.at), bound)]
            ordered = ORDERS[order](events, self.scenario.seed)
            for field, descending in reversed(sort_terms):  # stable sorts, last term first
                ordered.sort(key=SORT_FIELDS[field], reverse=descending)
            return ordered

        # The cursor's offset is not part of the view: every page is a slice of it.
        key = (tuple((keep.__name__, bound) for keep, bound in filters), tuple(sort_terms), order)
        ordered = self.view(self.orgs[0], key, build)
        digest = _digest(q) if honoured else ""
        offset = 0
        if q.get("cursor"):
            decoded = _decode_cursor(q["cursor"])
            if decoded is None or decoded[1] != digest:
                return self.error(400, "invalid cursor for these filters and sort order")
            offset = decoded[0]
        items = [dict(ev.item) for ev in ordered[offset : offset + limit]]
        more = offset + limit < len(ordered)
        advance = self.opt("cursor") == "normal"
        pagination: dict[str, Any] = (
            {"next_cursor": _encode_cursor(offset + limit if advance else limit, digest)}
            if more
            else dict(END_MARKERS[self.opt("end_marker")])
        )
        pagination["previous_cursor"] = (
            _encode_cursor(max(0, offset - limit), digest) if offset > 0 else None
        )
        if self.opt("total_count"):
            pagination["total_count"] = len(ordered)
        return Response(200, {"items": items, "pagination": pagination})

    @classmethod
    def chaos(cls, rng: random.Random, events_per_org: int) -> Chaos:
        """Filters honoured or ignored, in any order; odd ids and times (odd.py)."""
        filters = rng.choice(("honoured", "honoured", "ignored"))
        order = rng.choice(("desc", "desc", "asc", "random"))
        odd = draw_odd(rng)
        switches = {"nirvana_filters": filters, "nirvana_order": order, "nirvana_odd_values": odd}
        what = f"nirvana {filters}/{order}" + (f" {'+'.join(odd)}" if odd else "")
        return Chaos(switches=switches, what=what)


def rfc3339_nano(at: datetime) -> str:
    """Like Go's RFC3339Nano: `2026-11-20T10:11:12.3456Z`, `2026-11-20T10:11:12Z`."""
    at = at.astimezone(UTC)
    fraction = f"{at.microsecond:06d}".rstrip("0")
    return at.strftime("%Y-%m-%dT%H:%M:%S") + (f".{fraction}" if fraction else "") + "Z"


def parse_rfc3339_ns(text: str) -> int | None:
    """An RFC 3339 date-time as ns since the epoch (all nine fraction digits kept)."""
    found = _RFC3339.match(text.strip())
    if not found:
        return None
    day, clock, fraction, offset = found.groups()
    try:
        moment = datetime.strptime(f"{day}T{clock}", "%Y-%m-%dT%H:%M:%S")
    except ValueError:
        return None
    seconds = calendar.timegm(moment.timetuple())
    if offset not in ("Z", "z"):
        sign = 1 if offset[0] == "+" else -1
        seconds -= sign * (int(offset[1:3]) * 3600 + int(offset[4:6]) * 60)
    return seconds * 1_000_000_000 + int((fraction or "0").ljust(9, "0"))


def _ns(at: datetime) -> int:
    return calendar.timegm(at.utctimetuple()) * 1_000_000_000 + at.microsecond * 1000


def _ge(value: int, bound: int) -> bool:
    return value >= bound


def _le(value: int, bound: int) -> bool:
    return value <= bound


def _sort_terms(text: str) -> list[tuple[str, bool]] | None:
    """`created_at:asc,status_code:desc` -> [(field, descending)]; None if invalid."""
    terms = []
    for term in text.split(","):
        field, _, direction = term.strip().partition(":")
        if field not in SORT_FIELDS or direction not in ("asc", "desc"):
            return None
        terms.append((field, direction == "desc"))
    return terms


def _digest(query: dict[str, str]) -> str:
    """What a cursor remembers of the query: the filters and the sort."""
    text = "&".join(f"{name}={query.get(name, '')}" for name in FILTERS)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _encode_cursor(offset: int, digest: str) -> str:
    return base64.urlsafe_b64encode(f"{offset}:{digest}".encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[int, str] | None:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        text, _, digest = raw.partition(":")
        offset = int(text)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    return (offset, digest) if offset >= 0 else None


def _int(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


PROVIDER = NirvanaProvider
