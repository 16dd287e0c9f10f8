"""Torq audit log: `GET /public/v1alpha/audit_logs`, token `POST /v1/auth/token`, under `/torq`.

Reads like the API pages (https://developers.torq.io/apidocs/list-audit-logs, /authentication,
/errors, /resources-audit-logs): OAuth2 client credentials (Basic `client_id:client_secret`, form
`grant_type=client_credentials` -> `{"access_token", "expires_in", "token_type": "Bearer"}`);
tokens expire by wall clock and an expired token is answered with a **302** to a login page
(HTML if followed), an unknown one with 401; query parameters `start_time` (exclusive:
"created after"), `end_time`, `order` asc|desc (default desc), `page_size` (default 100,
max 500), opaque `page_token`; no `start_time` -> the last 24 hours only; timestamps with 6
or 9 fractional digits; error body `{"code", "message", "details": []}`.  One workspace per
API key: exactly one org.  Each UNCERTAIN reading is a switch (table below).
"""

from __future__ import annotations

import base64
import binascii
import calendar
import hashlib
import random
import re
import secrets
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any, ClassVar
from urllib.parse import parse_qsl

import orjson

from ..data import documented
from .odd import draw_odd
from .provider import (
    ApiRequest,
    Chaos,
    Provider,
    Response,
    Route,
    TruthEvent,
    clock_chaos,
    empty_page_switch,
)
from .scenario import COMMON_SWITCHES, Switch

CLIENT_ID = "torq_emulator_client_id"
CLIENT_SECRET = "tqs_Z8xC5vB2nM7qW4e_do_not_leak"
TOKEN_PREFIX = "torqtok_"
TOKEN_PATH = "/v1/auth/token"
MAX_PAGE_SIZE = 500
DEFAULT_PAGE_SIZE = 100
DEFAULT_WINDOW = timedelta(hours=24)
NS = 1_000_000_000

# gRPC status codes in Torq's error bodies, by HTTP status.
GRPC_CODES = {400: 3, 401: 16, 403: 7, 404: 5, 429: 8, 500: 13, 502: 14, 503: 14}

# How the last page says "no more": proto3 JSON omits empty fields ("missing"), or not.
END_MARKERS: dict[str, Callable[[], dict[str, Any]]] = {
    "empty": lambda: {"next_page_token": ""},
    "missing": lambda: {},
}

# How the server reads `start_time` (ns -> the ns it keeps events after).
START_TIMES: dict[str, Callable[[int], int]] = {
    "exclusive": lambda ns: ns,
    "rounded_us": lambda ns: (ns + 500) // 1000 * 1000,
}

LOGIN_PAGE = b"<html><head><title>Torq - Sign in</title></head><body>Sign in</body></html>\n"


# ---- generated-data vocabulary (shapes from Torq's docs; the values are invented) -------------
# Torq's documented action texts (every one its audit-log page lists, copied in tests/data
# with the source), with the kind of resource each one names: the words before the verb
# ("Workspace variable created" -> workspace_variable).
def _resource_kind(action: str) -> str:
    words = action.split()
    verb = next(i for i, word in enumerate(words) if word.endswith("ed"))
    return "_".join(words[:verb]).lower()


ACTIONS: tuple[tuple[str, str], ...] = tuple(  # (action, resource kind)
    (action, _resource_kind(action)) for action in documented("torq_actions")
)
PEOPLE = ("Ada Lovelace", "Grace Hopper", "Linus Torvalds", "Margaret Hamilton", "Ken Thompson")
BROWSERS = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
)
RESOURCE_NAMES = ("Phishing triage", "EDR isolate host", "Okta offboarding", "Slack", "Jira")

_RFC3339 = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$")


def parse_ns(text: str) -> int | None:
    """RFC 3339 with up to nine fractional digits -> ns since the epoch; None if malformed."""
    match = _RFC3339.match(text)
    if not match:
        return None
    base, fraction, offset = match.groups()
    try:
        moment = datetime.strptime(base, "%Y-%m-%dT%H:%M:%S")
    except ValueError:
        return None
    seconds = calendar.timegm(moment.timetuple())
    if offset != "Z":
        sign = 1 if offset[0] == "+" else -1
        seconds -= sign * (int(offset[1:3]) * 3600 + int(offset[4:6]) * 60)
    return seconds * NS + int((fraction or "0").ljust(9, "0"))


def _ns_of(at: datetime) -> int:
    return calendar.timegm(at.utctimetuple()) * NS + at.microsecond * 1000


def _stamp(at: datetime, digits: int, extra_ns: int) -> str:
    """`2026-11-20T10:11:12.123456Z` (6 digits) or `...123456789Z` (9 digits)."""
    base = at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond:06d}"
    return base + (f"{extra_ns:03d}" if digits == 9 else "") + "Z"


def _extra_ns(at: datetime) -> int:
    """Nanoseconds below the microsecond, fixed per instant so ties stay ties; 0 in 1 of 4."""
    h = int.from_bytes(hashlib.sha256(at.isoformat().encode()).digest()[:4], "big")
    return 0 if h % 4 == 0 else h % 1000


def _basic(header: str) -> tuple[str, str] | None:
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, sep, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (user, password) if sep else None


def _encode_page_token(state: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(state)).decode().rstrip("=")


def _decode_page_token(token: str) -> dict[str, Any] | None:
    try:
        state = orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, ValueError):
        return None
    if not isinstance(state, dict):
        return None
    ok = all(isinstance(state.get(key), int) for key in ("offset", "since"))
    return state if ok and state["offset"] >= 0 else None


class TorqProvider(Provider):
    """Torq's token endpoint, audit-log route and the login page an expired token lands on."""

    name = "torq"
    time_field = "timestamp"
    one_org: ClassVar[Mapping[str, Any]] = {"torq_events_per_org": 1500}
    first_data_request = 2  # 1: POST /v1/auth/token
    rate_limit = (50, 1.0)  # 50/s: https://developers.torq.io/apidocs/overview
    resume_bound = 500  # one page
    list_key = "audit_logs"
    list_key_absent_when_empty = True
    api_root = "/public"
    switches = {
        **COMMON_SWITCHES,
        "orgs": Switch(("workspace",), runtime=False, convert=tuple,
                       doc="the one workspace the API key sees (exactly one)"),
        "token_ttl_s": Switch(3600, convert=int, doc="expires_in of new tokens (seconds)"),
        "token_dies_after_s": Switch(None, convert=float,
                                     doc="tokens stop working after this many seconds although "
                                         "expires_in says more (revocation, clock skew); "
                                         "None: at expires_in"),
        "end_marker": Switch("empty", choices=tuple(END_MARKERS),
                             doc="last page: next_page_token \"\" or missing (then an empty "
                                 "audit_logs is missing too, as proto3 JSON does)"),
        "order_param": Switch("honoured", choices=("honoured", "ignored"),
                              doc="ignored: always newest first, whatever `order` says"),
        "page_param": Switch("page_token", choices=("page_token", "pageToken"),
                             doc="the query parameter the page token is read from: the "
                                 "endpoint's page_token, or pageToken (Torq's pagination "
                                 "page); the other name is ignored"),
        "forbidden": Switch(False, convert=bool,
                            doc="the documented 403: the API key's role lacks the permission "
                                "(audit logs need a key created by an Owner)"),
        "start_time": Switch("exclusive", choices=tuple(START_TIMES),
                             doc="how start_time is read: exclusive (documented), or first "
                                 "rounded to the nearest microsecond"),
        "page_token": Switch("normal", choices=("normal", "repeat", "empty_forever", "sticky_last"),
                             doc="repeat: every next_page_token points at the second page; "
                             "empty_forever: past the data, empty pages with fresh tokens; "
                             "sticky_last: the last page returns the token it was asked with "
                             "(the first page: a token for itself)"),
        "empty_pages": empty_page_switch(),
    }  # fmt: skip
    routes = (
        Route("POST", TOKEN_PATH, "token", auth=False, billable=False),
        Route("GET", r"/public/v1alpha/audit_logs", "audit_logs"),
        Route("GET", r"/login", "login", auth=False, billable=False),
    )

    # ---- auth ---------------------------------------------------------------------------
    @classmethod
    def credentials(cls) -> dict[str, str]:
        """The API key the emulator accepts, as tap settings."""
        return {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}

    def tap_config(self, base_url: str) -> dict[str, Any]:
        """Credentials, the API base URL and the token endpoint."""
        root = base_url.removesuffix(self.api_root)
        return {**super().tap_config(base_url), "token_url": root + TOKEN_PATH}

    def token(self, req: ApiRequest) -> Response:
        """OAuth2 client credentials: Basic auth and a form body -> a Bearer token."""
        accepted = self.accepted_credentials()
        client = (accepted["client_id"], accepted["client_secret"])
        if _basic(req.headers.get("authorization", "")) != client:
            return self.error(401, "invalid client credentials")
        if not req.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            return self.error(400, "the body must be application/x-www-form-urlencoded")
        form = dict(parse_qsl(req.body.decode("utf-8", "replace")))
        if form.get("grant_type") != "client_credentials":
            return self.error(400, "unsupported grant_type")
        ttl = int(self.opt("token_ttl_s"))
        dies = self.opt("token_dies_after_s")
        token = TOKEN_PREFIX + secrets.token_urlsafe(24)
        self.tokens[token] = time.time() + (ttl if dies is None else dies)
        self.issued.append(token)
        return Response(200, {"access_token": token, "expires_in": ttl, "token_type": "Bearer"})

    def authenticate(self, req: ApiRequest) -> Response | None:
        """Bearer token: unknown -> 401; expired (wall clock) -> 302 to the login page."""
        scheme, _, token = req.headers.get("authorization", "").partition(" ")
        expires = self.tokens.get(token.strip()) if scheme.lower() == "bearer" else None
        if expires is None:
            return self.error(401, "Unauthenticated: invalid or missing access token")
        if time.time() >= expires:
            resp = Response(302, LOGIN_PAGE, content_type="text/html")
            resp.headers["Location"] = f"{self.prefix}/login?reason=session_expired"
            return resp
        return None

    def login(self, req: ApiRequest) -> Response:
        """What following the 302 gives: an HTML sign-in page, never JSON."""
        return Response(200, LOGIN_PAGE, content_type="text/html")

    def error(self, status: int, message: str) -> Response:
        """Torq's error body."""
        return Response(status, {"code": GRPC_CODES.get(status, 2), "message": message,
                                 "details": []})  # fmt: skip

    # ---- data ---------------------------------------------------------------------------
    def setup(self) -> None:
        """The workspace (account id and name) and its actors; tokens and event indexes."""
        if len(self.orgs) != 1:
            raise ValueError(f"Torq: one workspace per API key; got torq_orgs={self.orgs}")
        rng = self.rng
        org = self.orgs[0]
        self.account = {
            "account_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "account_name": f"{org.replace('-', ' ').title()} SecOps",
        }
        domain = f"{org}.example"
        self.actors: list[dict[str, Any]] = []
        for person in rng.sample(PEOPLE, k=3):
            email = f"{person.split()[0].lower()}@{domain}"
            self.actors.append({"email": email, "actor_name": person, "actor_type": "web_app",
                                "user_agent": rng.choice(BROWSERS)})  # fmt: skip
            self.actors.append({"email": email, "actor_name": person, "actor_type": "slack"})
        self.actors.append({"email": "", "actor_name": "ci-pipeline", "actor_type": "api_key",
                            "user_agent": "python-requests/2.32.3"})  # fmt: skip
        self.tokens: dict[str, float] = {}  # access token -> wall-clock expiry
        self.issued: list[str] = []  # every access token handed out, oldest first
        self._ns: dict[str, int] = {}  # event id -> timestamp in ns
        self._seq: dict[str, int] = {}  # event id -> creation order (ties)

    def make_event(self, org: str, at: datetime) -> TruthEvent:
        """One entry at `at`, with 6 or 9 fractional digits."""
        at = at.astimezone(timezone.utc)
        return self._event(org, at, self.rng.choice((6, 9)), _extra_ns(at))

    def add_exact(self, ts: str) -> TruthEvent:
        """Add one entry whose timestamp is exactly `ts` (for precision tests)."""
        match = _RFC3339.match(ts)
        if not match or match.group(3) != "Z" or len(match.group(2) or "") not in (6, 9):
            raise ValueError(f"{ts!r}: use ...SS.ffffff[fff]Z")
        fraction = match.group(2)
        at = datetime.strptime(match.group(1), "%Y-%m-%dT%H:%M:%S").replace(
            microsecond=int(fraction[:6]), tzinfo=timezone.utc
        )
        event = self._event(self.orgs[0], at, len(fraction), int(fraction[6:] or "0"))
        self._events[self.orgs[0]].append(event)
        self.events_changed(self.orgs[0])
        return event

    def _event(self, org: str, at: datetime, digits: int, extra_ns: int) -> TruthEvent:
        rng = self.rng
        action, kind = rng.choice(ACTIONS)
        actor = rng.choice(self.actors)
        stamp = _stamp(at, digits, extra_ns)
        item: dict[str, Any] = {
            "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "timestamp": stamp,
            **actor,
            "action": action,
            "resource_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "resource_name": f"{kind}: {rng.choice(RESOURCE_NAMES)}",
            **self.account,
        }
        if rng.random() < 0.8:  # proto3 JSON omits an empty ip
            item["ip"] = f"198.51.100.{rng.randint(1, 254)}"
        extra = rng.choice(("absent", "object", "object", "null"))
        if extra == "object":
            item["extra_data"] = {"kind": kind, "changes": rng.randint(0, 5)}
        elif extra == "null":
            item["extra_data"] = None
        self._ns[item["id"]] = _ns_of(at) + (extra_ns if digits == 9 else 0)
        self._seq[item["id"]] = len(self._seq)
        return TruthEvent(org=org, id=item["id"], ts=stamp, item=item, at=at)

    def ns(self, event_id: str) -> int:
        """An event's timestamp in ns."""
        return self._ns[event_id]

    # ---- routes -------------------------------------------------------------------------
    def audit_logs(self, req: ApiRequest) -> Response:
        """One page: filter by start_time (exclusive) / end_time, sort, slice by page_token."""
        if self.opt("forbidden"):
            return self.error(403, "permission denied: the API key's role may not read the "
                                   "audit logs")  # fmt: skip
        q = dict(req.query)
        name = self.opt("page_param")
        q.pop("pageToken" if name == "page_token" else "page_token", None)  # ignored
        if name != "page_token" and name in q:
            q["page_token"] = q.pop(name)
        order = q.get("order", "desc")
        if order not in ("asc", "desc"):
            return self.error(400, f"invalid order {order!r}: asc or desc")
        try:
            page_size = int(q.get("page_size", DEFAULT_PAGE_SIZE))
        except ValueError:
            return self.error(400, "page_size must be an integer")
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            return self.error(400, f"page_size must be between 1 and {MAX_PAGE_SIZE}")
        bounds: dict[str, int | None] = {}
        for key in ("start_time", "end_time"):
            bounds[key] = parse_ns(q[key]) if key in q else None
            if key in q and bounds[key] is None:
                return self.error(400, f"invalid {key}: RFC 3339 expected")
        query_id = hashlib.sha256(
            f"{q.get('start_time')}|{q.get('end_time')}|{order}".encode()
        ).hexdigest()[:12]
        if "page_token" in q and q["page_token"] != "":
            state = _decode_page_token(q["page_token"])
            if state is None:
                return self.error(400, "invalid page_token")
            if state.get("query") != query_id:
                return self.error(400, "page_token does not belong to this query")
        else:
            since = bounds["start_time"]
            if since is None:  # no start_time: only the last 24 hours
                since = _ns_of(datetime.now(timezone.utc) - DEFAULT_WINDOW)
            else:
                since = START_TIMES[self.opt("start_time")](since)
            state = {"offset": 0, "since": since, "query": query_id}
        since, until = int(state["since"]), bounds["end_time"]
        descending = order == "desc" or self.opt("order_param") == "ignored"

        def build(source: list[TruthEvent]) -> list[TruthEvent]:
            events = [
                ev
                for ev in source
                if self._ns[ev.id] > since and (until is None or self._ns[ev.id] < until)
            ]
            events.sort(key=lambda ev: (self._ns[ev.id], self._seq[ev.id]), reverse=descending)
            return events

        # The token's offset is not part of the view: every page is a slice of it.
        events = self.view(self.orgs[0], (since, until, descending), build)
        offset = state["offset"]
        every = self.opt("empty_pages")
        empty = every and (offset // page_size + 1) % every == 0 and not state.get("shown")
        if empty and offset < len(events):  # filtered after paging: empty, pointing on
            shown = {**state, "shown": True, "nonce": secrets.token_hex(4)}
            return Response(200, {"audit_logs": [], "next_page_token": _encode_page_token(shown)})
        page = [dict(ev.item) for ev in events[offset : offset + page_size]]
        body: dict[str, Any] = {"audit_logs": page}
        if offset + page_size >= len(events) and self.opt("page_token") == "sticky_last":
            body["next_page_token"] = q.get("page_token") or _encode_page_token(state)
        elif offset + page_size < len(events):
            nonce = secrets.token_hex(4)  # two tokens are never equal
            following = {"offset": offset + page_size, "since": since, "query": query_id}
            following["nonce"] = nonce
            if self.opt("page_token") == "repeat":
                following = {**state, "offset": page_size}
            body["next_page_token"] = _encode_page_token(following)
        elif self.opt("page_token") == "empty_forever":
            following = {**state, "offset": offset + page_size, "nonce": secrets.token_hex(4)}
            body["next_page_token"] = _encode_page_token(following)
        else:
            body.update(END_MARKERS[self.opt("end_marker")]())
            if not page and self.opt("end_marker") == "missing":
                del body["audit_logs"]
        return Response(200, body)

    @classmethod
    def chaos(cls, rng: random.Random, events_per_org: int) -> Chaos:
        """Several pages of 500; tokens that stop working after a fraction of a second (302,
        renewed and retried), and with expires_in 1 are also renewed before they run out.
        Its answers stay faster than its tokens live: a token dead on arrival twice in a
        row is a broken token endpoint (reported as such), not something to retry. So a token
        lives 0.3-0.6 s: at 0.05 s, a loaded machine's pause between fetching a token and its
        first use was enough to kill two in a row (a 302 exit that was the draw's, not the
        tap's). Odd ids and times (odd.py)."""
        ttl, dies = rng.choice((1, 3600)), round(rng.uniform(0.3, 0.6), 2)
        odd = draw_odd(rng)
        paging, empty = rng.choice(("normal", "sticky_last")), rng.choice((0, 0, 2, 3))
        switches = {
            "torq_events_per_org": events_per_org * 20,
            "torq_token_ttl_s": ttl,
            "torq_token_dies_after_s": dies,
            "torq_odd_values": odd,
            "torq_page_token": paging,
            "torq_empty_pages": empty,
        }
        clock, words = clock_chaos(rng, "torq")
        what = f"torq token ttl {ttl}s dies {dies}s, {paging} empty/{empty} {words}".strip() + (
            f" {'+'.join(odd)}" if odd else ""
        )
        return Chaos(switches={**switches, **clock}, slow_s=0.01, what=what)


PROVIDER = TorqProvider
