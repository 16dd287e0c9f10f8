"""ConfigCat Public Management API audit log: `GET /v2/organizations/{organizationId}/auditlogs`.

Base URL for the tap: `.../configcat`. Reads like the API pages
(https://configcat.com/docs/api/reference/get-organization-auditlogs-v-2/, and -auditlogs for v1
with its 7-day default and 30-day span): auth (HTTP Basic with Public
API credentials), routes (organizations, v2 and deprecated v1 audit logs), query parameters
(`fromUtcDateTime`/`toUtcDateTime` at most 30 days apart, the last 7 days without them;
`pageNumber` from 1, `pageSize` 1..100; `auditLogType`, `productId`, `configId`,
`environmentId`), newest-first pages, `{"data", "paging"}` envelope, 400 bodies
`{"field": ["message"]}`, `X-Rate-Limit-Remaining`/`X-Rate-Limit-Reset` on every answer.
Timestamps have `+00:00` and 0 to 7 fractional digits (ticks, trailing zeros trimmed).
Each UNCERTAIN reading is a switch (tables below).
"""

from __future__ import annotations

import base64
import binascii
import calendar
import random
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any, ClassVar

from ..data import documented
from .odd import draw_odd
from .provider import ApiRequest, Chaos, Provider, Response, Route, TruthEvent, utcnow
from .scenario import COMMON_SWITCHES, Switch

USERNAME = "configcat_emulator_user"
PASSWORD = "configcat_emulator_password_do_not_leak"
UTC = timezone.utc
NS = 1_000_000_000
DAY_NS = 86_400 * NS
DEFAULT_SPAN_NS = 7 * DAY_NS  # no dates: the last 7 days
DEFAULT_PAGE_SIZE = 100

ORG_IDS = (
    "08d8c7a4-6f5e-4b0c-9b8e-1a2b3c4d5e6f",
    "5a1f0c3e-2d4b-4e8a-9c7d-0f1e2d3c4b5a",
    "c0ffee00-1234-4abc-8def-0123456789ab",
)
ORG_NAMES = ("Acme Flags", "Globex Features", "Initech Toggles", "Umbrella Rollouts")

# ConfigCat's AuditLogType enum (lowerCamel, as the query and items use it), copied in
# tests/data with its source: the current generation, and every value, with those earlier
# generations listed (old items carry them; the filter takes them all).
CURRENT_AUDIT_LOG_TYPES: tuple[str, ...] = documented("configcat_audit_log_types", earlier=False)
AUDIT_LOG_TYPES: tuple[str, ...] = documented("configcat_audit_log_types")

# ---- UNCERTAIN readings, as tables ------------------------------------------------------
# Are fromUtcDateTime / toUtcDateTime inclusive? (lower test, upper test) on nanoseconds.
BOUNDS: dict[str, tuple[Callable[[int, int], bool], Callable[[int, int], bool]]] = {
    "inclusive": (lambda ts, lo: ts >= lo, lambda ts, hi: ts <= hi),
    "half_open": (lambda ts, lo: ts >= lo, lambda ts, hi: ts < hi),
    "exclusive": (lambda ts, lo: ts > lo, lambda ts, hi: ts < hi),
}

# What the deprecated v1 endpoint answers since ConfigCat's 2026-06-01 redirect to v2.
V1_MODES = {
    "array": "a bare array of every item in the window (the documented v1)",
    "redirect": "the v2 envelope with default pagination (first page, 100 items, paging)",
    "redirect_fixed": "the v2 envelope, default pagination forced: page 1 whatever is asked",
    "array_first_page": "a bare array cut to the first default page (100 newest items)",
    "http_redirect": "HTTP 301 to the v2 URL",
}

# Item shapes: the current spec (2026-06 on) and the older one (Go client 2024, Java to 2025-11).
GENERATIONS = ("current", "old")


class ConfigCatProvider(Provider):
    """ConfigCat's organizations and organization audit-log routes (v2 and v1)."""

    name = "configcat"
    id_field, time_field = "auditLogId", "auditLogDateTime"
    one_org: ClassVar[Mapping[str, Any]] = {"configcat_orgs": ORG_IDS[:1]}
    first_data_request = 2  # 1: GET /v1/organizations
    type_parameter = "auditLogType"
    list_key = "data"
    optional_envelope = "paging"  # nullable in the spec: the page size says the rest
    api_root = ""
    switches = {
        **COMMON_SWITCHES,
        "orgs": Switch(ORG_IDS, runtime=False, convert=tuple, doc="organization ids (uuids)"),
        "v1_mode": Switch("array", choices=tuple(V1_MODES), doc="what v1 answers"),
        "item_generation": Switch("current", choices=GENERATIONS, runtime=False,
                                  doc="current items (modelVersion) or old (changeSetId)"),
        "bounds": Switch("inclusive", choices=tuple(BOUNDS), doc="window bounds inclusive?"),
        "max_span_days": Switch(30, doc="to - from above this many days: 400 (None: no limit)"),
        "types": Switch("random", choices=("random", "cycle"), runtime=False,
                        doc="event types: drawn at random (of the item generation's enum), "
                            "or every documented type, earlier ones too, in turn"),
        "page_number": Switch("honoured", choices=("honoured", "ignored"),
                              doc="ignored: v2 serves page 1 whatever is asked, paging null"),
    }  # fmt: skip
    routes = (
        Route("GET", r"/v1/organizations", "organizations"),
        Route("GET", r"/v2/organizations/(?P<org>[^/]+)/auditlogs", "audit_logs_v2"),
        Route("GET", r"/v1/organizations/(?P<org>[^/]+)/auditlogs", "audit_logs_v1"),
    )

    # ---- auth ---------------------------------------------------------------------------
    @classmethod
    def credentials(cls) -> dict[str, str]:
        """The tap's credential settings."""
        return {"username": USERNAME, "password": PASSWORD}

    def authenticate(self, req: ApiRequest) -> Response | None:
        """HTTP Basic with the Public API username and password."""
        scheme, _, value = req.headers.get("authorization", "").partition(" ")
        try:
            pair = base64.b64decode(value.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            pair = ""
        if scheme.lower() == "basic" and pair == f"{USERNAME}:{PASSWORD}":
            return None
        resp = self.error(401, "Unauthorized")
        resp.headers["WWW-Authenticate"] = 'Basic realm="ConfigCat Public API"'
        return resp

    def error(self, status: int, message: str) -> Response:
        """ASP.NET problem details (400s with field errors are built by the handlers)."""
        body = {"title": message, "status": status}
        return Response(status, body, headers=self._rate_headers())

    def reset_headers(self, seconds: float) -> dict[str, str] | None:
        """``X-Rate-Limit-Reset``, the documented header, at the next whole second."""
        at = utcnow() + timedelta(seconds=seconds)
        at = at.replace(microsecond=0) + timedelta(seconds=1 if at.microsecond else 0)
        return {
            "X-Rate-Limit-Remaining": "0",
            "X-Rate-Limit-Reset": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }

    def _rate_headers(self) -> dict[str, str]:
        status = self.host.quota_status(self.name)
        return {
            "X-Rate-Limit-Remaining": str(status.remaining),
            "X-Rate-Limit-Reset": status.resets_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }

    def dispatch(self, route: Route, params: dict[str, str], req: ApiRequest) -> Response:
        """Every answer carries the rate-limit headers."""
        resp = super().dispatch(route, params, req)
        resp.headers.update(self._rate_headers())
        return resp

    # ---- data ---------------------------------------------------------------------------
    def setup(self) -> None:
        """Org names; per org two products with two configs and two environments each."""
        rng = self.rng
        self.org_names = {
            org: ORG_NAMES[i % len(ORG_NAMES)] + ("" if i < len(ORG_NAMES) else f" {i}")
            for i, org in enumerate(self.orgs)
        }
        self.scopes: dict[str, list[dict[str, str]]] = {}
        for org in self.orgs:
            scopes = []
            for product in rng.sample(("Mobile", "Web", "Backend", "Billing"), k=2):
                product_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
                configs = [(str(uuid.UUID(int=rng.getrandbits(128), version=4)), name)
                           for name in ("Main", "Experiments")]  # fmt: skip
                envs = [(str(uuid.UUID(int=rng.getrandbits(128), version=4)), name)
                        for name in ("Production", "Staging")]  # fmt: skip
                scopes += [
                    {"productId": product_id, "product": product, "configId": config_id,
                     "config": config, "environmentId": env_id, "environment": env}
                    for config_id, config in configs
                    for env_id, env in envs
                ]  # fmt: skip
            self.scopes[org] = scopes
        self.people = [("Ada Lovelace", "ada@example.com"), ("Grace Hopper", "grace@example.com"),
                       ("Linus Torvalds", "linus@example.com"), ("API", None)]  # fmt: skip
        self.ns: dict[str, int] = {}  # event id -> instant in ns (exact, 100 ns ticks)
        self.scope_of: dict[str, dict[str, str]] = {}  # event id -> its product/config/env
        self._next_id = rng.randint(1_000_000, 2_000_000)
        self._made = 0  # events made so far (types="cycle")

    def make_event(self, org: str, at: datetime) -> TruthEvent:
        """An item at `at` (to 100 ns ticks), with 0 to 7 fractional digits."""
        at = at.astimezone(UTC)
        digits = self.rng.randint(0, 7)
        ticks = at.microsecond * 10 + self.rng.randint(0, 9)
        ticks -= ticks % 10 ** (7 - digits)
        fraction = f"{ticks:07d}".rstrip("0")
        stamp = at.strftime("%Y-%m-%dT%H:%M:%S") + (f".{fraction}" if fraction else "") + "+00:00"
        return self.event_at(org, stamp)

    def event_at(self, org: str, stamp: str) -> TruthEvent:
        """An item with exactly the timestamp `stamp` (for tests that need one)."""
        rng = self.rng
        ns = _parse_ns(stamp)
        if ns is None:
            raise ValueError(f"not a timestamp: {stamp!r}")
        self._next_id += rng.randint(1, 9)
        old = self.opt("item_generation") == "old"
        kind = rng.choice(AUDIT_LOG_TYPES if old else CURRENT_AUDIT_LOG_TYPES)
        if self.opt("types") == "cycle":
            kind = AUDIT_LOG_TYPES[self._made % len(AUDIT_LOG_TYPES)]
            self._made += 1
        scope = rng.choice(self.scopes[org])
        name, email = rng.choice(self.people)
        where = f"{scope['product']} / {scope['config']} / {scope['environment']}"
        item: dict[str, Any] = {
            "auditLogId": self._next_id,
            "auditLogDateTime": stamp,
            "auditLogTypeEnum": kind,
            "truncated": rng.random() < 0.05,
            "modelVersion": 6,
            "auditLogType": _label(kind),
            "userEmail": email,
            "userName": name,
            "where": where,
            "why": rng.choice((None, "", "Rollout to 10%", "Incident INC-4211 rollback")),
            "actionTarget": rng.choice(("isAwesomeFeatureEnabled", "myColor", where)),
            "details": rng.choice(("", "Value changed from 'false' to 'true'.", "{}")),
        }
        if old:
            del item["modelVersion"]
            item["changeSetId"] = rng.choice((str(uuid.UUID(int=rng.getrandbits(128))), None))
            item["details"] = rng.choice((item["details"], None))
        event_id = str(self._next_id)
        self.ns[event_id] = ns
        self.scope_of[event_id] = scope
        at = datetime.fromtimestamp(ns // NS, UTC).replace(microsecond=ns % NS // 1000)
        return TruthEvent(org=org, id=event_id, ts=stamp, item=item, at=at)

    def add_at(self, org: str, stamps: list[str]) -> list[TruthEvent]:
        """Append events with exactly these timestamps (call while the tap is not running)."""
        made = [self.event_at(org, stamp) for stamp in stamps]
        self._events[org].extend(made)
        self.events_changed(org)
        return made

    # ---- routes -------------------------------------------------------------------------
    def organizations(self, req: ApiRequest) -> Response:
        """`[{organizationId, name}]`: every organization the credentials see."""
        return Response(200, [{"organizationId": org, "name": self.org_names[org]}
                              for org in self.orgs])  # fmt: skip

    def audit_logs_v2(self, req: ApiRequest, org: str) -> Response:
        """One page of the org's items in the window, newest first."""
        return self._audit_logs(req, org, paged=True)

    def audit_logs_v1(self, req: ApiRequest, org: str) -> Response:
        """The deprecated v1: whatever `configcat_v1_mode` says it answers."""
        mode = self.opt("v1_mode")
        if mode == "redirect":
            return self._audit_logs(req, org, paged=True)
        if mode == "redirect_fixed":
            query = {k: v for k, v in req.query.items() if k not in ("pageNumber", "pageSize")}
            return self._audit_logs(replace(req, query=query), org, paged=True)
        if mode == "http_redirect":
            resp = Response(301, b"", content_type="text/html")
            text = "&".join(f"{k}={v}" for k, v in req.query.items())
            resp.headers["Location"] = f"{self.prefix}/v2/organizations/{org}/auditlogs?{text}"
            return resp
        resp = self._audit_logs(req, org, paged=False)
        if mode == "array_first_page" and resp.status == 200:
            resp.body = resp.body[:DEFAULT_PAGE_SIZE]
        return resp

    def _audit_logs(self, req: ApiRequest, org: str, *, paged: bool) -> Response:
        if org not in self._events:
            return self.error(404, "Not Found")
        q = req.query
        problems: dict[str, list[str]] = {}
        page = _int(q.get("pageNumber", "1")) if paged else 1
        size = _int(q.get("pageSize", str(DEFAULT_PAGE_SIZE))) if paged else None
        if page is None or page < 1:
            problems["pageNumber"] = ["The field pageNumber must be between 1 and 2147483647."]
        if paged and (size is None or not 1 <= size <= 100):
            problems["pageSize"] = ["The field pageSize must be between 1 and 100."]
        bounds: dict[str, int | None] = {}
        for name in ("fromUtcDateTime", "toUtcDateTime"):
            bounds[name] = _parse_ns(q[name]) if q.get(name) else None
            if q.get(name) and bounds[name] is None:
                problems[name] = [f"The value '{q[name]}' is not valid."]
        kind = q.get("auditLogType")
        if kind and kind not in AUDIT_LOG_TYPES:
            problems["auditLogType"] = [f"The value '{kind}' is not valid."]
        if problems:
            return Response(400, problems, headers=self._rate_headers())
        now = _ns_of(utcnow())
        upper = bounds["toUtcDateTime"] if bounds["toUtcDateTime"] is not None else now
        lower = bounds["fromUtcDateTime"]
        lower = upper - DEFAULT_SPAN_NS if lower is None else lower
        limit = self.opt("max_span_days")
        if limit is not None and upper - lower > limit * DAY_NS:
            message = f"The distance between fromUtcDateTime and toUtcDateTime cannot exceed {limit} days."  # noqa: E501
            return Response(400, {"toUtcDateTime": [message]}, headers=self._rate_headers())
        reading = self.opt("bounds")
        above, below = BOUNDS[reading]
        wanted = {key: q[key] for key in ("productId", "configId", "environmentId") if q.get(key)}

        def build(source: list[TruthEvent]) -> list[TruthEvent]:
            events = [
                ev
                for ev in source
                if above(self.ns[ev.id], lower)
                and below(self.ns[ev.id], upper)
                and (not kind or ev.item["auditLogTypeEnum"] == kind)
                and all(self.scope_of[ev.id][key] == value for key, value in wanted.items())
            ]
            events.sort(key=lambda ev: (self.ns[ev.id], int(ev.id)), reverse=True)  # newest 1st
            return events

        if bounds["toUtcDateTime"] is None:  # the window ends "now": no two requests share it
            events = build(self._events[org])
        else:
            key = (lower, upper, reading, kind or None, tuple(sorted(wanted.items())))
            events = self.view(org, key, build)
        if not paged:
            return Response(200, [dict(ev.item) for ev in events])
        assert page is not None
        assert size is not None
        total_pages = -(-len(events) // size)
        paging = {
            "currentPage": page,
            "totalPages": total_pages,
            "pageSize": size,
            "totalCount": len(events),
            "hasPrevious": page > 1,
            "hasNext": page < total_pages,
        }
        if self.opt("page_number") == "ignored":
            return Response(200, {"data": [dict(ev.item) for ev in events[:size]], "paging": None})
        chunk = events[(page - 1) * size : page * size]
        return Response(200, {"data": [dict(ev.item) for ev in chunk], "paging": paging})

    @classmethod
    def chaos(cls, rng: random.Random, events_per_org: int) -> Chaos:
        """Two organizations, read in windows of 3, 7 or 30 days; odd ids and times (odd.py)."""
        days = rng.choice((3, 7, 30))
        odd = draw_odd(rng)
        return Chaos(
            switches={"configcat_orgs": ORG_IDS[:2], "configcat_odd_values": odd},
            settings={"window_days": days},
            what=f"window {days}d" + (f" {'+'.join(odd)}" if odd else ""),
        )


_STAMP = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})?$"
)


def _parse_ns(text: str) -> int | None:
    """An ISO 8601 date-time (UTC when no offset) as ns since the epoch; None if invalid."""
    found = _STAMP.match(text.strip())
    if not found:
        return None
    *parts, fraction, offset = found.groups()
    year, month, day, hour, minute, second = (int(p) for p in parts)
    try:
        moment = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except ValueError:
        return None
    ns = calendar.timegm(moment.timetuple()) * NS + int((fraction or "0").ljust(9, "0"))
    if offset and offset != "Z":
        sign = 1 if offset[0] == "+" else -1
        ns -= sign * (int(offset[1:3]) * 3600 + int(offset[4:6]) * 60) * NS
    return ns


def _ns_of(at: datetime) -> int:
    return calendar.timegm(at.utctimetuple()) * NS + at.microsecond * 1000


def _label(kind: str) -> str:
    """`settingValueChanged` -> `Setting value changed` (the item's `auditLogType` text)."""
    words = re.sub(r"(?<!^)(?=[A-Z])", " ", kind).lower()
    return words[:1].upper() + words[1:]


def _int(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


PROVIDER = ConfigCatProvider
