"""The audit-log emulator over real HTTP: schemas, paging, switches, auth, faults, quota, truth."""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import requests

from tap_auditlogs.providers import all_providers
from tests.emulator import (
    SOCKET_TOKEN,
    Emulator,
    FaultRule,
    QuotaRule,
    Scenario,
    TruthEvent,
    available_providers,
    documented_rate_limits,
)
from tests.emulator.configcat import ORG_IDS as CONFIGCAT_ORGS
from tests.emulator.configcat import ConfigCatProvider
from tests.emulator.provider import ViewCache
from tests.emulator.socketdev import END_MARKERS, EVENT_TYPES, ORDERS, lower_camel

UTC = timezone.utc
FIXED_NOW = datetime(2026, 11, 20, 12, 0, 0, tzinfo=UTC)
SPECS = Path(__file__).resolve().parent / "data" / "specs"
REPO = Path(__file__).resolve().parents[1]
ORGS = ("acme-corp", "globex", "initech")
END_VALUES = (None, "", "0", 0)  # nextPage values that mean "no more"

MakeEmu = Callable[..., Emulator]


# ---- helpers ------------------------------------------------------------------------------
def _openapi_to_jsonschema(node: Any) -> Any:
    """OpenAPI 3.0 `nullable: true` -> JSON Schema `type: [T, "null"]`."""
    if isinstance(node, list):
        return [_openapi_to_jsonschema(x) for x in node]
    if not isinstance(node, dict):
        return node
    out = {k: _openapi_to_jsonschema(v) for k, v in node.items() if k != "nullable"}
    if node.get("nullable") is True and isinstance(node.get("type"), str):
        out["type"] = [node["type"], "null"]
    return out


@pytest.fixture(scope="module")
def socket_schemas() -> dict[str, Any]:
    """Socket's published schemas (tests/data/specs)."""
    path = SPECS / "socket.json"
    return {k: _openapi_to_jsonschema(v) for k, v in json.loads(path.read_text()).items()}


def _validate(instance: Any, schema: dict[str, Any]) -> None:
    jsonschema.Draft202012Validator(schema).validate(instance)


@pytest.fixture
def make_emu() -> Iterator[MakeEmu]:
    """Start emulators for a test; stop them after, and check they hit no bug of their own."""
    started: list[Emulator] = []

    def make(**scenario: Any) -> Emulator:
        scenario.setdefault("now", FIXED_NOW)
        emu = Emulator(Scenario(**scenario)).start()
        started.append(emu)
        return emu

    yield make
    for emu in started:
        emu.stop()
        assert emu.errors == []


@pytest.fixture
def http() -> Iterator[requests.Session]:
    """A keep-alive session authenticated with the emulator's Socket token."""
    with requests.Session() as session:
        session.headers["Authorization"] = f"Bearer {SOCKET_TOKEN}"
        yield session


def _audit(emu: Emulator, http: requests.Session, org: str, **params: Any) -> requests.Response:
    return http.get(f"{emu.base_url('socket')}/orgs/{org}/audit-log", params=params, timeout=5)


def _walk(emu: Emulator, http: requests.Session, org: str, **params: Any) -> list[dict[str, Any]]:
    """Every page of an org's audit log, following nextPage until any end marker."""
    pages: list[dict[str, Any]] = []
    page: Any = "1"
    while len(pages) < 50:
        resp = _audit(emu, http, org, page=page, **params)
        assert resp.status_code == 200, resp.text
        body = resp.json()
        pages.append(body)
        asked, page = page, body.get("nextPage")
        if page in END_VALUES or not body["results"] or page == asked:  # "self": the end
            return pages
    raise AssertionError("paging never ended")


def _items(pages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [item for page in pages for item in page["results"]]


def _org_truth(emu: Emulator, org: str) -> list[TruthEvent]:
    return [ev for ev in emu.truth("socket") if ev.org == org]


def _raw_get(emu: Emulator, path: str) -> bytes:
    """One GET on a fresh socket with `Connection: close`; everything the server sent."""
    request = (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        f"Authorization: Bearer {SOCKET_TOKEN}\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", emu.port), timeout=5) as conn:
        conn.sendall(request.encode())
        chunks = []
        while data := conn.recv(65536):
            chunks.append(data)
    return b"".join(chunks)


def _content_length(raw: bytes) -> tuple[int, bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    length = next(int(x.split(":")[1]) for x in lines if x.lower().startswith("content-length"))
    return length, body


# ---- schemas and shapes ---------------------------------------------------------------------
def test_responses_validate_against_socket_schemas(
    make_emu: MakeEmu, http: requests.Session, socket_schemas: dict[str, Any]
) -> None:
    emu = make_emu(seed=3)
    orgs = http.get(f"{emu.base_url('socket')}/organizations", timeout=5)
    _validate(orgs.json(), socket_schemas["organizations_200"])
    assert {o["slug"] for o in orgs.json()["organizations"].values()} == set(ORGS)
    for key, org in orgs.json()["organizations"].items():
        assert key == org["id"]
    for org in ORGS:
        for page in _walk(emu, http, org, per_page=100):
            _validate(page, socket_schemas["audit_log_200"])
    error = _audit(emu, http, "nope")
    assert error.status_code == 404
    _validate(error.json(), socket_schemas["error_body"])


def test_items_look_like_socket_items(make_emu: MakeEmu) -> None:
    emu = make_emu(seed=4)
    items = [ev.item for ev in emu.truth("socket")]
    lower_types = {lower_camel(t) for t in EVENT_TYPES}
    for item in items:
        assert item["event_id"].isdigit()
        assert item["type"] in lower_types
        assert item["type"][0].islower()
        for key in ("created_at", "updated_at"):
            parsed = datetime.strptime(item[key], "%Y-%m-%dT%H:%M:%S.%fZ")
            assert len(item[key]) == 24
            assert parsed.microsecond % 1000 == 0
        assert item["updated_at"] >= item["created_at"]
    for key in ("ip_address", "country_code", "user_agent", "status_code", "payload", "user_id"):
        assert any(item[key] is None for item in items), key
    for key in ("ip_address", "country_code", "user_agent"):
        assert any(item[key] == "" for item in items), key
    assert len({item["event_id"] for item in items}) == len(items)  # unique across orgs


def test_truth_timestamps_have_ties_and_stay_an_hour_old(make_emu: MakeEmu) -> None:
    emu = make_emu(seed=5, events_per_org=100, span_days=10)
    for org in ORGS:
        events = _org_truth(emu, org)
        assert len(events) == 100
        assert all(ev.ts == ev.item["created_at"] and ev.id == ev.item["event_id"] for ev in events)
        assert any(a.ts == b.ts for a, b in itertools.pairwise(events)), f"no tie in {org}"
        assert max(ev.at for ev in events) <= FIXED_NOW - timedelta(hours=1)
        assert min(ev.at for ev in events) >= FIXED_NOW - timedelta(days=10)


def test_same_seed_same_truth() -> None:
    def truth(seed: int, now: datetime = FIXED_NOW) -> list[TruthEvent]:
        return Emulator(Scenario(seed=seed, now=now, events_per_org=50)).truth("socket")

    assert truth(7) == truth(7)
    assert truth(7) != truth(8)
    assert [ev.id for ev in truth(7)] == [ev.id for ev in truth(7, FIXED_NOW + timedelta(days=3))]


# ---- paging, order, end markers -------------------------------------------------------------
@pytest.mark.parametrize("order", sorted(ORDERS))
@pytest.mark.parametrize("marker", sorted(END_MARKERS))
def test_paging_covers_truth_once(
    make_emu: MakeEmu, http: requests.Session, order: str, marker: str
) -> None:
    emu = make_emu(seed=11, events_per_org=120, socket_order=order, socket_end_marker=marker)
    org = "globex"
    pages = _walk(emu, http, org, per_page=50)
    ids = [item["event_id"] for item in _items(pages)]
    truth = _org_truth(emu, org)
    assert sorted(ids) == sorted(ev.id for ev in truth)  # every event, exactly once
    assert [p["nextPage"] for p in pages[:2]] == ["2", "3"]
    last = pages[-1]
    expected_tail = END_MARKERS[marker](len(pages))
    assert {k: v for k, v in last.items() if k != "results"} == expected_tail
    assert len(pages) == (4 if marker == "empty_results" else 3)
    keys = [(ev.at, int(ev.id)) for ev in sorted(truth, key=lambda e: ids.index(e.id))]
    if order == "desc":
        assert keys == sorted(keys, reverse=True)
    elif order == "asc":
        assert keys == sorted(keys)
    else:
        assert keys not in (sorted(keys), sorted(keys, reverse=True))
        assert [i["event_id"] for i in _items(_walk(emu, http, org, per_page=50))] == ids


def test_default_page_size_and_past_the_end(make_emu: MakeEmu, http: requests.Session) -> None:
    emu = make_emu(events_per_org=40)
    first = _audit(emu, http, "acme-corp").json()
    assert (len(first["results"]), first["nextPage"]) == (30, "2")
    second = _audit(emu, http, "acme-corp", page="2").json()
    assert (len(second["results"]), second["nextPage"]) == (10, None)
    assert _audit(emu, http, "acme-corp", page="9").json() == {"results": [], "nextPage": None}


# ---- filters --------------------------------------------------------------------------------
FROM_EXPECTED: dict[str, Callable[[float, float], bool]] = {
    "upper": lambda at, bound: at <= bound,
    "lower": lambda at, bound: at >= bound,
    "ignored": lambda at, bound: True,
}


@pytest.mark.parametrize("reading", sorted(FROM_EXPECTED))
def test_from_readings(make_emu: MakeEmu, http: requests.Session, reading: str) -> None:
    emu = make_emu(seed=2, events_per_org=150, socket_from=reading)
    truth = _org_truth(emu, "initech")
    bound = int(truth[len(truth) // 2].at.timestamp())
    pages = _walk(emu, http, "initech", per_page=100, **{"from": bound})
    got = {i["event_id"] for i in _items(pages)}
    want = {ev.id for ev in truth if FROM_EXPECTED[reading](ev.at.timestamp(), bound)}
    assert got == want
    assert 0 < len(got) <= len(truth)


def test_from_reading_changes_at_runtime(make_emu: MakeEmu, http: requests.Session) -> None:
    emu = make_emu(seed=2, events_per_org=60)
    before = emu.truth("socket")
    bound = int(before[30].at.timestamp())
    upper = _items(_walk(emu, http, "acme-corp", per_page=100, **{"from": bound}))
    emu.configure(socket_from="lower")
    lower = _items(_walk(emu, http, "acme-corp", per_page=100, **{"from": bound}))
    assert {i["event_id"] for i in upper} | {i["event_id"] for i in lower} == {
        ev.id for ev in before if ev.org == "acme-corp"
    }
    assert emu.truth("socket") == before  # data not regenerated


def test_type_filter(make_emu: MakeEmu, http: requests.Session) -> None:
    emu = make_emu(seed=6)
    truth = _org_truth(emu, "acme-corp")
    wanted = truth[0].item["type"]
    pascal = next(t for t in EVENT_TYPES if lower_camel(t) == wanted)
    got = _items(_walk(emu, http, "acme-corp", per_page=100, type=pascal))
    assert {i["type"] for i in got} == {wanted}
    assert sorted(i["event_id"] for i in got) == sorted(
        ev.id for ev in truth if ev.item["type"] == wanted
    )


BAD_PARAMS: list[dict[str, str]] = [
    {"per_page": "0"},
    {"per_page": "101"},
    {"per_page": "ten"},
    {"page": "0"},
    {"page": "abc"},
    {"from": "yesterday"},
    {"type": "createApiToken"},  # lowerCamel is the item form, not a query value
]


@pytest.mark.parametrize(
    "params", BAD_PARAMS, ids=lambda p: "&".join(f"{k}={v}" for k, v in p.items())
)
def test_bad_parameters_are_400(
    make_emu: MakeEmu, http: requests.Session, params: dict[str, str]
) -> None:
    emu = make_emu(events_per_org=5)
    resp = _audit(emu, http, "acme-corp", **params)
    assert resp.status_code == 400
    assert resp.json()["error"]["details"] is None
    assert resp.json()["error"]["message"]


# ---- auth and errors --------------------------------------------------------------------------
def _basic(text: str) -> str:
    return "Basic " + base64.b64encode(text.encode()).decode()


AUTH_CASES: list[tuple[str, str | None, int]] = [
    ("bearer", f"Bearer {SOCKET_TOKEN}", 200),
    ("basic with colon", _basic(f"{SOCKET_TOKEN}:"), 200),
    ("basic without colon", _basic(SOCKET_TOKEN), 200),
    ("missing", None, 401),
    ("wrong bearer", "Bearer sktsec_wrong", 401),
    ("basic with password", _basic(f"{SOCKET_TOKEN}:secret"), 401),
    ("basic garbage", "Basic !!!", 401),
    ("other scheme", f"Token {SOCKET_TOKEN}", 401),
]


@pytest.mark.parametrize(
    ("header", "status"), [c[1:] for c in AUTH_CASES], ids=[c[0] for c in AUTH_CASES]
)
def test_auth(make_emu: MakeEmu, header: str | None, status: int) -> None:
    emu = make_emu(events_per_org=5)
    headers = {"Authorization": header} if header else {}
    for path in ("/organizations", "/orgs/globex/audit-log", "/quota"):
        resp = requests.get(emu.base_url("socket") + path, headers=headers, timeout=5)
        assert resp.status_code == status, path
        if status == 401:
            assert set(resp.json()["error"]) == {"message", "details"}


def test_unknown_org_404_forbidden_org_403(make_emu: MakeEmu, http: requests.Session) -> None:
    emu = make_emu(events_per_org=5, socket_forbidden_orgs={"globex"})
    assert _audit(emu, http, "nope").status_code == 404
    forbidden = _audit(emu, http, "globex")
    assert forbidden.status_code == 403
    assert "Insufficient permissions" in forbidden.json()["error"]["message"]
    orgs = http.get(f"{emu.base_url('socket')}/organizations").json()["organizations"]
    slugs = [org["slug"] for org in orgs.values()]
    assert "globex" in slugs  # listed, but its audit log is refused
    emu.configure(socket_forbidden_orgs=set())
    assert _audit(emu, http, "globex").status_code == 200
    assert http.get(f"{emu.base_url('socket')}/nothing-here").status_code == 404
    assert requests.get(f"{emu.base_url('socket')}/nothing-here", timeout=5).status_code == 401
    assert http.get(f"{emu.url}/unknown-provider/v1/x").status_code == 404
    assert emu.requests()[-1].provider is None


# ---- faults -------------------------------------------------------------------------------------
SIMPLE_FAULTS: dict[str, tuple[int, str]] = {  # kind -> (status, content type)
    "429": (429, "application/json"),
    "500": (500, "application/json"),
    "502": (502, "text/html"),
    "503": (503, "text/html"),
    "badjson": (200, "application/json"),
}


@pytest.mark.parametrize("kind", sorted(SIMPLE_FAULTS))
def test_status_faults(make_emu: MakeEmu, http: requests.Session, kind: str) -> None:
    emu = make_emu(events_per_org=5, faults=[FaultRule(kind, nth=(2,))])
    ok = _audit(emu, http, "globex")
    faulted = _audit(emu, http, "globex")
    again = _audit(emu, http, "globex")
    status, content_type = SIMPLE_FAULTS[kind]
    assert (ok.status_code, faulted.status_code, again.status_code) == (200, status, 200)
    assert faulted.headers["Content-Type"] == content_type
    assert int(faulted.headers["Content-Length"]) == len(faulted.content)
    if kind == "badjson":
        with pytest.raises(json.JSONDecodeError):
            json.loads(faulted.content)
    assert [r.fault for r in emu.requests("socket")] == [None, kind, None]
    assert emu.requests("socket")[1].status == status


@pytest.mark.parametrize(
    ("retry_after", "expect_s"),
    [(None, 1), (7, 7), ("date:30", 30)],
    ids=["default", "int", "date"],
)
def test_429_retry_after(
    make_emu: MakeEmu, http: requests.Session, retry_after: int | str | None, expect_s: int
) -> None:
    emu = make_emu(events_per_org=5, faults=[FaultRule("429", nth=(1,), retry_after=retry_after)])
    resp = _audit(emu, http, "globex")
    assert resp.status_code == 429
    header = resp.headers["Retry-After"]
    if isinstance(retry_after, str):
        wait = (parsedate_to_datetime(header) - datetime.now(UTC)).total_seconds()
        assert expect_s - 2 <= wait <= expect_s + 1
    else:
        assert header == str(expect_s)


def test_drop_fault(make_emu: MakeEmu, http: requests.Session) -> None:
    emu = make_emu(events_per_org=5, faults=[FaultRule("drop", nth=(1,))])
    assert _raw_get(emu, "/socket/v0/orgs/globex/audit-log") == b""
    assert _audit(emu, http, "globex").status_code == 200
    emu.reset_requests()
    with pytest.raises(requests.ConnectionError):
        _audit(emu, http, "globex")
    assert [(r.status, r.fault) for r in emu.requests()] == [(0, "drop")]


def test_truncate_fault(make_emu: MakeEmu, http: requests.Session) -> None:
    emu = make_emu(events_per_org=50, faults=[FaultRule("truncate", nth=(1, 2))])
    length, body = _content_length(_raw_get(emu, "/socket/v0/orgs/globex/audit-log?per_page=50"))
    assert length > 1000
    assert len(body) == length // 2
    with pytest.raises((requests.exceptions.ChunkedEncodingError, requests.ConnectionError)):
        _audit(emu, http, "globex")
    assert _audit(emu, http, "globex").status_code == 200


def test_slow_fault_and_latency(make_emu: MakeEmu, http: requests.Session) -> None:
    emu = make_emu(events_per_org=5, faults=[FaultRule("slow", nth=(1,), delay_s=0.3)])
    start = time.monotonic()
    assert _audit(emu, http, "globex").status_code == 200
    assert time.monotonic() - start >= 0.3
    emu.configure(faults=[FaultRule("slow", nth=(1,), delay_s=0.5)])  # numbering restarts
    with pytest.raises(requests.Timeout):
        http.get(f"{emu.base_url('socket')}/orgs/globex/audit-log", timeout=0.1)
    emu.configure(latency_s=0.2, faults=[])
    start = time.monotonic()
    assert _audit(emu, http, "globex").status_code == 200
    assert time.monotonic() - start >= 0.2


def test_random_faults_are_bounded_and_deterministic(make_emu: MakeEmu) -> None:
    def statuses(emu: Emulator, n: int) -> list[int]:
        with requests.Session() as s:
            s.headers["Authorization"] = f"Bearer {SOCKET_TOKEN}"
            url = f"{emu.base_url('socket')}/quota"
            return [s.get(url, timeout=5).status_code for _ in range(n)]

    storm = make_emu(events_per_org=5, faults=[FaultRule("500", probability=1.0)])
    assert statuses(storm, 9) == [500, 500, 200] * 3  # max_consecutive_faults=2
    a = make_emu(seed=9, events_per_org=5, faults=[FaultRule("503", probability=0.4)])
    b = make_emu(seed=9, events_per_org=5, faults=[FaultRule("503", probability=0.4)])
    pattern = statuses(a, 40)
    assert pattern == statuses(b, 40)
    assert {200, 503} <= set(pattern)
    assert "503, 503, 503" not in str(pattern)


def test_nth_faults_ignore_the_guard_and_provider_filter(
    make_emu: MakeEmu, http: requests.Session
) -> None:
    emu = make_emu(
        events_per_org=5,
        faults=[FaultRule("503", nth=(1, 2, 3, 4)), FaultRule("500", nth=(5,), provider="other")],
    )
    got = [_audit(emu, http, "globex").status_code for _ in range(5)]
    assert got == [503, 503, 503, 503, 200]
    emu.reset_requests()  # numbering restarts
    assert _audit(emu, http, "globex").status_code == 503


# ---- quota ------------------------------------------------------------------------------
def test_quota_window_and_reset(make_emu: MakeEmu, http: requests.Session) -> None:
    emu = make_emu(events_per_org=5, quota={"socket": QuotaRule(3, 60)})
    base = emu.base_url("socket")
    assert [_audit(emu, http, "globex").status_code for _ in range(2)] == [200, 200]
    assert http.get(f"{base}/organizations").status_code == 200
    over = _audit(emu, http, "globex")
    assert over.status_code == 429
    assert 55 <= int(over.headers["Retry-After"]) <= 60
    assert "quota" in over.json()["error"]["message"].lower()
    quota = http.get(f"{base}/quota")  # free, even when over
    assert quota.status_code == 200
    assert (quota.json()["quota"], quota.json()["maxQuota"]) == (0, 3)
    refresh = datetime.strptime(quota.json()["nextWindowRefresh"], "%Y-%m-%dT%H:%M:%S.%f%z")
    assert timedelta(seconds=55) < refresh - datetime.now(UTC) <= timedelta(seconds=60)
    emu.reset_quota("socket")
    assert _audit(emu, http, "globex").status_code == 200


def test_quota_window_expires(make_emu: MakeEmu, http: requests.Session) -> None:
    emu = make_emu(events_per_org=5, quota={"socket": QuotaRule(1, 0.3)})
    emu.reset_quota()  # the window starts now
    assert _audit(emu, http, "globex").status_code == 200
    over = _audit(emu, http, "globex")
    assert (over.status_code, over.headers["Retry-After"]) == (429, "1")
    time.sleep(0.35)
    assert _audit(emu, http, "globex").status_code == 200


# ---- events arriving ----------------------------------------------------------------------
def test_arrivals_during_a_sync(make_emu: MakeEmu, http: requests.Session) -> None:
    emu = make_emu(events_per_org=20, arrivals_every=3)
    before = {ev.id for ev in emu.truth("socket")}
    newest = max(ev.at for ev in emu.truth("socket"))
    for _ in range(6):
        http.get(f"{emu.base_url('socket')}/quota")
    new = [ev for ev in emu.truth("socket") if ev.id not in before]
    assert len(new) == 2
    assert all(ev.at > newest for ev in new)
    for ev in new:
        first = _audit(emu, http, ev.org, per_page=5).json()["results"][0]
        assert first["event_id"] in {e.id for e in new}


def test_add_events_now_and_late(make_emu: MakeEmu, http: requests.Session) -> None:
    emu = make_emu(events_per_org=30)
    late_at = FIXED_NOW - timedelta(days=10)
    late = emu.add_events("socket", "globex", 2, ts=late_at)
    fresh = emu.add_events("socket", "globex", 1)
    assert [ev.at for ev in late] == [late_at, late_at]
    assert fresh[0].at > FIXED_NOW - timedelta(hours=1)
    ids = [i["event_id"] for i in _items(_walk(emu, http, "globex", per_page=100))]
    assert ids[0] == fresh[0].id
    assert {ev.id for ev in late} <= set(ids[1:-1])  # in the middle, by created_at
    assert len(_org_truth(emu, "globex")) == 33
    with pytest.raises(ValueError, match="no org"):
        emu.add_events("socket", "nope", 1)


# ---- scenario, log, server ------------------------------------------------------------------
def test_scenario_validation_and_configure(make_emu: MakeEmu) -> None:
    with pytest.raises(TypeError):
        Scenario(socket_ordr="asc")
    with pytest.raises(ValueError, match="not allowed"):
        Scenario(socket_order="sideways")
    with pytest.raises(ValueError, match="unknown fault kind"):
        FaultRule("teapot")
    scn = Scenario(socket_order="asc", socket_orgs=["a", "b"])
    assert (scn.socket_order, scn.socket_end_marker, scn.socket_orgs) == ("asc", "null", ("a", "b"))
    emu = make_emu(events_per_org=5)
    for change in ({"seed": 2}, {"socket_orgs": ["x"]}, {"events_per_org": 9}):
        with pytest.raises(ValueError, match="new Emulator"):
            emu.configure(**change)
    emu.configure(socket_order="random", socket_end_marker="missing")
    assert emu.scenario.socket_order == "random"


def test_request_log(make_emu: MakeEmu, http: requests.Session) -> None:
    emu = make_emu(events_per_org=5)
    _audit(emu, http, "initech", per_page=2, type="CreateApiToken")
    http.get(f"{emu.base_url('socket')}/organizations")
    first, second = emu.requests("socket")
    assert (first.method, first.path, first.status, first.fault, first.org) == (
        "GET",
        "/socket/v0/orgs/initech/audit-log",
        200,
        None,
        "initech",
    )
    assert first.query == {"per_page": "2", "type": "CreateApiToken"}
    assert (second.path, second.org) == ("/socket/v0/organizations", None)
    assert emu.requests("configcat") == []
    emu.reset_requests()
    assert emu.requests() == []


def test_keep_alive_without_nagle_stalls(make_emu: MakeEmu, http: requests.Session) -> None:
    emu = make_emu(events_per_org=100)
    _audit(emu, http, "globex", per_page=100)
    start = time.monotonic()
    for _ in range(60):
        assert _audit(emu, http, "globex", per_page=100).status_code == 200
    assert time.monotonic() - start < 1.2  # a 40 ms stall per request would take 2.4 s
    assert emu._server is not None
    assert len(emu._server.connections) == 1  # one reused connection


def test_stop_is_fast_and_closes_the_port(http: requests.Session) -> None:
    emu = Emulator(Scenario(events_per_org=5)).start()
    assert http.get(f"{emu.base_url('socket')}/quota").status_code == 200  # an open keep-alive
    start = time.monotonic()
    emu.stop()
    assert time.monotonic() - start < 1.0
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", emu.port), timeout=1).close()


def test_quiet_on_stderr(make_emu: MakeEmu, capfd: pytest.CaptureFixture[str]) -> None:
    faults = [FaultRule(kind, nth=(i + 1,)) for i, kind in enumerate(["drop", "truncate", "502"])]
    emu = make_emu(events_per_org=5, faults=faults)
    for _ in range(4):
        with contextlib.suppress(requests.RequestException):
            requests.get(f"{emu.base_url('socket')}/quota", timeout=5)
    requests.get(f"{emu.url}/nope", timeout=5)
    emu.stop()
    assert capfd.readouterr().err == ""


def test_plugins_config_and_credentials(make_emu: MakeEmu) -> None:
    assert "socket" in available_providers()
    emu = make_emu(events_per_org=5)
    assert emu.tap_config()["socket"] == {
        "api_token": SOCKET_TOKEN,
        "base_url": f"{emu.url}/socket/v0",
    }
    assert Emulator.credentials("socket") == {"api_token": SOCKET_TOKEN}
    assert "do_not_leak" in SOCKET_TOKEN
    with pytest.raises(ValueError, match="unknown providers"):
        Emulator(Scenario(providers=["nirvana-nope"]))


def test_standalone_cli(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.emulator", "--port", "0", "--seed", "1", "--events", "7",
         "--write-config", str(config), "--set", "socket_order=asc"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        settings = json.loads(config.read_text())["socket"]
        assert settings["base_url"] == f"{url}/socket/v0"
        resp = requests.get(
            f"{settings['base_url']}/orgs/globex/audit-log",
            headers={"Authorization": f"Bearer {settings['api_token']}"},
            timeout=5,
        )
        times = [i["created_at"] for i in resp.json()["results"]]
        assert len(times) == 7
        assert times == sorted(times)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0


# ---- served views: one filtered, sorted list per query, reused until the data changes -------
def _ids(body: dict[str, Any]) -> list[str]:
    return [item["event_id"] for item in body["results"]]


def _desc_ids(emu: Emulator, org: str) -> list[str]:
    return [ev.id for ev in sorted(_org_truth(emu, org), key=lambda e: (e.at, int(e.id)))][::-1]


def test_a_full_read_builds_one_view(make_emu: MakeEmu, http: requests.Session) -> None:
    emu = make_emu(events_per_org=300)
    views = emu.provider("socket").views
    pages = _walk(emu, http, "globex", per_page=20)
    assert [i["event_id"] for i in _items(pages)] == _desc_ids(emu, "globex")
    assert (views.misses, views.hits) == (1, len(pages) - 1)  # pages are slices of one view
    _walk(emu, http, "globex", per_page=7)  # the page size is not part of the view
    assert views.misses == 1
    _walk(emu, http, "globex", per_page=100, type="CreateApiToken")  # another query
    _walk(emu, http, "acme-corp", per_page=100)  # another org
    assert (views.misses, len(views)) == (3, 3)


def test_views_follow_events_added_mid_read(make_emu: MakeEmu, http: requests.Session) -> None:
    emu = make_emu(events_per_org=60)
    views = emu.provider("socket").views
    first = _audit(emu, http, "globex", per_page=20).json()
    assert _ids(first) == _desc_ids(emu, "globex")[:20]
    _audit(emu, http, "acme-corp", per_page=20)
    assert len(views) == 2
    fresh = emu.add_events("socket", "globex", 3)  # newest first: shifts every page by 3
    assert len(views) == 1  # only globex's views were dropped
    second = _audit(emu, http, "globex", per_page=20, page=2).json()
    assert _ids(second) == _desc_ids(emu, "globex")[20:40]
    assert _ids(second)[:3] == _ids(first)[-3:]
    late = emu.add_events("socket", "globex", 2, ts=FIXED_NOW - timedelta(days=60))
    third = _audit(emu, http, "globex", per_page=20, page=4).json()
    assert _ids(third) == _desc_ids(emu, "globex")[60:]
    assert _ids(third)[-2:] == [ev.id for ev in late][::-1]  # the oldest: at the very end
    assert {ev.id for ev in fresh} <= set(_desc_ids(emu, "globex")[:3])
    # Late events straight into the provider (tests do this for exact timestamps).
    configcat = make_emu(events_per_org=30, providers=["configcat"])
    org = CONFIGCAT_ORGS[0]
    url = f"{configcat.base_url('configcat')}/v2/organizations/{org}/auditlogs"
    auth = base64.b64encode(
        "{username}:{password}".format(**Emulator.credentials("configcat")).encode()
    ).decode()
    params: dict[str, Any] = {
        "fromUtcDateTime": (FIXED_NOW - timedelta(days=29)).isoformat(),
        "toUtcDateTime": FIXED_NOW.isoformat(),
    }
    headers = {"Authorization": f"Basic {auth}"}
    before = requests.get(url, params=params, headers=headers, timeout=5).json()
    stamp = (FIXED_NOW - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S.1234567+00:00")
    provider = configcat.provider("configcat")
    assert isinstance(provider, ConfigCatProvider)
    [late_item] = provider.add_at(org, [stamp])
    after = requests.get(url, params=params, headers=headers, timeout=5).json()
    assert after["paging"]["totalCount"] == before["paging"]["totalCount"] + 1
    assert after["data"][0]["auditLogId"] == late_item.item["auditLogId"]


def test_views_follow_arrivals(make_emu: MakeEmu, http: requests.Session) -> None:
    emu = make_emu(events_per_org=40, arrivals_every=2, socket_orgs=["solo"])
    page: Any = "1"
    while page not in END_VALUES:
        expected = _desc_ids(emu, "solo")[(int(page) - 1) * 10 :][:10]
        body = _audit(emu, http, "solo", per_page=10, page=page).json()  # then 1 arrives
        assert _ids(body) == expected
        page = body["nextPage"]
    assert len(_org_truth(emu, "solo")) > 40  # events arrived during the read


def test_views_follow_configure(make_emu: MakeEmu, http: requests.Session) -> None:
    emu = make_emu(events_per_org=50)
    assert _ids(_audit(emu, http, "globex", per_page=10).json()) == _desc_ids(emu, "globex")[:10]
    emu.configure(socket_order="asc")
    asc = _audit(emu, http, "globex", per_page=10).json()
    assert _ids(asc) == _desc_ids(emu, "globex")[::-1][:10]
    bound = int(_org_truth(emu, "globex")[25].at.timestamp())
    upper = {
        i["event_id"] for i in _items(_walk(emu, http, "globex", per_page=100, **{"from": bound}))
    }
    emu.configure(socket_from="lower")
    lower = {
        i["event_id"] for i in _items(_walk(emu, http, "globex", per_page=100, **{"from": bound}))
    }
    assert upper | lower == set(_desc_ids(emu, "globex"))
    assert len(upper & lower) < 3  # only events at the bound itself
    # A switch set behind configure's back still takes effect: switches are part of the key.
    emu.scenario.socket_order = "desc"
    assert _ids(_audit(emu, http, "globex", per_page=10).json()) == _desc_ids(emu, "globex")[:10]
    # Nirvana: filters honoured, then ignored.
    nirvana = f"{emu.base_url('nirvana')}/v1/audit_logs"
    key = {"Authorization": f"Bearer {Emulator.credentials('nirvana')['api_key']}"}
    newest = max(ev.at for ev in emu.truth("nirvana"))
    params: dict[str, Any] = {
        "limit": 100,
        "created_at_min": newest.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
    }
    honoured = requests.get(nirvana, params=params, headers=key, timeout=5).json()
    emu.configure(nirvana_filters="ignored")
    ignored = requests.get(nirvana, params=params, headers=key, timeout=5).json()
    assert honoured["pagination"]["total_count"] < ignored["pagination"]["total_count"] == 50


def test_view_cache_is_bounded() -> None:
    event = Emulator(Scenario(events_per_org=1, providers=["nirvana"])).truth("nirvana")[0]
    cache = ViewCache(max_views=3, max_items=10)
    view = [event] * 4
    for n in range(5):
        assert cache.get(("org", n), lambda: list(view)) == view
    assert len(cache) == 2  # 3 views would hold 12 > 10 items
    assert cache.get(("org", 4), list) == view  # a hit: not rebuilt
    cache.get(("big", 0), lambda: [event] * 50)
    assert len(cache) == 1  # the newest view stays, even alone over the bound
    cache.clear("big")
    assert len(cache) == 0


# ---- request times, rate limits, concurrency --------------------------------------------------
def test_request_times_and_peak(make_emu: MakeEmu, http: requests.Session) -> None:
    emu = make_emu(events_per_org=5)
    start = time.monotonic()
    for _ in range(5):
        _audit(emu, http, "globex")
    time.sleep(0.4)
    http.get(f"{emu.base_url('socket')}/quota")  # any route counts
    _audit(emu, http, "nope")  # so does a 404
    records = emu.requests("socket")
    assert all(start <= r.at <= time.monotonic() for r in records)
    assert [r.at for r in records] == sorted(r.at for r in records)
    assert emu.peak_requests("socket", 0.3) == 5
    assert emu.peak_requests("socket", 60) == 7
    assert emu.peak_requests("torq", 60) == 0
    dropped = make_emu(events_per_org=5, faults=[FaultRule("drop", nth=(1,))])
    with contextlib.suppress(requests.RequestException):
        http.get(f"{dropped.base_url('socket')}/quota", timeout=5)
    http.get(f"{dropped.base_url('socket')}/quota", timeout=5)
    assert [r.status for r in dropped.requests("socket")] == [0, 200]
    assert dropped.peak_requests("socket", 60) == 1  # no answer, not counted


def test_rate_limit_429_and_recovery(make_emu: MakeEmu, http: requests.Session) -> None:
    declared = {p.key: p.source_class.rate_limit for p in all_providers()}
    assert documented_rate_limits() == {k: v for k, v in declared.items() if v is not None}, (
        "the emulator enforces the limits the tap keeps"
    )
    emu = make_emu(events_per_org=5, rate_limits={"socket": (3, 0.6)})
    assert [_audit(emu, http, "globex").status_code for _ in range(3)] == [200] * 3
    over = _audit(emu, http, "globex")
    assert (over.status_code, over.headers["Retry-After"]) == (429, "1")  # 0.6 s, rounded up
    assert "rate limit" in over.json()["error"]["message"].lower()  # Socket's error body
    assert http.get(f"{emu.base_url('socket')}/quota").status_code == 429  # every route
    log = emu.requests("socket")
    assert [(r.status, r.fault, r.org) for r in log[3:]] == [
        (429, "rate_limit", "globex"),
        (429, "rate_limit", None),
    ]
    assert emu.requests("nirvana") == []  # other providers are not limited
    assert requests.get(f"{emu.base_url('nirvana')}/v1/audit_logs", timeout=5).status_code == 401
    third_accepted = log[2].at
    time.sleep(max(0.0, third_accepted + 0.62 - time.monotonic()))  # all 3 left the window
    assert [_audit(emu, http, "globex").status_code for _ in range(4)] == [200, 200, 200, 429]
    # Rejected requests are not counted: hammering does not push the window out.
    emu.configure(rate_limits={"socket": (2, 60)})  # fresh windows
    assert [_audit(emu, http, "globex").status_code for _ in range(6)] == [200, 200] + [429] * 4
    assert 59 <= int(_audit(emu, http, "globex").headers["Retry-After"]) <= 60
    assert emu.peak_requests("socket", 60) > 2  # the peak counts the 429s too
    emu.configure(rate_limits={})
    assert _audit(emu, http, "globex").status_code == 200
    with pytest.raises(ValueError, match="rate_limits"):
        emu.configure(rate_limits={"socket": (0, 1.0)})
    with pytest.raises(ValueError, match="rate_limits"):
        Scenario(rate_limits={"torq": 50})  # type: ignore[dict-item]


def test_rate_limit_comes_before_faults(make_emu: MakeEmu, http: requests.Session) -> None:
    emu = make_emu(
        events_per_org=5,
        rate_limits={"socket": (1, 60)},
        faults=[FaultRule("503", nth=(2,))],
        arrivals_every=2,
    )
    before = len(emu.truth("socket"))
    assert [_audit(emu, http, "globex").status_code for _ in range(3)] == [200, 429, 429]
    assert len(emu.truth("socket")) == before  # rejected: no arrival either
    emu.configure(rate_limits={})
    assert _audit(emu, http, "globex").status_code == 503  # the provider's 2nd request


def test_parallel_requests_overlap_their_latency(make_emu: MakeEmu) -> None:
    emu = make_emu(events_per_org=50, latency_s=0.1)
    url = f"{emu.base_url('socket')}/orgs/globex/audit-log"
    sessions = [requests.Session() for _ in range(8)]
    for session in sessions:  # connect first: time only the requests
        session.headers["Authorization"] = f"Bearer {SOCKET_TOKEN}"
        assert session.get(f"{emu.base_url('socket')}/quota", timeout=5).status_code == 200
    emu.reset_requests()
    barrier = threading.Barrier(len(sessions) + 1)
    statuses: list[int] = []

    def fetch(session: requests.Session) -> None:
        barrier.wait()
        statuses.append(session.get(url, params={"per_page": 100}, timeout=5).status_code)

    threads = [threading.Thread(target=fetch, args=(s,)) for s in sessions]
    for thread in threads:
        thread.start()
    barrier.wait()
    start = time.monotonic()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - start
    for session in sessions:
        session.close()
    assert statuses == [200] * 8
    assert 0.1 <= elapsed < 0.5, elapsed  # one after another: 0.8 s
    assert emu.peak_requests("socket", 0.1) == 8  # all taken before any answer went out


def test_the_request_log_keeps_bodies(make_emu: MakeEmu) -> None:
    """JSON decoded, anything else as the bytes sent, None without a body."""
    emu = make_emu(providers=("socket",), events_per_org=1)
    url = f"{emu.url}/socket/v0/nowhere"
    requests.post(url, json={"cursor": "c1", "limit": 2}, timeout=5)
    requests.post(url, data=b"\xff not json", timeout=5)
    requests.get(url, timeout=5)
    assert [(r.method, r.body) for r in emu.requests("socket")] == [
        ("POST", {"cursor": "c1", "limit": 2}),
        ("POST", b"\xff not json"),
        ("GET", None),
    ]
