"""The Example Events API, for the emulator (``register_provider(ExampleEventsProvider)``).

``POST /api/v1/auditevents`` with a JSON body: either ``{"limit": 1..1000, "start_time":
RFC 3339 (inclusive)}`` (a new cursor) or ``{"cursor": "..."}`` alone (the next page);
anything else is a 400. An answer is ``{"items": [...], "cursor": "...", "has_more": bool}``,
items oldest first; the last page's cursor is where to poll later. Auth ``Authorization:
Bearer <token>``. A GET is a 404 (no such route).
"""

from __future__ import annotations

import base64
import uuid
from datetime import datetime
from typing import Any

import orjson

from tests.emulator.provider import ApiRequest, Provider, Response, Route, TruthEvent, iso_ms
from tests.emulator.scenario import COMMON_SWITCHES

TOKEN = "exe_Qm8rT2vXw9Lp4Zs_do_not_leak"
ACTIONS = ("signin", "signout", "update", "grant", "revoke")


class ExampleEventsProvider(Provider):
    """The Example Events audit log of one account."""

    name = "exampleevents"
    switches = COMMON_SWITCHES
    routes = (Route("POST", r"/api/v1/auditevents", "audit_events"),)
    id_field = "uuid"
    time_field = "timestamp"
    list_key = "items"

    @classmethod
    def credentials(cls) -> dict[str, str]:
        """The tap's credential setting."""
        return {"api_token": TOKEN}

    def authenticate(self, req: ApiRequest) -> Response | None:
        """``Authorization: Bearer <token>``."""
        if req.headers.get("authorization") == f"Bearer {TOKEN}":
            return None
        return self.error(401, "Unauthorized")

    def error(self, status: int, message: str) -> Response:
        """The API's error body."""
        return Response(status, {"Error": {"Message": message}})

    def make_event(self, org: str, at: datetime) -> TruthEvent:
        """One event, milliseconds precision."""
        rng = self.rng
        stamp = iso_ms(at)
        actor = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        item: dict[str, Any] = {
            "uuid": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "timestamp": stamp,
            "actor_uuid": actor,
            "actor_details": {"uuid": actor, "name": "Ada", "email": "ada@example.com"},
            "action": rng.choice(ACTIONS),
            "object_type": "user",
            "session": {"ip": f"198.51.100.{rng.randint(1, 254)}"},
        }
        return TruthEvent(org=org, id=item["uuid"], ts=stamp, item=item, at=at)

    def audit_events(self, req: ApiRequest) -> Response:
        """One page from a new cursor (limit, start time) or from a cursor alone."""
        try:
            body = orjson.loads(req.body)
        except orjson.JSONDecodeError:
            return self.error(400, "the body is not JSON")
        if not isinstance(body, dict):
            return self.error(400, "the body is not an object")
        if "cursor" in body:
            if set(body) != {"cursor"}:
                return self.error(400, "a cursor request takes the cursor alone")
            try:
                since, offset, limit = orjson.loads(base64.urlsafe_b64decode(body["cursor"]))
            except (ValueError, TypeError):
                return self.error(400, "invalid cursor")
        elif set(body) <= {"limit", "start_time"}:
            since, offset, limit = body.get("start_time"), 0, body.get("limit", 100)
        else:
            return self.error(400, f"unknown fields {sorted(set(body) - {'limit', 'start_time'})}")
        limit = min(max(int(limit), 1), 1000)
        bound = datetime.fromisoformat(since.replace("Z", "+00:00")) if since else None
        org = self.orgs[0]
        view = self.view(
            org,
            ("asc", since),
            lambda events: sorted(
                (e for e in events if bound is None or e.at >= bound), key=lambda e: e.at
            ),
        )
        page = view[offset : offset + limit]
        after = offset + len(page)
        cursor = base64.urlsafe_b64encode(orjson.dumps([since, after, limit])).decode()
        items = [dict(e.item) for e in page]
        return Response(200, {"cursor": cursor, "has_more": after < len(view), "items": items})
