"""ConfigCat audit log over HTTP against the emulator: completeness, windows, incrementality,
backfill cost, kills, faults, errors and secrets, v1 readings, item generations, timestamps.
The first tests check the emulator module itself against ConfigCat's published schemas."""

from __future__ import annotations

import base64
import copy
import itertools
import json
import logging
import random
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import requests

from tap_auditlogs.core.errors import ConfigError
from tap_auditlogs.core.instants import NS_PER_SECOND, format_instant, parse_instant
from tap_auditlogs.providers.configcat.paging import ConfigCatPaginator, PageIgnoredError
from tap_auditlogs.tap import TapAuditLogs
from tests.conftest import run_tap, run_tap_cli, tap_config
from tests.data import documented
from tests.emulator import FaultRule
from tests.emulator.configcat import (
    AUDIT_LOG_TYPES,
    CURRENT_AUDIT_LOG_TYPES,
    ORG_IDS,
    PASSWORD,
    USERNAME,
)
from tests.unified_cases import Case, check_documented_enum, check_known_events

STREAM = "configcat_audit_log"
SPECS = Path(__file__).resolve().parent / "data" / "specs"
DAY = timedelta(days=1)
MAX_SPAN_NS = 30 * 86_400 * NS_PER_SECOND
WINDOW_NS = MAX_SPAN_NS - NS_PER_SECOND  # the tap's window: 30 days less its 1 s margin
EXTRA_ORG = "d3adbeef-0000-4000-8000-00000000cafe"
UNKNOWN_ORG = "00000000-0000-4000-8000-000000000000"


# ---- helpers ------------------------------------------------------------------------------
def configcat(emulator, **scenario: Any):
    """An emulator playing ConfigCat only."""
    return emulator(providers=("configcat",), **scenario)


def ago(days: float) -> str:
    return (datetime.now(timezone.utc) - timedelta(days=days)).isoformat()


def truth(emu, since: str | None = None) -> set[tuple[str, str]]:
    """(org, id) of every event, at or after ``since`` (compared on the emulator's own ns)."""
    floor = parse_instant(since) if since else None
    ns = emu.provider("configcat").ns
    return {(e.org, e.id) for e in emu.truth("configcat") if floor is None or ns[e.id] >= floor}


def keys(run) -> list[tuple[str, str]]:
    return [(r["organizationId"], str(r["auditLogId"])) for r in run.records(STREAM)]


def audit_requests(emu) -> list:
    return [r for r in emu.requests("configcat") if r.path.endswith("/auditlogs")]


def window_of(request) -> tuple[int, int]:
    return parse_instant(request.query["fromUtcDateTime"]), parse_instant(
        request.query["toUtcDateTime"]
    )


def assert_windows_valid(emu, max_span_ns: int = MAX_SPAN_NS) -> None:
    for request in audit_requests(emu):
        assert request.status in (200, 0) or request.fault, request
        lower, upper = window_of(request)  # both dates are always set
        assert 0 < upper - lower <= max_span_ns, request.query


def stderr_errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "ERROR" in line]


def openapi_to_jsonschema(node: Any) -> Any:
    """OpenAPI 3.0 ``nullable: true`` -> JSON Schema ``type: [T, "null"]``."""
    if isinstance(node, list):
        return [openapi_to_jsonschema(x) for x in node]
    if not isinstance(node, dict):
        return node
    out = {k: openapi_to_jsonschema(v) for k, v in node.items() if k != "nullable"}
    if node.get("nullable") is True and isinstance(node.get("type"), str):
        out["type"] = [node["type"], "null"]
    if node.get("nullable") is True and "allOf" in node:
        out = {"anyOf": [{"allOf": out.pop("allOf")}, {"type": "null"}], **out}
    return out


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    path = SPECS / "configcat.json"
    return {k: openapi_to_jsonschema(v) for k, v in json.loads(path.read_text()).items()}


@pytest.fixture
def http() -> requests.Session:
    session = requests.Session()
    session.auth = (USERNAME, PASSWORD)
    return session


# ---- the emulator module ------------------------------------------------------------------
def test_emulator_answers_like_the_published_spec(emulator, http, spec) -> None:
    emu = configcat(emulator, seed=1, events_per_org=260, span_days=20)
    base = emu.base_url("configcat")
    orgs = http.get(f"{base}/v1/organizations", timeout=5)
    jsonschema.validate(orgs.json(), spec["organizations_200"])
    org = orgs.json()[0]["organizationId"]
    url = f"{base}/v2/organizations/{org}/auditlogs"
    items, page = [], 1
    while True:
        resp = http.get(url, params={"pageNumber": page, "pageSize": 100}, timeout=5)
        body = resp.json()
        jsonschema.validate(body, spec["v2_200"])
        assert body["paging"]["currentPage"] == page
        assert int(resp.headers["X-Rate-Limit-Remaining"]) >= 0
        assert resp.headers["X-Rate-Limit-Reset"]
        items += body["data"]
        if not body["paging"]["hasNext"]:
            break
        page += 1
    stamps = [parse_instant(i["auditLogDateTime"]) for i in items]
    assert stamps == sorted(stamps, reverse=True), "newest first"
    week_ago = parse_instant(ago(7))
    ns = emu.provider("configcat").ns
    expected = {e.id for e in emu.truth("configcat") if e.org == org and ns[e.id] >= week_ago}
    assert {str(i["auditLogId"]) for i in items} == expected, "no dates: the last 7 days"
    assert len(expected) < 260, "older events exist and were left out"
    assert all(i["auditLogDateTime"].endswith("+00:00") for i in items)
    digits = Counter(len(i["auditLogDateTime"][20:-6]) for i in items)
    assert len(digits) >= 5, f"fractional digits vary: {digits}"
    v1 = http.get(f"{base}/v1/organizations/{org}/auditlogs", timeout=5).json()
    jsonschema.validate(v1, spec["v1_200"])


def test_emulator_rules_filters_and_auth(emulator, http) -> None:
    emu = configcat(emulator, seed=2, events_per_org=200, span_days=60)
    org = ORG_IDS[0]
    url = f"{emu.base_url('configcat')}/v2/organizations/{org}/auditlogs"
    wide = {"fromUtcDateTime": ago(40), "toUtcDateTime": ago(9)}
    too_wide = http.get(url, params=wide, timeout=5)
    assert too_wide.status_code == 400
    assert list(too_wide.json()) == ["toUtcDateTime"]
    assert "30 days" in too_wide.json()["toUtcDateTime"][0]
    for size in (0, 101):
        bad = http.get(url, params={"pageSize": size}, timeout=5)
        assert (bad.status_code, list(bad.json())) == (400, ["pageSize"])
    assert requests.get(url, timeout=5).status_code == 401
    assert requests.get(url, auth=(USERNAME, "wrong"), timeout=5).status_code == 401
    assert http.get(f"{emu.base_url('configcat')}/v2/organizations/x/auditlogs").status_code == 404
    window = {"fromUtcDateTime": ago(29.9), "toUtcDateTime": ago(0), "pageSize": 100}
    provider = emu.provider("configcat")
    kind = Counter(e.item["auditLogTypeEnum"] for e in emu.truth("configcat")).most_common(1)[0][0]
    product = provider.scopes[org][0]["productId"]
    for params, keep in (
        ({"auditLogType": kind}, lambda e: e.item["auditLogTypeEnum"] == kind),
        ({"productId": product}, lambda e: provider.scope_of[e.id]["productId"] == product),
    ):
        data = http.get(url, params={**window, **params}, timeout=5).json()["data"]
        lower = parse_instant(window["fromUtcDateTime"])
        expected = {e.id for e in emu.truth("configcat") if e.org == org and keep(e)}
        expected = {i for i in expected if provider.ns[i] >= lower}
        assert {str(i["auditLogId"]) for i in data} == expected
        assert expected


def test_emulator_v1_modes_and_item_generations(emulator, http) -> None:
    emu = configcat(emulator, seed=3, events_per_org=150, span_days=6)
    org = ORG_IDS[1]
    url = f"{emu.base_url('configcat')}/v1/organizations/{org}/auditlogs"
    assert len(http.get(url, timeout=5).json()) == 150
    emu.configure(configcat_v1_mode="array_first_page")
    assert len(http.get(url, timeout=5).json()) == 100
    emu.configure(configcat_v1_mode="redirect")
    body = http.get(url, timeout=5).json()
    assert (len(body["data"]), body["paging"]["hasNext"], body["paging"]["pageSize"]) == (
        100,
        True,
        100,
    )
    emu.configure(configcat_v1_mode="http_redirect")
    moved = http.get(url, allow_redirects=False, timeout=5)
    assert moved.status_code == 301
    assert "/v2/organizations/" in moved.headers["Location"]
    old = configcat(emulator, seed=3, events_per_org=20, configcat_item_generation="old")
    items = [e.item for e in old.truth("configcat")]
    assert all("changeSetId" in i and "modelVersion" not in i for i in items)
    assert {i["auditLogTypeEnum"] for i in items} <= set(AUDIT_LOG_TYPES)


# ---- the tap ------------------------------------------------------------------------------
def test_every_event_of_every_org_once(emulator) -> None:
    orgs = (*ORG_IDS, EXTRA_ORG)
    emu = configcat(emulator, seed=11, configcat_orgs=orgs, events_per_org=250, span_days=70)
    start = ago(71)
    run = run_tap(tap_config(emu, start_date=start))
    assert run.exit_code == 0
    assert Counter(keys(run)).most_common(1)[0][1] == 1, "no duplicates on a clean run"
    assert set(keys(run)) == truth(emu)
    assert {r["organizationId"] for r in run.records(STREAM)} == set(orgs)
    assert_windows_valid(emu)
    assert all(r.query["pageSize"] == "100" for r in audit_requests(emu))
    assert emu.requests("configcat")[0].path == "/configcat/v1/organizations"
    state = run.final_state["bookmarks"][STREAM]["partitions"]
    assert sorted(p["context"]["organizationId"] for p in state) == sorted(orgs)


def test_second_run_is_one_request_per_org_and_new_and_late_events_come(emulator) -> None:
    emu = configcat(emulator, seed=12, events_per_org=220, span_days=20)
    config = tap_config(emu, start_date=ago(21))
    first = run_tap(config)
    emu.reset_requests()
    second = run_tap(config, state=copy.deepcopy(first.final_state))
    assert second.exit_code == 0
    assert second.records() == []
    assert len(audit_requests(emu)) == len(ORG_IDS), "one request per org: the last window"
    fresh = emu.add_events("configcat", ORG_IDS[0], 130) + emu.add_events(
        "configcat", ORG_IDS[2], 3
    )
    bookmark = parse_instant(second.final_state["bookmarks"][STREAM]["partitions"][1][
        "replication_key_value"
    ])  # fmt: skip
    late_at = datetime.fromtimestamp(bookmark / 1e9, tz=timezone.utc) - timedelta(minutes=2)
    late = emu.add_events("configcat", ORG_IDS[1], 2, ts=late_at)
    third = run_tap(config, state=copy.deepcopy(second.final_state))
    assert sorted(keys(third)) == sorted((e.org, e.id) for e in fresh + late)


def test_first_run_without_start_date_reads_the_last_7_days_and_says_so(emulator, caplog) -> None:
    emu = configcat(emulator, seed=13, events_per_org=120, span_days=20)
    run = run_tap(tap_config(emu))
    assert run.exit_code == 0
    lowers = {window_of(r)[0] for r in audit_requests(emu)}
    assert all(abs(parse_instant(ago(7)) - lower) < 60 * NS_PER_SECOND for lower in lowers)
    assert set(keys(run)) == truth(emu, since=format_instant(min(lowers) + NS_PER_SECOND))
    assert len(keys(run)) < len(truth(emu)), "older events exist; only the last week is read"
    said = [r for r in caplog.records if "last 7 days" in r.getMessage()]
    assert len(said) == 1, "said once per run, not per organization"
    assert "start_date" in said[0].getMessage()


@pytest.mark.parametrize("concurrency", [1, 8])
def test_two_year_backfill_costs_a_request_per_window_and_page(emulator, concurrency) -> None:
    emu = configcat(emulator, seed=14, configcat_orgs=ORG_IDS[:2], events_per_org=400,
                    span_days=730)  # fmt: skip
    start = ago(730)
    run = run_tap(tap_config(emu, start_date=start, concurrency=concurrency))
    assert run.exit_code == 0
    assert set(keys(run)) == truth(emu, since=start)
    assert_windows_valid(emu)
    span = parse_instant(ago(0)) - parse_instant(start)
    windows = -(-span // WINDOW_NS)
    assert windows == 25
    calls = audit_requests(emu)
    pages_beyond_first = sum(1 for r in calls if r.query["pageNumber"] != "1")
    assert len(calls) == 2 * windows + pages_beyond_first
    assert len(calls) <= 2 * windows + -(-len(truth(emu)) // 100)
    for org in ORG_IDS[:2]:
        firsts = [window_of(r) for r in calls if org in r.path and r.query["pageNumber"] == "1"]
        if concurrency == 1:
            assert firsts == sorted(firsts), "windows go oldest first"
        else:  # fetched side by side; emitted oldest first (test_parallel.py)
            firsts.sort()
        assert len(firsts) == windows
        for (_, upper), (lower, _) in itertools.pairwise(firsts):
            assert lower == upper - NS_PER_SECOND, "contiguous, from one second earlier"


def test_window_days_and_filters_shape_the_requests(emulator) -> None:
    emu = configcat(emulator, seed=15, events_per_org=200, span_days=30)
    kinds = [k for k, _ in Counter(e.item["auditLogTypeEnum"] for e in emu.truth("configcat"))
             .most_common(2)]  # fmt: skip
    provider = emu.provider("configcat")
    product = provider.scopes[ORG_IDS[0]][1]["productId"]
    settings = {"organization_ids": [ORG_IDS[0]], "window_days": 7, "product_id": product,
                "event_types": [kinds[0][:1].upper() + kinds[0][1:], kinds[1]]}  # fmt: skip
    start = ago(31)
    run = run_tap(tap_config(emu, start_date=start, configcat=settings))
    assert run.exit_code == 0
    expected = {
        (e.org, e.id)
        for e in emu.truth("configcat")
        if e.org == ORG_IDS[0]
        and e.item["auditLogTypeEnum"] in kinds
        and provider.scope_of[e.id]["productId"] == product
    }
    assert set(keys(run)) == expected
    assert expected
    assert_windows_valid(emu, max_span_ns=7 * 86_400 * NS_PER_SECOND)
    calls = audit_requests(emu)
    assert {r.query["auditLogType"] for r in calls} == set(kinds)
    assert {r.query["productId"] for r in calls} == {product}
    assert len(calls) == 2 * 5, "2 types x 5 windows of 7 days"
    assert not any(r.path.endswith("/v1/organizations") for r in emu.requests("configcat"))
    contexts = [p["context"] for p in run.final_state["bookmarks"][STREAM]["partitions"]]
    assert contexts == [{"organizationId": ORG_IDS[0], "auditLogType": k} for k in kinds]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_killed_runs_resume_at_the_unfinished_window_without_loss(emulator, seed: int) -> None:
    rng = random.Random(seed)
    orgs = ORG_IDS[:2]
    emu = configcat(emulator, seed=100 + seed, configcat_orgs=orgs, events_per_org=330,
                    span_days=80)  # fmt: skip
    config = tap_config(emu, start_date=ago(81))
    state: dict | None = None
    emitted: set[tuple[str, str]] = set()
    kills = 0
    for _ in range(2):  # two runs killed with SIGKILL, each after a random number of records
        emu.add_events("configcat", rng.choice(orgs), rng.randint(0, 30))
        emu.reset_requests()
        run = run_tap_cli(config, state, kill_after_records=rng.randint(1, 400))
        kills += run.exit_code == -9
        if state is not None:  # it began at the saved windows, not at start_date
            saved = {
                p["context"]["organizationId"]: parse_instant(p["replication_key_value"])
                for p in state["bookmarks"][STREAM]["partitions"]
                if p.get("replication_key_value")
            }
            for request in audit_requests(emu):
                org = request.path.split("/")[4]
                if org in saved:
                    assert window_of(request)[0] >= saved[org] - 301 * NS_PER_SECOND
        emitted |= set(keys(run))
        state = run.final_state or state
        if run.exit_code == 0:
            break
    assert kills >= 1
    final = run_tap_cli(config, state)
    assert final.exit_code == 0, final.stderr
    emitted |= set(keys(final))
    assert truth(emu) - emitted == set()


def test_faults_do_not_lose_events(emulator) -> None:
    faults = [
        FaultRule("429", probability=0.08, retry_after=0),
        FaultRule("500", probability=0.04),
        FaultRule("502", probability=0.04),
        FaultRule("503", probability=0.04),
        FaultRule("drop", probability=0.04),
        FaultRule("truncate", probability=0.04),
        FaultRule("badjson", probability=0.04),
    ]
    emu = configcat(emulator, seed=21, events_per_org=300, span_days=60, faults=faults)
    start = ago(61)
    run = run_tap(tap_config(emu, start_date=start))
    assert run.exit_code == 0
    assert set(keys(run)) == truth(emu, since=start)
    assert {r.fault for r in emu.requests("configcat")} > {None}, "faults were injected"


def test_retry_after_is_honoured(emulator) -> None:
    emu = configcat(emulator, seed=22, events_per_org=50, span_days=5,
                    faults=[FaultRule("429", nth=(1,), retry_after=1)])  # fmt: skip
    started = time.monotonic()
    run = run_tap(tap_config(emu, configcat={"organization_ids": [ORG_IDS[0]]}))
    assert run.exit_code == 0
    assert time.monotonic() - started >= 1.0
    assert len(keys(run)) == 50


def test_bad_credentials_are_one_clear_line_naming_the_setting(emulator) -> None:
    emu = configcat(emulator, seed=23, events_per_org=10)
    wrong = "ccpw_wrong_Tq4Zx7Lm2vR8_42"
    settings = {"organization_ids": [ORG_IDS[0], ORG_IDS[1]], "password": wrong}
    run = run_tap_cli(tap_config(emu, configcat=settings))
    assert run.exit_code == 1
    assert "Traceback" not in run.stderr
    named = [line for line in stderr_errors(run.stderr) if "ConfigCat" in line]
    assert len(named) == 1, run.stderr
    # The organization whose request was refused first: read side by side, either one.
    assert ORG_IDS[0] in named[0] or ORG_IDS[1] in named[0], named[0]
    assert "configcat.password" in named[0]
    assert "public-api-credentials" in named[0]
    assert len(audit_requests(emu)) == 1, "the provider stops after the first refusal"
    assert wrong not in run.stderr
    assert wrong not in json.dumps(run.messages)


@pytest.mark.parametrize("level", ["debug", "info"])
def test_password_never_appears_in_any_output(emulator, level: str) -> None:
    faults = [
        FaultRule("429", nth=(2,), retry_after=0),
        FaultRule("500", nth=(3,)),
        FaultRule("drop", nth=(4,)),
        FaultRule("badjson", nth=(5,)),
    ]
    emu = configcat(emulator, seed=24, events_per_org=40, span_days=5, faults=faults)
    env = {"TAP_AUDITLOGS_LOGLEVEL": level, "LOGLEVEL": level}
    settings = {"organization_ids": [ORG_IDS[0], UNKNOWN_ORG]}
    run = run_tap_cli(tap_config(emu, configcat=settings), env=env)
    assert run.exit_code == 1, run.stderr  # the unknown organization: an error path
    named = [line for line in stderr_errors(run.stderr) if UNKNOWN_ORG in line]
    assert len(named) == 1
    assert "configcat.organization_ids" in named[0]
    basic = base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()
    for text in (run.stderr, json.dumps(run.messages)):
        assert PASSWORD not in text
        assert PASSWORD[10:26] not in text
        assert basic not in text
    assert len(keys(run)) == 40, "the known organization was read"
    if level == "debug":
        assert "DEBUG" in run.stderr, "debug logging was really on"
        assert "X-Rate-Limit-Remaining" in run.stderr


@pytest.mark.parametrize("concurrency", [1, 8])
@pytest.mark.parametrize("mode", ["array", "redirect", "redirect_fixed", "array_first_page"])
def test_v1_pinned_is_complete_under_every_reading(
    emulator, caplog, mode: str, concurrency: int
) -> None:
    emu = configcat(emulator, seed=25, configcat_orgs=ORG_IDS[:2], events_per_org=420,
                    span_days=40, configcat_v1_mode=mode)  # fmt: skip
    start = ago(41)
    config = tap_config(
        emu, start_date=start, concurrency=concurrency, configcat={"api_version": "v1"}
    )
    run = run_tap(config)
    assert run.exit_code == 0
    assert set(keys(run)) == truth(emu, since=start)
    calls = audit_requests(emu)
    assert all(r.path.startswith("/configcat/v1/organizations/") for r in calls)
    assert_windows_valid(emu)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    v1_warnings = [w for w in warnings if "api_version to v2" in w]
    if mode == "array":
        assert v1_warnings == []
        assert len(calls) == 2 * 2, "one bare array per window"
    else:
        assert 1 <= len(v1_warnings) <= 2, warnings
    if mode == "redirect":
        assert any(r.query.get("pageNumber") == "4" for r in calls), "the paging was followed"
        assert len(calls) <= 2 * 2 + -(-2 * 420 // 100), "a request per window and page"
    if mode == "redirect_fixed":
        tried = sum(r.query.get("pageNumber") == "2" for r in calls)
        if concurrency == 1:
            assert tried == 1, "tried paging once"
        else:  # windows read side by side (2 orgs x 2 windows) may each try before one learnt
            assert 1 <= tried <= 2 * 2, "tried paging at most once per window read side by side"
    fresh = emu.add_events("configcat", ORG_IDS[0], 5)
    again = run_tap(config, state=copy.deepcopy(run.final_state))
    assert sorted(keys(again)) == sorted((e.org, e.id) for e in fresh)


def test_v1_answered_by_an_http_redirect_stops_clearly(emulator, caplog) -> None:
    emu = configcat(emulator, seed=26, events_per_org=30, span_days=5,
                    configcat_v1_mode="http_redirect")  # fmt: skip
    run = run_tap(tap_config(emu, configcat={"api_version": "v1"}))
    assert run.exit_code == 1
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any("redirect" in e and "ConfigCat" in e for e in errors), errors
    assert run.records() == []
    partitions = (run.final_state or {}).get("bookmarks", {}).get(STREAM, {}).get("partitions", [])
    assert not any(p.get("replication_key_value") for p in partitions), "nothing was skipped"


@pytest.mark.parametrize("generation", ["current", "old"])
def test_both_item_generations_pass_the_stream_schema(emulator, generation: str) -> None:
    emu = configcat(emulator, seed=27, events_per_org=80, span_days=5,
                    configcat_item_generation=generation)  # fmt: skip
    run = run_tap(tap_config(emu))
    assert run.exit_code == 0
    schema = next(m["schema"] for m in run.messages if m["type"] == "SCHEMA")
    assert len(run.records(STREAM)) == 3 * 80
    validator = jsonschema.Draft7Validator(schema)
    for record in run.records(STREAM):
        validator.validate(record)
    key = "changeSetId" if generation == "old" else "modelVersion"
    assert all(key in r for r in run.records(STREAM))
    assert any(r["userEmail"] is None for r in run.records(STREAM))


def _seconds(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S")


@pytest.mark.parametrize("bounds", ["inclusive", "half_open", "exclusive"])
def test_mixed_fractional_digits_compare_as_instants(emulator, bounds: str) -> None:
    emu = configcat(emulator, seed=28, configcat_orgs=ORG_IDS[:1], events_per_org=30,
                    span_days=3, configcat_bounds=bounds)  # fmt: skip
    start = (datetime.now(timezone.utc) - 40 * DAY).replace(microsecond=0)
    # The first window ends 30 days less the 1 s margin after start_date: the second
    # window asks from 1 s before that, so no reading of the bounds loses what is on it.
    boundary = start + timedelta(days=30, seconds=-1)
    s, b = _seconds(start), _seconds(boundary)
    s_1, b_1 = (_seconds(x - timedelta(seconds=1)) for x in (start, boundary))
    older = [f"{s_1}.9999999+00:00", f"{s_1}.99+00:00"]
    stamps = [f"{s}+00:00", f"{s}.0000001+00:00", f"{s}.05+00:00", f"{s}.5+00:00",
              f"{s}.123456+00:00", f"{b_1}.9999999+00:00", f"{b}+00:00",
              f"{b}.0000001+00:00", f"{b}.1+00:00"]  # fmt: skip
    emu.provider("configcat").add_at(ORG_IDS[0], older + stamps)
    run = run_tap(tap_config(emu, start_date=f"{s}Z"))
    assert run.exit_code == 0
    got = {r["auditLogDateTime"] for r in run.records(STREAM)}
    assert got & {*older, *stamps} == set(stamps), "at or after start_date, none before it"
    assert set(keys(run)) == truth(emu, since=f"{s}Z")
    assert len(keys(run)) == len(set(keys(run))), "the overlap of windows emits nothing twice"
    # Late events within the lookback, with mixed precision, are read exactly once.
    partition = run.final_state["bookmarks"][STREAM]["partitions"][0]
    bookmark = parse_instant(partition["replication_key_value"])
    late_at = _seconds(datetime.fromtimestamp(bookmark // NS_PER_SECOND - 60, tz=timezone.utc))
    late = emu.provider("configcat").add_at(
        ORG_IDS[0], [f"{late_at}+00:00", f"{late_at}.1+00:00", f"{late_at}.0000009+00:00"]
    )
    again = run_tap(tap_config(emu, start_date=f"{s}Z"), state=copy.deepcopy(run.final_state))
    assert sorted(keys(again)) == sorted((e.org, e.id) for e in late)


def test_unknown_organization_names_the_setting_and_others_sync(emulator, caplog) -> None:
    emu = configcat(emulator, seed=29, events_per_org=25, span_days=5)
    run = run_tap(tap_config(emu, configcat={"organization_ids": [UNKNOWN_ORG, ORG_IDS[2]]}))
    assert run.exit_code == 1
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any(UNKNOWN_ORG in e and "configcat.organization_ids" in e for e in errors), errors
    assert set(keys(run)) == {(o, i) for o, i in truth(emu) if o == ORG_IDS[2]}


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"api_version": "v3"}, "configcat.api_version"),
        ({"window_days": 31}, "configcat.window_days"),
        ({"username": None}, "configcat.username"),
    ],
)
def test_bad_settings_are_config_errors(emulator, settings: dict, expected: str) -> None:
    emu = configcat(emulator, seed=30, events_per_org=5)
    config = tap_config(emu)
    config["configcat"] = {k: v for k, v in {**config["configcat"], **settings}.items() if v}
    with pytest.raises(ConfigError, match=expected.replace(".", r"\.")):
        TapAuditLogs(config=config)


class _Answer:
    """A decoded answer as paginators read it (``ApiResponse.json()``)."""

    def __init__(self, payload: Any) -> None:
        self.payload = payload

    def json(self) -> Any:
        return self.payload


def test_paginator_follows_has_next_and_refuses_an_ignored_page_number() -> None:
    def page(current: int, has_next: bool, n: int = 100) -> _Answer:
        paging = {"currentPage": current, "hasNext": has_next, "totalPages": 3}
        return _Answer({"data": [{}] * n, "paging": paging})

    paginator = ConfigCatPaginator(1)
    paginator.advance(page(1, True))  # type: ignore[arg-type]
    assert paginator.current_value == 2
    paginator.advance(page(2, False))  # type: ignore[arg-type]
    assert paginator.finished
    # Issue 20, "more is more": an empty page that says there is more is not the end (a
    # server that filters after paging); this assertion said the opposite before.
    empty = ConfigCatPaginator(1)
    empty.advance(page(1, True, n=0))  # type: ignore[arg-type]
    assert not empty.finished, "an empty page with hasNext is followed"
    last = ConfigCatPaginator(3)
    last.advance(page(3, True))  # type: ignore[arg-type]
    assert last.finished, "the last page by totalPages ends the pass whatever hasNext says"
    clamped = ConfigCatPaginator(4)
    clamped.advance(page(3, True))  # type: ignore[arg-type]
    assert clamped.finished, "a page number past the end, clamped to the last page: the end"
    v1 = ConfigCatPaginator(None)
    v1.advance(_Answer([{}] * 100))  # type: ignore[arg-type]
    assert v1.finished, "a bare array is one answer"
    stuck = ConfigCatPaginator(2)
    with pytest.raises(PageIgnoredError):
        stuck.advance(page(1, True))  # type: ignore[arg-type]


# ---------------------------------------------------------------- audit_events mapping

#: Events patched as on the left become unified records holding what is on the right
#: (the generic fields are checked on every one: tests/unified_cases.py).
UNIFIED_CASES: list[Case] = [
    (
        {
            "auditLogTypeEnum": "settingValueChanged",
            "auditLogType": "Setting value changed",
            "userEmail": "ada@acme.example",
            "userName": "Ada Lovelace",
            "actionTarget": "isAwesomeFeatureEnabled",
        },
        {
            "action": "settingValueChanged",
            "category": "configuration",
            "operation": "update",
            "target_type": "feature_flag",
            "target_name": "isAwesomeFeatureEnabled",
            "actor_email": "ada@acme.example",
            "actor_name": "Ada Lovelace",
            "actor_id": None,
            "actor_type": "user",
            "source_ip": None,
            "status_code": None,
        },
    ),
    (  # an older item with the label only
        {"auditLogTypeEnum": None, "auditLogType": "Public API access token added"},
        {"action": "Public API access token added", "category": "credential"},
    ),
    (
        {"auditLogTypeEnum": "teamMemberInvited", "userEmail": None, "userName": ""},
        {"category": "membership", "operation": "create", "actor_type": "unknown"},
    ),
    (  # dropped from the 2026 enum, documented until 2024-10: old items carry it
        {"auditLogTypeEnum": "productOwnershipTransferred"},
        {"category": "membership", "operation": "update", "target_type": "product"},
    ),
    (  # dropped from the 2026 enum
        {"auditLogTypeEnum": "domainSamlDeleted"},
        {"category": "authentication", "operation": "delete", "target_type": "domain"},
    ),
    (  # a type no generation documents (a newer one)
        {"auditLogTypeEnum": "flagTeleported"},
        {"category": "other", "operation": "other", "target_type": None},
    ),
]


def test_known_events_map_to_the_expected_unified_record(emulator) -> None:
    check_known_events(emulator, "configcat", UNIFIED_CASES, organization=lambda ev: ev.org)


#: ConfigCat's AuditLogType enum, current and earlier generations (tests/data, with sources).
CONFIGCAT_TYPES = documented("configcat_audit_log_types")


def test_every_documented_event_type_is_mapped() -> None:
    check_documented_enum("configcat", CONFIGCAT_TYPES)


def test_the_emulator_serves_every_documented_type() -> None:
    assert AUDIT_LOG_TYPES == CONFIGCAT_TYPES
    assert set(CURRENT_AUDIT_LOG_TYPES) < set(CONFIGCAT_TYPES)
    for missing in ("productOwnershipTransferred", "organizationRemoved",
                    "domainSamlConfigured", "domainSamlDeleted"):  # fmt: skip
        assert missing in CONFIGCAT_TYPES
