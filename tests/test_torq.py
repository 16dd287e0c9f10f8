"""Torq audit log over HTTP against the emulator: completeness, the query, tokens that expire
(302), incrementality, nanosecond timestamps, kills, faults, clear errors and secrets."""

from __future__ import annotations

import itertools
import json
import logging
import random
import re
import time
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest
import requests

from tap_auditlogs.cli.settings import validate_settings
from tap_auditlogs.core.errors import EXIT_PROVIDER
from tap_auditlogs.core.instants import format_instant, parse_instant
from tap_auditlogs.engine.declaration import LOWER_BOUND_MARGIN_NS as MARGIN
from tap_auditlogs.providers.torq.auth import TorqAuthenticator
from tap_auditlogs.providers.torq.log import REGIONS
from tap_auditlogs.tap import TapAuditLogs
from tests.conftest import run_tap, run_tap_cli, tap_config
from tests.data import documented
from tests.emulator import FaultRule
from tests.emulator.torq import ACTIONS, CLIENT_ID, CLIENT_SECRET, TOKEN_PREFIX
from tests.unified_cases import Case, check_documented_enum, check_known_events

STREAM = "torq_audit_log"
KEY = "id"
TOKEN = "/torq/v1/auth/token"
API = "/torq/public/v1alpha/audit_logs"
LONG_AGO = "2000-01-01T00:00:00Z"
NINE_DIGITS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$")
UTC = timezone.utc


def torq(emulator, **scenario):
    """An emulator playing Torq only."""
    return emulator(providers=("torq",), **scenario)


def truth_ids(emu, since: str | None = None) -> set[str]:
    floor = parse_instant(since) if since else None
    return {e.id for e in emu.truth("torq") if floor is None or parse_instant(e.ts) >= floor}


def api_calls(emu) -> list:
    return [r for r in emu.requests("torq") if r.path == API]


def token_calls(emu) -> list:
    return [r for r in emu.requests("torq") if r.path == TOKEN]


def kinds(emu) -> list[str]:
    """The request log as 'token' / 'api:<status>'."""
    return [
        "token" if r.path == TOKEN else f"api:{r.status}"
        for r in emu.requests("torq")
        if r.path in (TOKEN, API)
    ]


def assert_one_clear_line(stderr: str, *expected: str) -> None:
    errors = [line for line in stderr.splitlines() if "ERROR" in line]
    assert any(all(part in line for part in expected) for line in errors), stderr
    assert "Traceback" not in stderr, stderr


# ---- completeness and the query -----------------------------------------------------------
def test_every_event_from_start_date_once_with_the_documented_query(emulator) -> None:
    emu = torq(emulator, seed=31, events_per_org=1300, span_days=10)
    events = sorted(emu.truth("torq"), key=lambda e: parse_instant(e.ts))
    start = next(e.ts for e in events[200:] if len(e.ts) == 30)  # a 9-digit instant
    run = run_tap(tap_config(emu, start_date=start))
    assert run.exit_code == 0
    ids = run.ids(STREAM, KEY)
    assert Counter(ids).most_common(1)[0][1] == 1, "no duplicates on a clean run"
    assert set(ids) == truth_ids(emu, since=start)
    assert {len(r["timestamp"]) for r in run.records()} == {27, 30}, "6 and 9 digits, as sent"
    calls = api_calls(emu)
    assert len(calls) == -(-len(ids) // 500)
    # exclusive, from a second early (a server rounding the bound still sends `start`)
    want_start = format_instant(parse_instant(start) - MARGIN - 1)
    for call in calls:
        assert call.query["order"] == "asc"
        assert call.query["page_size"] == "500"
        assert call.query["start_time"] == want_start
        assert NINE_DIGITS.match(call.query["start_time"])
    assert [bool(c.query.get("page_token")) for c in calls] == [False] + [True] * (len(calls) - 1)
    assert kinds(emu)[0] == "token"
    assert len(token_calls(emu)) == 1, "one token for the whole run"
    records = run.records(STREAM)
    assert {r["account_id"] for r in records} == {emu.provider("torq").account["account_id"]}
    bookmark = run.final_state["bookmarks"][STREAM]
    assert bookmark["replication_key_value"] == format_instant(parse_instant(events[-1].ts))
    assert "partitions" not in bookmark, "one workspace per key: a single stream bookmark"


def test_without_start_date_the_api_default_window_is_read_and_said_once(emulator, caplog) -> None:
    emu = torq(emulator, seed=32, events_per_org=300, span_days=3)
    config = tap_config(emu)
    first = run_tap(config)
    assert first.exit_code == 0
    now = datetime.now(UTC)
    recent = {e.id for e in emu.truth("torq") if e.at > now - timedelta(hours=24)}
    assert 0 < len(recent) < len(emu.truth("torq"))
    assert set(first.ids(STREAM, KEY)) == recent
    assert all("start_time" not in c.query for c in api_calls(emu))
    said = [r for r in caplog.records if "last 24 hours" in r.getMessage()]
    assert len(said) == 1
    emu.reset_requests()
    second = run_tap(config, state=first.final_state)
    assert second.records() == []
    assert all("start_time" in c.query for c in api_calls(emu))


# ---- incremental runs -----------------------------------------------------------------------
def test_second_run_is_one_request_plus_one_token_and_emits_nothing(emulator) -> None:
    emu = torq(emulator, seed=33, events_per_org=1200, span_days=5)
    config = tap_config(emu, start_date=LONG_AGO)
    first = run_tap(config)
    assert set(first.ids(STREAM, KEY)) == truth_ids(emu)
    emu.reset_requests()
    second = run_tap(config, state=first.final_state)
    assert second.exit_code == 0
    assert second.records() == []
    assert kinds(emu) == ["token", "api:200"]
    bookmark = parse_instant(first.final_state["bookmarks"][STREAM]["replication_key_value"])
    lookback = 300 * 10**9
    assert api_calls(emu)[0].query["start_time"] == format_instant(bookmark - lookback - MARGIN - 1)
    assert second.final_state == first.final_state


def test_late_events_inside_the_lookback_are_read_older_ones_are_not(emulator) -> None:
    emu = torq(emulator, seed=34, events_per_org=200, span_days=2)
    config = tap_config(emu, start_date=LONG_AGO)
    first = run_tap(config)
    newest = max(e.at for e in emu.truth("torq"))
    late = emu.add_events("torq", "workspace", 2, ts=newest - timedelta(minutes=2))
    too_late = emu.add_events("torq", "workspace", 1, ts=newest - timedelta(minutes=10))
    fresh = emu.add_events("torq", "workspace", 3)
    second = run_tap(config, state=first.final_state)
    assert sorted(second.ids(STREAM, KEY)) == sorted(e.id for e in late + fresh)
    # Documented limit: an entry more than lookback_seconds late is missed...
    assert too_late[0].id not in second.ids(STREAM, KEY)
    # ...unless the lookback is raised to cover it.
    third = run_tap(tap_config(emu, torq={"lookback_seconds": 7200}), state=first.final_state)
    assert too_late[0].id in third.ids(STREAM, KEY)


def test_six_and_nine_digit_timestamps_compare_as_instants(emulator, caplog) -> None:
    emu = torq(emulator, seed=35, events_per_org=30, span_days=2)
    torq_emu = emu.provider("torq")
    second = (datetime.now(UTC) - timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%S")
    # Same microsecond: the 6-digit one is 789 ns older, although it sorts later as a string.
    older6 = torq_emu.add_exact(f"{second}.123456Z")
    bookmark9 = torq_emu.add_exact(f"{second}.123456789Z")
    config = tap_config(emu, start_date=LONG_AGO)
    first = run_tap(config)
    assert set(first.ids(STREAM, KEY)) == truth_ids(emu)
    assert first.ids(STREAM, KEY)[-2:] == [older6.id, bookmark9.id], "ascending by instant"
    assert not [r for r in caplog.records if "order" in r.getMessage()], "no false order alarm"
    state = first.final_state["bookmarks"][STREAM]
    assert state["replication_key_value"] == bookmark9.ts, "the bookmark keeps nanoseconds"

    next6 = torq_emu.add_exact(f"{second}.123457Z")  # 211 ns after the bookmark
    late6 = torq_emu.add_exact(f"{second}.100000Z")  # late, inside the lookback
    emu.reset_requests()
    again = run_tap(config, state=first.final_state)
    assert sorted(again.ids(STREAM, KEY)) == sorted([next6.id, late6.id])
    start_time = api_calls(emu)[0].query["start_time"]
    assert start_time == format_instant(parse_instant(bookmark9.ts) - 300 * 10**9 - MARGIN - 1)
    assert start_time.endswith(".123456788Z"), "full precision sent back"
    final = again.final_state["bookmarks"][STREAM]["replication_key_value"]
    assert final == f"{second}.123457000Z"


# ---- tokens ---------------------------------------------------------------------------------
def test_token_is_renewed_shortly_before_it_expires(emulator) -> None:
    emu = torq(emulator, seed=36, events_per_org=2000, span_days=5, torq_token_ttl_s=1)
    emu.configure(latency_s=0.3)
    run = run_tap(tap_config(emu, start_date=LONG_AGO))
    assert run.exit_code == 0
    assert sorted(run.ids(STREAM, KEY)) == sorted(truth_ids(emu))
    seen = kinds(emu)
    assert "api:302" not in seen, "renewed before the API had to refuse it"
    assert seen.count("token") >= 2, seen
    assert "token, token" not in ", ".join(seen), f"one renewal per expiry: {seen}"
    assert set(seen) == {"token", "api:200"}


def test_an_expired_token_302_costs_exactly_one_renewal(emulator) -> None:
    # expires_in says an hour, but tokens die after 0.5 s: only the 302 tells the tap.
    emu = torq(
        emulator,
        seed=37,
        events_per_org=2000,
        span_days=5,
        torq_token_dies_after_s=0.5,
        latency_s=0.2,
    )
    run = run_tap(tap_config(emu, start_date=LONG_AGO))
    assert run.exit_code == 0
    assert sorted(run.ids(STREAM, KEY)) == sorted(truth_ids(emu))
    log = [r for r in emu.requests("torq") if r.path in (TOKEN, API)]
    redirects = [i for i, r in enumerate(log) if r.status == 302]
    assert redirects, "the token expired mid-sync"
    assert len(token_calls(emu)) == 1 + len(redirects)
    for i in redirects:
        assert log[i + 1].path == TOKEN, "a 302 is answered with one token request"
        assert (log[i + 2].path, log[i + 2].status) == (API, 200)
        assert log[i + 2].query == log[i].query, "then the same page, once"
    assert not [r for r in emu.requests("torq") if "/login" in r.path], "never followed"


def test_renewal_margin_is_a_minute_or_a_tenth_of_short_lifetimes() -> None:
    auth = TorqAuthenticator(
        token_url="http://127.0.0.1:9/token",
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        timeout=1,
        backoff_base=0.01,
        logger=logging.getLogger("test"),
    )
    assert not auth.is_token_valid(), "no token yet"
    for lifetime, still_valid_at, renew_at in [(3600, 3539, 3541), (1, 0.85, 0.95)]:
        for age, valid in [(still_valid_at, True), (renew_at, False)]:
            auth._store(
                {"access_token": "torqtok_x", "expires_in": lifetime}, time.monotonic() - age
            )
            assert auth.is_token_valid() is valid, (lifetime, age)


def test_a_token_refused_right_after_renewal_is_a_clear_error(emulator) -> None:
    emu = torq(emulator, seed=38, events_per_org=50, torq_token_dies_after_s=0)
    run = run_tap_cli(tap_config(emu, start_date=LONG_AGO))
    assert run.exit_code == 1
    assert_one_clear_line(run.stderr, "Torq", "302", "torq.base_url")
    assert kinds(emu) == ["token", "api:302", "token", "api:302"], "renewed once, then stopped"


def test_a_stray_redirect_on_an_api_call_is_one_renewal(emulator) -> None:
    emu = torq(emulator, seed=39, events_per_org=1200, faults=[FaultRule("redirect", nth=(3,))])
    run = run_tap(tap_config(emu, start_date=LONG_AGO))
    assert run.exit_code == 0
    assert sorted(run.ids(STREAM, KEY)) == sorted(truth_ids(emu))
    assert kinds(emu) == ["token", "api:200", "api:302", "token", "api:200", "api:200"]


def test_token_endpoint_errors_are_retried(emulator) -> None:
    emu = torq(
        emulator,
        seed=40,
        events_per_org=100,
        faults=[FaultRule("503", nth=(1,)), FaultRule("drop", nth=(2,))],
    )
    run = run_tap(tap_config(emu, start_date=LONG_AGO))
    assert run.exit_code == 0
    assert set(run.ids(STREAM, KEY)) == truth_ids(emu)
    assert [r.status for r in token_calls(emu)] == [503, 0, 200]


# ---- resilience -------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_killed_runs_resume_from_the_last_state_without_loss(emulator, seed: int) -> None:
    rng = random.Random(seed)
    emu = torq(emulator, seed=200 + seed, events_per_org=1100, span_days=5)
    config = tap_config(emu, start_date=LONG_AGO)
    state: dict | None = None
    emitted: set[str] = set()
    for _ in range(2):  # two SIGKILLs at random records (mid-page or not), then a full run
        if rng.random() < 0.5:
            emu.add_events("torq", "workspace", rng.randint(1, 40))
        run = run_tap_cli(config, state, kill_after_records=rng.randint(1, 1000))
        assert run.exit_code == -9, run.stderr
        emitted |= set(run.ids(STREAM, KEY))
        state = run.final_state or state
    final = run_tap_cli(config, state)
    assert final.exit_code == 0, final.stderr
    emitted |= set(final.ids(STREAM, KEY))
    assert truth_ids(emu) - emitted == set()


def test_faults_lose_nothing(emulator) -> None:
    faults = [
        FaultRule("429", probability=0.1, retry_after=0),
        FaultRule("500", probability=0.05),
        FaultRule("502", probability=0.05),
        FaultRule("503", probability=0.05),
        FaultRule("drop", probability=0.05),
        FaultRule("truncate", probability=0.05),
        FaultRule("badjson", probability=0.05),
    ]
    emu = torq(emulator, seed=41, events_per_org=3000, span_days=5, faults=faults)
    config = tap_config(emu, start_date=LONG_AGO)
    run = run_tap(config)
    assert run.exit_code == 0
    assert sorted(run.ids(STREAM, KEY)) == sorted(truth_ids(emu))
    assert any(r.fault for r in emu.requests("torq")), "the scenario injected faults"
    fresh = emu.add_events("torq", "workspace", 5)
    again = run_tap(config, state=run.final_state)
    assert sorted(again.ids(STREAM, KEY)) == sorted(e.id for e in fresh)


def test_if_the_api_ignores_order_the_tap_falls_back_and_loses_nothing(emulator, caplog) -> None:
    emu = torq(emulator, seed=42, events_per_org=1200, span_days=5, torq_order_param="ignored")
    config = tap_config(emu, start_date=LONG_AGO)
    first = run_tap(config)
    assert sorted(first.ids(STREAM, KEY)) == sorted(truth_ids(emu))
    assert any("not in ascending order" in r.getMessage() for r in caplog.records)
    fresh = emu.add_events("torq", "workspace", 4)
    second = run_tap(config, state=first.final_state)
    assert sorted(second.ids(STREAM, KEY)) == sorted(e.id for e in fresh)


@pytest.mark.parametrize("marker", ["empty", "missing"])
def test_both_end_markers_end_the_pass(emulator, marker: str) -> None:
    emu = torq(emulator, seed=43, events_per_org=1000, span_days=5, torq_end_marker=marker)
    run = run_tap(tap_config(emu, start_date=LONG_AGO))
    assert run.exit_code == 0
    assert sorted(run.ids(STREAM, KEY)) == sorted(truth_ids(emu))
    assert len(api_calls(emu)) == 2, "exactly 1000 events: no request past the last page"


# ---- clear errors and secrets ---------------------------------------------------------------
def test_bad_credentials_are_one_clear_line(emulator) -> None:
    emu = torq(emulator, seed=44, events_per_org=20)
    wrong = "torq_wrong_secret_value_0123456789"
    run = run_tap_cli(tap_config(emu, torq={"client_secret": wrong}))
    assert run.exit_code == 1
    assert_one_clear_line(
        run.stderr, "Torq", "HTTP 401", "torq.client_id", "torq.client_secret", "torq.region"
    )
    assert "Owner" in run.stderr
    assert wrong not in run.stderr
    assert CLIENT_SECRET not in run.stderr
    assert kinds(emu) == ["token"], "a refused key is not retried"
    assert run.records() == []


def test_an_unreachable_token_endpoint_is_one_clear_line(emulator) -> None:
    emu = torq(emulator, seed=45, events_per_org=20)
    config = tap_config(emu, torq={"token_url": "http://127.0.0.1:9/v1/auth/token"})
    run = run_tap_cli(config)
    assert run.exit_code == 1
    assert_one_clear_line(run.stderr, "Torq", "access token", "after 3 attempts", "torq.region")
    assert api_calls(emu) == []


def test_secret_and_tokens_never_appear_in_any_output_even_at_debug_level(emulator) -> None:
    emu = torq(
        emulator,
        seed=46,
        events_per_org=1500,
        span_days=5,
        torq_token_dies_after_s=0.25,
        latency_s=0.1,
        faults=[FaultRule("500", nth=(3,)), FaultRule("drop", nth=(5,))],
    )
    env = {"TAP_AUDITLOGS_LOGLEVEL": "debug", "LOGLEVEL": "debug"}
    good = run_tap_cli(tap_config(emu, start_date=LONG_AGO), env=env)
    assert good.exit_code == 0, good.stderr
    bad = run_tap_cli(tap_config(emu, torq={"client_id": "someone-else"}), env=env)
    assert bad.exit_code == 1
    issued = emu.provider("torq").issued
    assert len(issued) >= 2, "renewals happened"
    for run in (good, bad):
        outputs = (json.dumps(run.messages), run.stderr)
        for text in outputs:
            assert CLIENT_SECRET not in text
            assert TOKEN_PREFIX not in text
            for token in issued:
                assert token[8:24] not in text
    assert "DEBUG" in good.stderr, "debug logging was really on"


# ---- settings --------------------------------------------------------------------------------
def test_region_sets_the_default_urls_and_explicit_settings_win() -> None:
    def stream(block: dict):
        config = {"torq": {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, **block}}
        tap = TapAuditLogs(config=config, validate_config=False)
        return next(s.source for s in tap.streams.values() if s.name == STREAM)

    us, eu = stream({}), stream({"region": "eu"})
    assert (us.url_base, us.token_url) == (REGIONS["us"].base_url, REGIONS["us"].token_url)
    assert (eu.url_base, eu.token_url) == (
        "https://api.eu.torq.io/public",
        "https://auth.eu.torq.io/v1/auth/token",
    )
    own = stream({"region": "eu", "base_url": "https://proxy.example/public/"})
    assert own.url_base == "https://proxy.example/public"
    assert own.token_url == REGIONS["eu"].token_url
    problems = validate_settings(
        {"torq": {"client_id": "x", "client_secret": "y", "region": "asia"}}
    )
    assert any("torq.region" in p for p in problems)
    assert validate_settings({"torq": {"client_id": "x", "client_secret": "y"}}) == []


# ---- the emulator plays Torq as documented ----------------------------------------------------
def test_emulator_plays_the_documented_api(emulator) -> None:
    emu = torq(emulator, seed=47, events_per_org=700, span_days=3)
    base = emu.base_url("torq")
    token_url = emu.tap_config()["torq"]["token_url"]
    grant = {"grant_type": "client_credentials"}
    bad = requests.post(token_url, data=grant, auth=(CLIENT_ID, "nope"), timeout=5)
    assert bad.status_code == 401
    assert set(bad.json()) == {"code", "message", "details"}
    assert bad.json()["details"] == []
    got = requests.post(token_url, data=grant, auth=(CLIENT_ID, CLIENT_SECRET), timeout=5).json()
    assert got["token_type"] == "Bearer"
    assert got["expires_in"] == 3600
    assert got["access_token"].startswith(TOKEN_PREFIX)
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {got['access_token']}"
    url = f"{base}/v1alpha/audit_logs"
    assert http.get(url, params={"page_size": 501}, timeout=5).status_code == 400
    assert http.get(url, params={"order": "up"}, timeout=5).status_code == 400
    default = http.get(url, timeout=5).json()
    assert len(default["audit_logs"]) == 100, "default page size"
    stamps = [parse_instant(i["timestamp"]) for i in default["audit_logs"]]
    assert stamps == sorted(stamps, reverse=True), "default order: newest first"
    cutoff = parse_instant(format_instant(int((datetime.now(UTC).timestamp() - 86400) * 1e9)))
    assert min(stamps) > cutoff, "no start_time: the last 24 hours"
    events = sorted(emu.truth("torq"), key=lambda e: parse_instant(e.ts))
    pivot = events[100]
    page = http.get(url, params={"start_time": pivot.ts, "order": "asc"}, timeout=5).json()
    first_ns = parse_instant(page["audit_logs"][0]["timestamp"])
    assert first_ns > parse_instant(pivot.ts), "start_time is exclusive"
    follow = http.get(
        url,
        params={"start_time": pivot.ts, "order": "asc", "page_token": page["next_page_token"]},
        timeout=5,
    )
    assert follow.status_code == 200
    assert (
        http.get(url, params={"page_token": page["next_page_token"]}, timeout=5).status_code == 400
    )
    assert http.get(url, params={"page_token": "garbage"}, timeout=5).status_code == 400
    unknown = requests.get(url, headers={"Authorization": "Bearer torqtok_nope"}, timeout=5)
    assert unknown.status_code == 401
    emu.configure(torq_token_dies_after_s=0.0)
    dead = requests.post(token_url, data=grant, auth=(CLIENT_ID, CLIENT_SECRET), timeout=5).json()
    expired = http.get(
        url, headers={"Authorization": f"Bearer {dead['access_token']}"}, timeout=5,
        allow_redirects=False,
    )  # fmt: skip
    assert expired.status_code == 302
    followed = requests.get(emu.url + expired.headers["Location"], timeout=5)
    assert followed.headers["Content-Type"] == "text/html"
    assert {len(e.ts) for e in events} == {27, 30}, "6 and 9 fractional digits"
    assert any(a.ts == b.ts for a, b in itertools.pairwise(events)), "ties exist"
    assert any("extra_data" not in e.item for e in events)
    assert emu.errors == []


# ---------------------------------------------------------------- audit_events mapping

#: Events patched as on the left become unified records holding what is on the right
#: (the generic fields are checked on every one: tests/unified_cases.py).
UNIFIED_CASES: list[Case] = [
    (
        {
            "action": "Workflow edited",
            "actor_type": "web_app",
            "email": "ada@acme.example",
            "actor_name": "Ada Lovelace",
            "resource_id": "wf-1",
            "resource_name": "Phishing triage",
            "ip": "198.51.100.1",
            "user_agent": "Mozilla/5.0",
        },
        {
            "action": "Workflow edited",
            "category": "resource",
            "operation": "update",
            "target_type": "workflow",
            "target_id": "wf-1",
            "target_name": "Phishing triage",
            "actor_email": "ada@acme.example",
            "actor_name": "Ada Lovelace",
            "actor_type": "user",
            "source_ip": "198.51.100.1",
            "user_agent": "Mozilla/5.0",
        },
    ),
    (
        {"action": "API key deleted", "actor_type": "api_key", "email": ""},
        {"category": "credential", "operation": "delete", "actor_type": "api_key"},
    ),
    (
        {"action": "User logged in", "actor_type": "slack"},
        {"category": "authentication", "operation": "login", "actor_type": "user"},
    ),
    (  # an action Torq does not document
        {"action": "create_workflow"},
        {"category": "other", "operation": "other", "target_type": None},
    ),
]


def test_known_events_map_to_the_expected_unified_record(emulator) -> None:
    check_known_events(
        emulator, "torq", UNIFIED_CASES, organization=lambda ev: ev.item["account_id"]
    )


#: Torq's documented audit-log events (tests/data, with its source).
TORQ_ACTIONS = documented("torq_actions")


def test_every_documented_event_type_is_mapped() -> None:
    check_documented_enum("torq", TORQ_ACTIONS)


def test_the_emulator_serves_every_documented_action() -> None:
    assert [action for action, _ in ACTIONS] == list(TORQ_ACTIONS)


# ------------------------------------------------------------ documented, played


def test_the_documented_403_is_one_clear_line(emulator) -> None:
    """403: the API key's role lacks the permission (only an Owner's key reads audit logs)."""
    emu = emulator(providers=("torq",), seed=41, torq_forbidden=True, events_per_org=20)
    run = run_tap_cli(tap_config(emu, start_date=LONG_AGO))
    assert run.exit_code == EXIT_PROVIDER
    assert run.records(STREAM) == []
    lines = [line for line in run.stderr.splitlines() if "403" in line and "ERROR" in line]
    assert len(lines) == 1, run.stderr[-3000:]
    assert "Torq" in lines[0]
    assert "Owner" in lines[0], "says what to do"
    assert CLIENT_SECRET not in run.stderr


def test_a_page_parameter_the_api_ignores_fails_loudly(emulator) -> None:
    """Torq's pagination page names the parameter ``pageToken``, the endpoint ``page_token``.
    Were the API to read the other spelling, it would serve the first page again: the tap
    stops with an error naming the loop, and never ends as if it had read everything."""
    emu = emulator(providers=("torq",), seed=42, torq_page_param="pageToken", events_per_org=1200)
    run = run_tap_cli(tap_config(emu, start_date=LONG_AGO), timeout=60)
    assert run.exit_code == EXIT_PROVIDER
    assert "served the same page again" in run.stderr, run.stderr[-3000:]
    pages = [r for r in emu.requests("torq") if r.path.endswith("/audit_logs")]
    assert len(pages) <= 3, "no loop"
    assert len(set(run.ids(STREAM, KEY))) <= 500, "at most the first page"
    # and the spelling the emulator wants works: it is the switch, not the emulator
    emu.configure(torq_page_param="page_token")
    again = run_tap(tap_config(emu, start_date=LONG_AGO))
    assert again.exit_code == 0
    assert set(again.ids(STREAM, KEY)) == {e.id for e in emu.truth("torq")}
