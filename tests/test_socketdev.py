"""Socket audit log over HTTP against the emulator: completeness, incrementality, orders,
end markers, ``from`` readings, kills, faults and quota stops."""

from __future__ import annotations

import random
import time
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest

from tap_auditlogs.core.instants import parse_instant
from tests.conftest import run_tap, run_tap_cli, tap_config
from tests.data import documented
from tests.emulator import FaultRule, QuotaRule
from tests.emulator.socketdev import EVENT_TYPES as EMULATED_TYPES
from tests.emulator.socketdev import lower_camel
from tests.unified_cases import (
    Case,
    check_documented_enum,
    check_documented_types,
    check_known_events,
    select,
)

STREAM = "socket_audit_log"
KEY = "event_id"


def truth_ids(emu, since: str | None = None) -> set[str]:
    """Every Socket event id the emulator holds (at or after ``since`` if given)."""
    floor = parse_instant(since) if since else None
    return {e.id for e in emu.truth("socket") if floor is None or parse_instant(e.ts) >= floor}


def audit_requests(emu) -> list:
    return [r for r in emu.requests("socket") if r.path.endswith("/audit-log")]


def test_every_event_of_every_org_once(emulator) -> None:
    emu = emulator(
        providers=("socket",), seed=11, socket_orgs=("acme", "globex", "initech", "umbrella")
    )
    run = run_tap(tap_config(emu))
    assert run.exit_code == 0
    ids = run.ids(STREAM, KEY)
    assert Counter(ids).most_common(1)[0][1] == 1, "no duplicates on a clean run"
    assert set(ids) == truth_ids(emu)
    by_org = Counter(r["org_slug"] for r in run.records(STREAM))
    assert set(by_org) == {"acme", "globex", "initech", "umbrella"}
    assert all(q.query.get("per_page") == "100" for q in audit_requests(emu))
    assert not any("from" in q.query for q in audit_requests(emu)), "never depends on `from`"


def test_second_run_is_one_request_per_org_and_emits_nothing(emulator) -> None:
    emu = emulator(providers=("socket",), seed=12, socket_orgs=("acme", "globex"))
    config = tap_config(emu)
    first = run_tap(config)
    emu.reset_requests()
    second = run_tap(config, state=first.final_state)
    assert second.exit_code == 0
    assert second.records() == []
    assert len(audit_requests(emu)) == 2
    assert second.final_state == first.final_state


def test_new_events_between_runs_are_picked_up(emulator) -> None:
    emu = emulator(providers=("socket",), seed=13, socket_orgs=("acme", "globex"))
    config = tap_config(emu)
    first = run_tap(config)
    fresh = emu.add_events("socket", "acme", 130) + emu.add_events("socket", "globex", 3)
    second = run_tap(config, state=first.final_state)
    assert set(second.ids(STREAM, KEY)) == {e.id for e in fresh}
    assert len(second.records()) == len(fresh)


def test_late_event_inside_the_lookback_is_picked_up(emulator) -> None:
    emu = emulator(providers=("socket",), seed=14, socket_orgs=("acme",))
    config = tap_config(emu)
    first = run_tap(config)
    newest = max(parse_instant(e.ts) for e in emu.truth("socket"))
    late_at = datetime.fromtimestamp(newest / 1e9, tz=timezone.utc) - timedelta(minutes=2)
    late = emu.add_events("socket", "acme", 1, ts=late_at)
    second = run_tap(config, state=first.final_state)
    assert second.ids(STREAM, KEY) == [late[0].id]


@pytest.mark.parametrize("reading", ["upper", "lower", "ignored"])
def test_correct_whatever_from_means(emulator, reading: str) -> None:
    emu = emulator(
        providers=("socket",), seed=15, socket_orgs=("acme", "globex"), socket_from=reading
    )
    config = tap_config(emu)
    first = run_tap(config)
    assert set(first.ids(STREAM, KEY)) == truth_ids(emu)
    fresh = emu.add_events("socket", "globex", 5)
    second = run_tap(config, state=first.final_state)
    assert set(second.ids(STREAM, KEY)) == {e.id for e in fresh}


@pytest.mark.parametrize("marker", ["null", "empty", "missing", "zero", "zero_int"])
def test_every_end_marker_ends_the_pass(emulator, marker: str) -> None:
    emu = emulator(providers=("socket",), seed=16, socket_orgs=("acme",), socket_end_marker=marker)
    run = run_tap(tap_config(emu))
    assert run.exit_code == 0
    assert sorted(run.ids(STREAM, KEY)) == sorted(truth_ids(emu))
    pages = len(audit_requests(emu))
    assert pages == -(-len(truth_ids(emu)) // 100), "no request past the last page"


@pytest.mark.parametrize("order", ["desc", "asc", "random"])
def test_every_page_order_gives_every_event(emulator, order: str) -> None:
    emu = emulator(
        providers=("socket",), seed=17, socket_orgs=("acme", "globex"), socket_order=order
    )
    config = tap_config(emu)
    first = run_tap(config)
    assert set(first.ids(STREAM, KEY)) == truth_ids(emu)
    fresh = emu.add_events("socket", "acme", 7)
    second = run_tap(config, state=first.final_state)
    assert {e.id for e in fresh} <= set(second.ids(STREAM, KEY))
    if order == "desc":
        assert len(second.records()) == len(fresh)


def test_start_date_is_inclusive_and_respected(emulator) -> None:
    emu = emulator(providers=("socket",), seed=18, socket_orgs=("acme",))
    events = sorted(emu.truth("socket"), key=lambda e: e.ts)
    start = events[len(events) // 2].ts
    run = run_tap(tap_config(emu, start_date=start))
    assert set(run.ids(STREAM, KEY)) == truth_ids(emu, since=start)


def test_org_slugs_and_event_types_filter(emulator) -> None:
    emu = emulator(providers=("socket",), seed=19, socket_orgs=("acme", "globex"))
    kinds = Counter(e.item["type"] for e in emu.truth("socket") if e.org == "acme")
    kind = kinds.most_common(1)[0][0]
    run = run_tap(tap_config(emu, socket={"org_slugs": ["acme"], "event_types": [kind]}))
    expected = {e.id for e in emu.truth("socket") if e.org == "acme" and e.item["type"] == kind}
    assert set(run.ids(STREAM, KEY)) == expected
    assert {q.query.get("type") for q in audit_requests(emu)} == {kind[0].upper() + kind[1:]}
    assert not any(r.path.endswith("/organizations") for r in emu.requests("socket"))


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_killed_runs_resume_from_the_last_state_without_loss(emulator, seed: int) -> None:
    rng = random.Random(seed)
    emu = emulator(
        providers=("socket",), seed=100 + seed, socket_orgs=("acme", "globex"), events_per_org=320
    )
    config = tap_config(emu)
    state: dict | None = None
    emitted: set[str] = set()
    for _ in range(12):
        if rng.random() < 0.5:
            emu.add_events("socket", rng.choice(["acme", "globex"]), rng.randint(1, 30))
        run = run_tap_cli(config, state, kill_after_records=rng.randint(1, 400))
        emitted |= set(run.ids(STREAM, KEY))
        state = run.final_state or state
        if run.exit_code == 0:
            break
    final = run_tap_cli(config, state)
    assert final.exit_code == 0, final.stderr
    emitted |= set(final.ids(STREAM, KEY))
    assert truth_ids(emu) - emitted == set()


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
    emu = emulator(
        providers=("socket",), seed=21, socket_orgs=("acme", "globex", "initech"), faults=faults
    )
    run = run_tap(tap_config(emu))
    assert run.exit_code == 0
    assert set(run.ids(STREAM, KEY)) == truth_ids(emu)
    assert any(r.fault for r in emu.requests("socket")), "the scenario injected faults"


def test_retry_after_is_honoured(emulator) -> None:
    emu = emulator(
        providers=("socket",),
        seed=22,
        socket_orgs=("acme",),
        faults=[FaultRule("429", nth=(2,), retry_after=1)],
    )
    started = time.monotonic()
    run = run_tap(tap_config(emu, socket={"org_slugs": ["acme"]}))
    assert run.exit_code == 0
    assert time.monotonic() - started >= 1.0
    assert set(run.ids(STREAM, KEY)) == truth_ids(emu)


def test_a_long_retry_after_stops_cleanly_and_the_next_run_finishes(emulator) -> None:
    emu = emulator(
        providers=("socket",),
        seed=23,
        socket_orgs=("acme", "globex"),
        events_per_org=600,
        quota={"socket": QuotaRule(calls_per_window=5, window_s=3600)},
    )
    config = tap_config(emu, max_retry_wait=30)
    emitted: set[str] = set()
    state = None
    runs = 0
    for runs in range(1, 10):  # noqa: B007
        run = run_tap_cli(config, state)
        emitted |= set(run.ids(STREAM, KEY))
        state = run.final_state or state
        if run.exit_code == 0:
            break
        assert run.exit_code == 3, run.stderr
        assert "max_retry_wait" in run.stderr
        assert "Traceback" not in run.stderr
        emu.reset_quota("socket")  # an hour later
    assert runs > 1, "the quota forced several runs"
    assert truth_ids(emu) - emitted == set()
    calls = len(audit_requests(emu))
    pages = 12  # 600 events / 100 per page, two orgs
    # Minimum: every page once plus one request per run per org (the fresh pass). Each
    # stopped run adds the refused call and one re-read of its last page (the proof that
    # the saved position still continues where it stopped).
    assert calls <= pages + 2 * runs + 2 * (runs - 1), f"{calls} audit-log calls"


def test_proxy_and_ca_environment_variables_are_honoured(emulator) -> None:
    """HTTP(S)_PROXY and NO_PROXY, as ``requests`` reads them (looked up once per host)."""
    emu = emulator(providers=("socket",), seed=40, socket_orgs=("acme",), events_per_org=30)
    config = tap_config(emu, max_retries=0)
    dead_proxy = {"HTTP_PROXY": "http://127.0.0.1:9", "http_proxy": "http://127.0.0.1:9"}
    blocked = run_tap_cli(config, env={**dead_proxy, "NO_PROXY": "", "no_proxy": ""})
    assert blocked.exit_code == 1
    assert "connection failed" in blocked.stderr
    assert emu.requests("socket") == [], "every request went to the (dead) proxy"
    bypassed = run_tap_cli(config, env={**dead_proxy, "NO_PROXY": "127.0.0.1", "no_proxy": ""})
    assert bypassed.exit_code == 0, bypassed.stderr[-2000:]
    assert len(bypassed.records()) == 30


# ---------------------------------------------------------------- audit_events mapping

#: Events patched as on the left become unified records holding what is on the right
#: (the generic fields are checked on every one: tests/unified_cases.py).
UNIFIED_CASES: list[Case] = [
    (
        {
            "type": "createApiToken",
            "user_id": "u-17",
            "user_email": "ada@acme.example",
            "ip_address": "203.0.113.7",
            "country_code": "DE",
            "user_agent": "curl/8.5",
            "status_code": 200,
        },
        {
            "action": "createApiToken",
            "category": "credential",
            "operation": "create",
            "target_type": "api_token",
            "actor_id": "u-17",
            "actor_email": "ada@acme.example",
            "actor_name": None,
            "actor_type": "user",
            "source_ip": "203.0.113.7",
            "country_code": "DE",
            "user_agent": "curl/8.5",
            "status_code": 200,
        },
    ),
    (  # Socket spells SSO types oddly in responses; "" is null
        {"type": "sSOLoginCompleted", "ip_address": "", "country_code": None},
        {"category": "authentication", "operation": "login", "source_ip": None},
    ),
    (
        {"type": "userSignedOut", "user_id": None, "user_email": ""},
        {"operation": "logout", "actor_type": "unknown", "actor_email": None},
    ),
    (  # organization_id is nullable: the org slug names the organization then
        {"type": "revokeApiToken", "organization_id": None},
        {"category": "credential", "operation": "delete"},
    ),
    (
        {"type": "teleportRepository"},
        {"category": "other", "operation": "other", "target_type": None},
    ),
]


def test_known_events_map_to_the_expected_unified_record(emulator) -> None:
    check_known_events(
        emulator,
        "socket",
        UNIFIED_CASES,
        organization=lambda ev: ev.item["organization_id"] or ev.org,
    )


#: Socket's `type` enum of Get Audit Log Events (tests/data, with its source).
SOCKET_EVENT_TYPES = documented("socket_event_types")


def test_every_documented_event_type_is_mapped() -> None:
    check_documented_enum("socket", SOCKET_EVENT_TYPES)
    # Responses spell the types lowerCamel (the emulator's spelling of the items).
    check_documented_types("socket", [lower_camel(name) for name in SOCKET_EVENT_TYPES])


def test_the_emulator_serves_every_documented_type() -> None:
    assert EMULATED_TYPES == SOCKET_EVENT_TYPES


# ------------------------------------------------------------ documented, played


def test_opaque_page_tokens_are_followed_to_the_end(emulator) -> None:
    """``page`` is a string "Page token" in the spec: an opaque one (base64, URL-encoded on
    the way) is sent back as it came, page after page."""
    emu = emulator(
        providers=("socket",), seed=23, socket_orgs=("acme",), socket_page_tokens="opaque"
    )
    run = run_tap(tap_config(emu))
    assert run.exit_code == 0
    assert Counter(run.ids(STREAM, KEY)) == Counter(truth_ids(emu))
    pages = [r.query["page"] for r in audit_requests(emu) if "page" in r.query]
    assert len(pages) >= 2
    assert all(not page.isdigit() and "=" in page for page in pages), pages
    assert all(r.status == 200 for r in audit_requests(emu))


def test_a_null_organization_id_is_kept_and_the_slug_names_the_organization(emulator) -> None:
    """``organization_id`` is nullable in the spec."""
    emu = emulator(providers=("socket",), seed=24, socket_orgs=("acme",), socket_null_org_id=0.5)
    nulls = {e.id for e in emu.truth("socket") if e.item["organization_id"] is None}
    assert 0 < len(nulls) < len(emu.truth("socket"))
    config = tap_config(emu)
    run = run_tap(config, catalog=select(config, {STREAM, "audit_events"}))
    assert run.exit_code == 0
    records = {r[KEY]: r for r in run.records(STREAM)}
    assert set(records) == truth_ids(emu)
    assert {i for i, r in records.items() if r["organization_id"] is None} == nulls
    unified = {r["event_id"]: r for r in run.records("audit_events")}
    assert {unified[i]["organization_id"] for i in nulls} == {"acme"}
