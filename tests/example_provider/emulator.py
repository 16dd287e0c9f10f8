"""The Example system log API, for the emulator (``register_provider(ExampleProvider)``).

``GET /example/api/v1/logs``: ``since`` (inclusive, RFC 3339), ``sortOrder=ASCENDING``,
``limit`` 1..1000, ``after`` (an opaque cursor inside the next link). A page is a JSON array;
``Link: <full URL>; rel="next"`` on every page, the last (empty) one linking to itself. Auth
``Authorization: SSWS <token>``. With ``example_rate_limit_every=N``, every Nth request is a
429 that says when to retry only in ``X-Rate-Limit-Reset`` (epoch seconds, 1 s ahead).
"""

from __future__ import annotations

import math
import time
import uuid
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from tests.emulator.provider import ApiRequest, Provider, Response, Route, TruthEvent, iso_ms
from tests.emulator.scenario import COMMON_SWITCHES, Switch

TOKEN = "exm_51c2Hq8Vw3Zt6Ry_do_not_leak"
EVENT_TYPES = (
    "user.session.start",
    "user.session.end",
    "user.account.update_password",
    "group.user_membership.add",
    "policy.lifecycle.update",
)


class ExampleProvider(Provider):
    """The Example system log of one organization."""

    name = "example"
    switches = {
        **COMMON_SWITCHES,
        "rate_limit_every": Switch(0, doc="every Nth request is a 429 (0: never)"),
    }
    routes = (Route("GET", r"/api/v1/logs", "logs"),)

    def setup(self) -> None:
        """Request counter for the rate limit."""
        self.served = 0

    @classmethod
    def credentials(cls) -> dict[str, str]:
        """The tap's credential setting."""
        return {"api_token": TOKEN}

    def authenticate(self, req: ApiRequest) -> Response | None:
        """``Authorization: SSWS <token>``."""
        if req.headers.get("authorization") == f"SSWS {TOKEN}":
            return None
        return self.error(401, "Invalid token provided")

    def error(self, status: int, message: str) -> Response:
        """The API's error body."""
        return Response(status, {"errorCode": f"E{status:07d}", "errorSummary": message})

    def make_event(self, org: str, at: datetime) -> TruthEvent:
        """One event, milliseconds precision."""
        rng = self.rng
        stamp = iso_ms(at)
        item: dict[str, Any] = {
            "uuid": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "published": stamp,
            "eventType": rng.choice(EVENT_TYPES),
            "displayMessage": "An event",
            "severity": "INFO",
            "actor": {"id": f"00u{rng.randrange(10**6):06d}", "type": "User",
                      "alternateId": "ada@example.com", "displayName": "Ada"},
            "client": {"ipAddress": f"203.0.113.{rng.randint(1, 254)}"},
        }  # fmt: skip
        return TruthEvent(org=org, id=item["uuid"], ts=stamp, item=item, at=at)

    def logs(self, req: ApiRequest) -> Response:
        """One page, oldest first, and the link to the next (the last page: to itself)."""
        self.served += 1
        every = int(self.opt("rate_limit_every") or 0)
        if every and self.served % every == 0:
            reset = math.ceil(time.time()) + 1
            response = self.error(429, "API call exceeded rate limit due to too many requests")
            response.headers = {"X-Rate-Limit-Limit": "60", "X-Rate-Limit-Reset": str(reset)}
            return response
        query = dict(req.query)
        limit = min(max(int(query.get("limit", "100")), 1), 1000)
        after = int(query.get("after", "0"))
        since = query.get("since")
        bound = datetime.fromisoformat(since.replace("Z", "+00:00")) if since else None
        org = self.orgs[0]
        view = self.view(
            org,
            ("asc", since),
            lambda events: sorted(
                (e for e in events if bound is None or e.at >= bound), key=lambda e: e.at
            ),
        )
        page = view[after : after + limit]
        query["after"] = str(after + len(page))
        host = req.headers.get("host", "127.0.0.1")
        link = f'<http://{host}{self.prefix}/api/v1/logs?{urlencode(query)}>; rel="next"'
        return Response(200, [dict(e.item) for e in page], headers={"Link": link})
