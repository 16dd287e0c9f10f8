"""Socket (socket.dev) audit log: `GET /v0/orgs/{org_slug}/audit-log`, base `.../socket/v0`.

Reads like the API page (https://docs.socket.dev/reference/getauditlogevents): auth (Bearer
token, or Basic with the token as username), routes
(organizations, audit-log, quota), query parameters (`per_page` 1..100, `page` token, `type`
PascalCase, `from` unix seconds), page-number paging, newest-first order, error body
`{"error": {"message", "details"}}`.  Each UNCERTAIN reading is a switch (tables below).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import random
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any, ClassVar

from ..data import documented
from .odd import draw_odd
from .provider import ApiRequest, Chaos, Provider, Response, Route, TruthEvent, iso_ms
from .scenario import COMMON_SWITCHES, Switch

TOKEN = "sktsec_emulator_token_do_not_leak_7f3a9c"

# Query `type` values: Socket's documented enum, exactly as the filter takes them (PascalCase;
# `SSOLoginCompleted`); items carry them lowerCamel. Copied in tests/data with its source.
EVENT_TYPES: tuple[str, ...] = documented("socket_event_types")


def lower_camel(pascal: str) -> str:
    """`CreateApiToken` -> `createApiToken` (the form items carry)."""
    return pascal[:1].lower() + pascal[1:]


# ---- UNCERTAIN readings, as tables ------------------------------------------------------
# `from` (unix seconds): "filter results prior to this date" -- upper or lower bound?
FROM_READINGS: dict[str, Callable[[datetime, datetime], bool]] = {
    "upper": lambda at, bound: at <= bound,
    "lower": lambda at, bound: at >= bound,
    "ignored": lambda at, bound: True,
}

# How the last page says "no more" (argument: the current page number).
END_MARKERS: dict[str, Callable[[int], dict[str, Any]]] = {
    "null": lambda page: {"nextPage": None},
    "empty": lambda page: {"nextPage": ""},
    "missing": lambda page: {},
    "zero": lambda page: {"nextPage": "0"},
    "zero_int": lambda page: {"nextPage": 0},
    # Never ends by token: every page (even an empty one) points on; only empty results end.
    "empty_results": lambda page: {"nextPage": str(page + 1)},
}


# What `nextPage` says on a page that has a successor: the API's paging, or a broken one
# (for loop-detection tests; argument: the current page number).
NEXT_PAGES: dict[str, Callable[[int], str]] = {
    "normal": lambda page: str(page + 1),
    "repeat": lambda page: "2",  # page 2 points at itself
    "backwards": lambda page: str(page + 1) if page < 3 else "2",  # 1, 2, 3, 2, 3, ...
}


def _opaque(page: int) -> str:
    """An opaque page token (base64 with `+`, `/` or `=`: it must travel URL-encoded)."""
    return base64.b64encode(f"socket-audit-log?page={page}&~".encode()).decode()


def _page_of_opaque(token: str) -> int | None:
    try:
        text = base64.b64decode(token, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    prefix, _, rest = text.partition("page=")
    return _int(rest.removesuffix("&~")) if prefix == "socket-audit-log?" else None


# What a page token is (`page` in, `nextPage` out): (page number -> token, token -> page).
PAGE_TOKENS: dict[str, tuple[Callable[[int], str], Callable[[str], int | None]]] = {
    "numbers": (str, lambda token: _int(token)),  # noqa: PLW0108 (_int is defined below)
    "opaque": (_opaque, _page_of_opaque),
}


def _shuffle_key(seed: int) -> Callable[[TruthEvent], Any]:
    # A fixed pseudo-random position per event: insertions never reorder the others.
    return lambda ev: hashlib.sha256(f"{seed}:{ev.id}".encode()).digest()


ORDERS: dict[str, Callable[[list[TruthEvent], int], list[TruthEvent]]] = {
    "desc": lambda evs, seed: sorted(evs, key=lambda e: (e.at, int(e.id)), reverse=True),
    "asc": lambda evs, seed: sorted(evs, key=lambda e: (e.at, int(e.id))),
    "random": lambda evs, seed: sorted(evs, key=_shuffle_key(seed)),
}

# ---- generated-data vocabulary ----------------------------------------------------------
COUNTRIES: tuple[str | None, ...] = ("US", "US", "DE", "GB", "FR", "IN", "BR", "", None)
USER_AGENTS: tuple[str | None, ...] = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "socket-cli/1.1.4 node/22.5.1",
    "socketsecurity/2.2.8 python/3.12",
    "",
    None,
)
STATUS_CODES: tuple[int | None, ...] = (200, 200, 201, 204, 0, None)
FIRST_NAMES = ("ada", "grace", "linus", "margaret", "ken", "barbara", "dennis", "frances")


class SocketProvider(Provider):
    """Socket's audit log, organizations and quota routes."""

    name = "socket"
    id_field = "event_id"
    one_org: ClassVar[Mapping[str, Any]] = {"socket_orgs": ("acme",)}
    first_data_request = 2  # 1: GET /organizations
    rate_limit = (600, 60.0)  # 600/min: https://docs.socket.dev/reference/rate-limits
    type_parameter = "type"
    resume_bound = 100  # one page
    list_key = "results"
    api_root = "/v0"
    switches = {
        **COMMON_SWITCHES,
        "orgs": Switch(("acme-corp", "globex", "initech"), runtime=False, convert=tuple,
                       doc="org slugs the token sees"),
        "from": Switch("upper", choices=tuple(FROM_READINGS), doc="meaning of `from`"),
        "end_marker": Switch("null", choices=tuple(END_MARKERS), doc="last page's nextPage"),
        "order": Switch("desc", choices=tuple(ORDERS), doc="order of the results"),
        "next_page": Switch("normal", choices=tuple(NEXT_PAGES),
                            doc="nextPage of a page with a successor (broken: repeat, backwards)"),
        "forbidden_orgs": Switch(frozenset(), convert=frozenset,
                                 doc="orgs listed but whose audit log answers 403"),
        "page_tokens": Switch("numbers", choices=tuple(PAGE_TOKENS),
                              doc="nextPage: page numbers as strings (observed), or opaque "
                                  "strings (the spec: a string \"Page token\")"),
        "types": Switch("random", choices=("random", "cycle"), runtime=False,
                        doc="event types: drawn at random, or every documented type in turn"),
        "null_org_id": Switch(0.0, convert=float, runtime=False,
                              doc="share of items whose organization_id is null (nullable)"),
    }  # fmt: skip
    routes = (
        Route("GET", r"/v0/organizations", "organizations"),
        Route("GET", r"/v0/orgs/(?P<org>[^/]+)/audit-log", "audit_log"),
        Route("GET", r"/v0/quota", "quota", billable=False),
    )

    # ---- auth ---------------------------------------------------------------------------
    @classmethod
    def credentials(cls) -> dict[str, str]:
        """The tap's credential setting."""
        return {"api_token": TOKEN}

    def authenticate(self, req: ApiRequest) -> Response | None:
        """Bearer token, or Basic with the token as username (with or without `:`)."""
        scheme, _, value = req.headers.get("authorization", "").partition(" ")
        token = value.strip()
        if scheme.lower() == "basic":
            try:
                user, _, password = base64.b64decode(token, validate=True).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                user, password = "", "?"
            token = user if password == "" else ""
        elif scheme.lower() != "bearer":
            token = ""
        if token == TOKEN:
            return None
        return self.error(401, "Unauthorized: a valid API token is required")

    def error(self, status: int, message: str) -> Response:
        """Socket's error body."""
        return Response(status, {"error": {"message": message, "details": None}})

    # ---- data ---------------------------------------------------------------------------
    def setup(self) -> None:
        """Org ids/names and a few users per org; event ids start at a random number."""
        rng = self.rng
        ids = rng.sample(range(1000, 99999), k=len(self.orgs))
        self.org_meta: dict[str, dict[str, Any]] = {
            slug: {
                "id": str(org_id),
                "name": slug.replace("-", " ").title(),
                "image": rng.choice((f"https://avatars.example/{slug}.png", None)),
                "plan": "enterprise",
                "slug": slug,
            }
            for slug, org_id in zip(self.orgs, ids, strict=True)
        }
        system: dict[str, str | None] = {"user_id": None, "user_email": "", "user_image": ""}
        self.users: dict[str, list[dict[str, str | None]]] = {}
        for slug in self.orgs:
            people: list[dict[str, str | None]] = [
                {
                    "user_id": f"{rng.getrandbits(96):024x}",
                    "user_email": f"{person}@{slug}.example",
                    "user_image": rng.choice((f"https://avatars.example/u/{person}.png", "")),
                }
                for person in rng.sample(FIRST_NAMES, k=4)
            ]
            self.users[slug] = [*people, system]  # the system actor: no user
        self._next_id = rng.randint(100_000, 200_000)
        self._made = 0  # events made so far (types="cycle")

    def make_event(self, org: str, at: datetime) -> TruthEvent:
        """One audit-log item shaped like Socket's (ms precision, `Z`)."""
        rng = self.rng
        at = at.astimezone(timezone.utc).replace(microsecond=at.microsecond // 1000 * 1000)
        self._next_id += rng.randint(1, 9)
        kind = rng.choice(EVENT_TYPES)
        if self.opt("types") == "cycle":
            kind = EVENT_TYPES[self._made % len(EVENT_TYPES)]
            self._made += 1
        user = rng.choice(self.users[org])
        meta = self.org_meta[org]
        updated = at if rng.random() < 0.9 else at + timedelta(seconds=rng.randint(1, 600))
        created_at = iso_ms(at)
        item: dict[str, Any] = {
            "event_id": str(self._next_id),
            "created_at": created_at,
            "updated_at": iso_ms(updated),
            "type": lower_camel(kind),
            **user,
            "organization_id": meta["id"],
            "organization_name": meta["name"],
            "ip_address": rng.choice((f"203.0.113.{rng.randint(1, 254)}", "", None)),
            "country_code": rng.choice(COUNTRIES),
            "user_agent": rng.choice(USER_AGENTS),
            "status_code": rng.choice(STATUS_CODES),
            "payload": rng.choice(({"actor": user["user_email"], "kind": kind}, {}, None)),
        }
        if self.opt("null_org_id") and rng.random() < self.opt("null_org_id"):
            item["organization_id"] = None
        return TruthEvent(org=org, id=item["event_id"], ts=created_at, item=item, at=at)

    # ---- routes -------------------------------------------------------------------------
    def organizations(self, req: ApiRequest) -> Response:
        """`{"organizations": {id: {id, name, image, plan, slug}}}` (a map keyed by id)."""
        return Response(200, {"organizations": {m["id"]: dict(m) for m in self.org_meta.values()}})

    def quota(self, req: ApiRequest) -> Response:
        """`{"quota", "maxQuota", "nextWindowRefresh"}` (free)."""
        status = self.host.quota_status(self.name)
        return Response(200, {
            "quota": status.remaining,
            "maxQuota": status.limit,
            "nextWindowRefresh": iso_ms(status.resets_at),
        })  # fmt: skip

    def audit_log(self, req: ApiRequest, org: str) -> Response:
        """One page of the org's audit log, filtered by `type` and `from`, in the set order."""
        if org not in self.org_meta:
            return self.error(404, f"Organization not found: {org}")
        if org in self.opt("forbidden_orgs"):
            return self.error(403, "Insufficient permissions for API method")
        q = req.query
        encode, decode = PAGE_TOKENS[self.opt("page_tokens")]
        per_page, page = _int(q.get("per_page", "30")), (decode(q["page"]) if "page" in q else 1)
        bound = _unix(q["from"]) if "from" in q else None
        if per_page is None or not 1 <= per_page <= 100:
            return self.error(400, "per_page must be an integer between 1 and 100")
        if page is None or page < 1:
            return self.error(400, f"Invalid page token: {q.get('page')!r}")
        if "from" in q and bound is None:
            return self.error(400, "from must be a unix timestamp in seconds")
        if "type" in q and q["type"] not in EVENT_TYPES:
            return self.error(400, f"Invalid audit log event type: {q['type']!r}")
        kind, reading, order = q.get("type"), self.opt("from"), self.opt("order")

        def build(events: list[TruthEvent]) -> list[TruthEvent]:
            if kind is not None:
                events = [ev for ev in events if ev.item["type"] == lower_camel(kind)]
            if bound is not None:
                keep = FROM_READINGS[reading]
                events = [ev for ev in events if keep(ev.at, bound)]
            return ORDERS[order](events, self.scenario.seed)

        # The page number is not part of the view: every page of a query is a slice of it.
        ordered = self.view(org, (kind, bound, reading, order), build)
        start = (page - 1) * per_page
        results = [dict(ev.item) for ev in ordered[start : start + per_page]]
        more = start + per_page < len(ordered)
        following = encode(int(NEXT_PAGES[self.opt("next_page")](page)))
        tail = {"nextPage": following} if more else END_MARKERS[self.opt("end_marker")](page)
        if not more and self.opt("end_marker") == "empty_results":
            tail = {"nextPage": encode(page + 1)}
        return Response(200, {"results": results, **tail})

    @classmethod
    def chaos(cls, rng: random.Random, events_per_org: int) -> Chaos:
        """Two organizations, any order the docs allow or not, any end-of-log marker, odd
        ids and times (odd.py)."""
        order = rng.choice(("desc", "desc", "desc", "random"))
        switches = {
            "socket_orgs": ("acme", "globex"),
            "socket_order": order,
            "socket_end_marker": rng.choice(("null", "missing", "zero", "empty_results")),
            "socket_odd_values": draw_odd(rng),
        }
        odd = "+".join(switches["socket_odd_values"])
        return Chaos(switches=switches, what=f"socket {order}" + (f" {odd}" if odd else ""))


def _int(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None


def _unix(text: str) -> datetime | None:
    """Unix seconds as an aware datetime; None if it is not a usable number."""
    try:
        return datetime.fromtimestamp(float(text), timezone.utc)
    except (ValueError, OverflowError, OSError):
        return None


PROVIDER = SocketProvider
