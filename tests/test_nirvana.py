"""Nirvana Labs audit log over HTTP against the emulator: completeness, the filter readings
and orders (and the path the tap takes for each), incrementality and request counts, end
markers, start_date, kills, faults, a bad key, and the key kept out of every output."""

from __future__ import annotations

import json
import logging
import random
from collections import Counter
from datetime import datetime, timedelta, timezone

import jsonschema
import pytest
import requests

from tap_auditlogs.core.instants import NS_PER_SECOND, format_instant, parse_instant
from tap_auditlogs.engine.declaration import LOWER_BOUND_MARGIN_NS as MARGIN
from tap_auditlogs.output.unified import OTHER, UNKNOWN_ORGANIZATION
from tests.conftest import run_tap, run_tap_cli, tap_config
from tests.emulator import FaultRule
from tests.emulator.nirvana import API_KEY
from tests.unified_cases import Case, check_documented_types, check_known_events, mapping_of

STREAM = "nirvana_audit_log"
KEY = "id"
PAGE = 100

# mode -> (emulator switches, paths logged by a first run and by a later run with new events,
# audit-log calls of a run with nothing new)
MODES = {
    "honoured": ({"nirvana_filters": "honoured"}, "ascending", "ascending", 1),
    "ignored-desc": (
        {"nirvana_filters": "ignored", "nirvana_order": "desc"},
        "newest-first",
        "newest-first",
        1,
    ),
    # Ignored filters and no newest-first order: every run reads the whole log (3 pages).
    "ignored-asc": (
        {"nirvana_filters": "ignored", "nirvana_order": "asc"},
        "ascending",  # a first run sends no bound: nothing shows it ignored
        "ascending, whole log",
        3,
    ),
    "ignored-random": (
        {"nirvana_filters": "ignored", "nirvana_order": "random"},
        "full read",
        "full read",
        3,
    ),
}


def start(emulator, mode: str = "honoured", **scenario):
    """An emulator playing only Nirvana Labs in ``mode``."""
    return emulator(providers=("nirvana",), **MODES[mode][0], **scenario)


def truth_ids(emu, since: str | None = None) -> set[str]:
    floor = parse_instant(since) if since else None
    return {e.id for e in emu.truth("nirvana") if floor is None or parse_instant(e.ts) >= floor}


def paths_logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The paths the strategy logged (INFO, "(path: ...)")."""
    return [
        r.getMessage().split("(path: ")[1].rstrip(").")
        for r in caplog.records
        if "(path: " in r.getMessage()
    ]


def test_every_event_once_with_the_documented_query(emulator) -> None:
    emu = start(emulator, seed=31)
    run = run_tap(tap_config(emu))
    assert run.exit_code == 0
    ids = run.ids(STREAM, KEY)
    assert Counter(ids).most_common(1)[0][1] == 1, "no duplicates on a clean run"
    assert set(ids) == truth_ids(emu)
    calls = emu.requests("nirvana")
    assert [c.path for c in calls] == ["/nirvana/v1/audit_logs"] * 3
    assert all(c.query["limit"] == "100" and c.query["sort"] == "created_at:asc" for c in calls)
    assert "cursor" not in calls[0].query
    assert all(c.query.get("cursor") for c in calls[1:])
    assert not any("created_at_min" in c.query for c in calls), "no bound on a first run"
    assert all(c.headers["authorization"] == f"Bearer {API_KEY}" for c in calls)
    # The records keep null and absent targets, and null actor names, as served.
    served = {e.id: e.item for e in emu.truth("nirvana")}
    assert all(r == served[r["id"]] for r in run.records(STREAM))
    assert any("target" not in r for r in run.records(STREAM))
    assert any(r.get("target", 1) is None for r in run.records(STREAM))
    assert any(r["actor"]["name"] is None for r in run.records(STREAM))
    schema = next(m["schema"] for m in run.messages if m["type"] == "SCHEMA")
    for record in run.records(STREAM):
        jsonschema.Draft7Validator(schema).validate(record)
    # One org per key: the state is the stream's own, readable, without the key.
    state = run.final_state["bookmarks"][STREAM]
    assert "partitions" not in state
    assert state["replication_key"] == "created_at"
    newest = max(parse_instant(e.ts) for e in emu.truth("nirvana"))
    assert parse_instant(state["replication_key_value"]) == newest
    assert API_KEY not in json.dumps(run.final_state)
    assert emu.errors == []


@pytest.mark.parametrize("mode", list(MODES))
def test_each_filter_reading_and_order(emulator, caplog, mode: str) -> None:
    caplog.set_level(logging.INFO)
    emu = start(emulator, mode, seed=32)
    config = tap_config(emu)
    first = run_tap(config)
    assert first.exit_code == 0
    assert set(first.ids(STREAM, KEY)) == truth_ids(emu)
    assert len(first.records()) == len(truth_ids(emu))
    assert paths_logged(caplog) == [MODES[mode][1]], "the path is logged once"
    bookmarks = [s["bookmarks"][STREAM].get("replication_key_value") for s in first.states]
    if mode == "ignored-random":  # a full read moves the bookmark at the end only
        assert bookmarks[-1]
        assert set(bookmarks) <= {None, bookmarks[-1]}

    caplog.clear()
    emu.reset_requests()
    second = run_tap(config, state=first.final_state)
    assert second.records() == []
    assert len(emu.requests("nirvana")) == MODES[mode][3]
    assert len(paths_logged(caplog)) == 1
    min_sent = emu.requests("nirvana")[0].query["created_at_min"]
    bookmark = parse_instant(first.final_state["bookmarks"][STREAM]["replication_key_value"])
    lower = bookmark - 300 * NS_PER_SECOND - MARGIN  # lookback_seconds, a second early
    assert min_sent == format_instant(lower - lower % NS_PER_SECOND, digits=0)

    newest = datetime.fromtimestamp(bookmark / 1e9, tz=timezone.utc)
    late = emu.add_events("nirvana", "acme", 1, ts=newest - timedelta(minutes=2))
    fresh = emu.add_events("nirvana", "acme", 7)
    caplog.clear()
    third = run_tap(config, state=second.final_state)
    assert sorted(third.ids(STREAM, KEY)) == sorted(e.id for e in late + fresh)
    assert paths_logged(caplog) == [MODES[mode][2]]
    assert emu.errors == []


def test_many_new_events_between_runs(emulator) -> None:
    emu = start(emulator, seed=33)
    config = tap_config(emu)
    first = run_tap(config)
    newest = max(e.at for e in emu.truth("nirvana"))
    fresh = [
        event
        for i in range(1, 231)
        for event in emu.add_events("nirvana", "acme", 1, ts=newest + timedelta(seconds=i))
    ]
    emu.reset_requests()
    second = run_tap(config, state=first.final_state)
    assert sorted(second.ids(STREAM, KEY)) == sorted(e.id for e in fresh)
    assert len(emu.requests("nirvana")) == 3
    # Ascending: a STATE after every page, each bookmark further on.
    bookmarks = [s["bookmarks"][STREAM]["replication_key_value"] for s in second.states]
    assert len(set(bookmarks)) >= 3
    assert [parse_instant(b) for b in bookmarks] == sorted(parse_instant(b) for b in bookmarks)


@pytest.mark.parametrize("marker", ["null", "empty", "missing"])
def test_every_end_marker_ends_the_pass(emulator, marker: str) -> None:
    emu = start(emulator, seed=34, nirvana_end_marker=marker, nirvana_total_count=False)
    run = run_tap(tap_config(emu))
    assert run.exit_code == 0
    assert sorted(run.ids(STREAM, KEY)) == sorted(truth_ids(emu))
    assert len(emu.requests("nirvana")) == -(-len(truth_ids(emu)) // PAGE), "none past the end"


@pytest.mark.parametrize("mode", ["honoured", "ignored-desc"])
def test_start_date_is_inclusive(emulator, mode: str) -> None:
    emu = start(emulator, mode, seed=35)
    events = sorted(emu.truth("nirvana"), key=lambda e: parse_instant(e.ts))
    since = events[len(events) // 2].ts
    run = run_tap(tap_config(emu, start_date=since))
    assert set(run.ids(STREAM, KEY)) == truth_ids(emu, since=since)
    floor = parse_instant(since) - MARGIN  # a second early: an exclusive server still sends it
    sent = emu.requests("nirvana")[0].query["created_at_min"]
    assert sent == format_instant(floor - floor % NS_PER_SECOND, digits=0)


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("mode", ["honoured", "ignored-desc"])
def test_killed_runs_resume_from_the_last_state_without_loss(emulator, mode, seed) -> None:
    rng = random.Random(seed)
    emu = start(emulator, mode, seed=100 + seed, events_per_org=320)
    config = tap_config(emu)
    state: dict | None = None
    emitted: set[str] = set()
    for _ in range(4):
        if rng.random() < 0.5:
            emu.add_events("nirvana", "acme", rng.randint(1, 30))
        run = run_tap_cli(config, state, kill_after_records=rng.randint(1, 250))
        emitted |= set(run.ids(STREAM, KEY))
        state = run.final_state or state
        if run.exit_code == 0:
            break
        assert run.exit_code == -9
    final = run_tap_cli(config, state)
    assert final.exit_code == 0, final.stderr
    emitted |= set(final.ids(STREAM, KEY))
    assert truth_ids(emu) - emitted == set()


@pytest.mark.parametrize("order", ["desc", "random"])
def test_first_pages_sharing_one_timestamp_lose_nothing_to_a_kill_after_any_state(
    emulator, order: str
) -> None:
    """Sort and bound ignored, and the first pages all share one timestamp (a burst): they
    show no order, so nothing proves the log oldest first. A run killed after each STATE
    it writes, resumed from that STATE, still ends with every event."""
    emu = emulator(providers=("nirvana",), nirvana_filters="ignored", nirvana_order=order,
                   seed=43, events_per_org=3)  # fmt: skip
    burst = datetime.now(timezone.utc) - timedelta(minutes=5)
    emu.add_events("nirvana", "acme", 4 * PAGE, ts=burst)  # every probe page: one timestamp
    for hours in (30, 20, 10):  # and a few older ones, served after the burst when newest first
        emu.add_events("nirvana", "acme", 1, ts=burst - timedelta(hours=hours))
    config = tap_config(emu)
    truth = truth_ids(emu)
    full = run_tap_cli(config)
    assert full.exit_code == 0, full.stderr
    assert set(full.ids(STREAM, KEY)) == truth
    states = sum(m["type"] == "STATE" for m in full.messages)
    for kill in range(1, states + 1):
        killed = run_tap_cli(config, kill_after_states=kill)
        resumed = run_tap_cli(config, killed.final_state)
        assert resumed.exit_code == 0, resumed.stderr
        lost = truth - set(killed.ids(STREAM, KEY)) - set(resumed.ids(STREAM, KEY))
        assert lost == set(), f"killed after STATE {kill} of {states}"


@pytest.mark.parametrize("mode", ["honoured", "ignored-desc", "ignored-random"])
def test_faults_do_not_lose_events(emulator, mode: str) -> None:
    faults = [
        FaultRule("429", probability=0.1, retry_after=0),
        FaultRule("500", probability=0.05),
        FaultRule("502", probability=0.05),
        FaultRule("drop", probability=0.05),
        FaultRule("truncate", probability=0.05),
        FaultRule("badjson", probability=0.05),
    ]
    emu = start(emulator, mode, seed=36, events_per_org=600, faults=faults)
    run = run_tap(tap_config(emu))
    assert run.exit_code == 0
    assert set(run.ids(STREAM, KEY)) == truth_ids(emu)
    assert any(r.fault for r in emu.requests("nirvana")), "the scenario injected faults"


def test_bad_key_is_one_clear_line(emulator) -> None:
    emu = start(emulator, seed=37)
    wrong = "nirvana_wrong_key_value_123456"
    run = run_tap_cli(tap_config(emu, nirvana={"api_key": wrong}))
    assert run.exit_code == 1
    errors = [line for line in run.stderr.splitlines() if "ERROR" in line]
    named = [line for line in errors if "nirvana.api_key" in line]
    assert len(named) == 1, run.stderr
    assert "Nirvana Labs" in named[0]
    assert "HTTP 401" in named[0]
    assert "Traceback" not in run.stderr
    assert wrong not in run.stderr
    assert run.records() == []
    assert len(emu.requests("nirvana")) == 1, "a refused key is not retried"


@pytest.mark.parametrize("level", ["debug", "info"])
def test_key_never_appears_in_any_output(emulator, level: str) -> None:
    faults = [
        FaultRule("429", nth=(2,), retry_after=0),
        FaultRule("500", nth=(3,)),
        FaultRule("drop", nth=(4,)),
        FaultRule("badjson", nth=(5,)),
    ]
    emu = start(emulator, "ignored-desc", seed=38, faults=faults)
    env = {"TAP_AUDITLOGS_LOGLEVEL": level, "LOGLEVEL": level}
    good = run_tap_cli(tap_config(emu), env=env)
    assert good.exit_code == 0, good.stderr
    assert set(good.ids(STREAM, KEY)) == truth_ids(emu)
    assert sum("(path: " in line for line in good.stderr.splitlines()) == 1
    assert "(path: newest-first)" in good.stderr
    assert "about 150 left" in good.stderr, "total_count feeds the progress line"
    stopped = run_tap_cli(
        tap_config(
            emu, request_timeout=1, max_retries=1, nirvana={"base_url": "http://127.0.0.1:9"}
        ),
        env=env,
    )
    assert stopped.exit_code == 1
    assert "Traceback" not in stopped.stderr
    for run in (good, stopped):
        assert API_KEY not in json.dumps(run.messages)
        assert API_KEY not in run.stderr
        assert API_KEY[8:24] not in run.stderr
    if level == "debug":
        assert "DEBUG" in good.stderr, "debug logging was really on"


# ---- the emulator's Nirvana module ---------------------------------------------------------


def _get(emu, key: str | None = API_KEY, **params) -> requests.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return requests.get(
        f"{emu.base_url('nirvana')}/v1/audit_logs", headers=headers, params=params, timeout=5
    )


def test_emulator_limits_auth_and_cursors(emulator) -> None:
    emu = start(emulator, seed=39, events_per_org=25)
    assert emu.base_url("nirvana") == f"{emu.url}/nirvana"
    assert _get(emu, key=None).status_code == 401
    assert "message" in _get(emu, key="nope").json()
    for limit in ("9", "101", "ten"):
        bad = _get(emu, limit=limit)
        assert bad.status_code == 400
        assert "limit" in bad.json()["message"]
    default = _get(emu).json()
    assert len(default["items"]) == 10  # default limit
    assert default["pagination"]["total_count"] == 25
    cursor = default["pagination"]["next_cursor"]
    assert _get(emu, cursor=cursor).status_code == 200
    # A cursor is only valid for the same filters and sort order.
    assert _get(emu, cursor=cursor, sort="created_at:asc").status_code == 400
    assert _get(emu, cursor="not a cursor").status_code == 400
    assert _get(emu, created_at_min="yesterday").status_code == 400
    assert _get(emu, sort="created_at:up").status_code == 400


@pytest.mark.parametrize("filters", ["honoured", "ignored"])
def test_emulator_filters_honoured_or_ignored(emulator, filters: str) -> None:
    emu = emulator(providers=("nirvana",), seed=40, events_per_org=60, nirvana_filters=filters)
    events = sorted(emu.truth("nirvana"), key=lambda e: (parse_instant(e.ts), e.id))
    bound = events[30].ts
    page = _get(emu, limit=100, created_at_min=bound, sort="created_at:asc").json()
    stamps = [parse_instant(i["created_at"]) for i in page["items"]]
    if filters == "honoured":
        assert {i["id"] for i in page["items"]} == truth_ids(emu, since=bound)
        assert stamps == sorted(stamps)
    else:
        assert len(page["items"]) == 60
        assert stamps == sorted(stamps, reverse=True)  # the default order: newest first


# ---------------------------------------------------------------- audit_events mapping

#: Events patched as on the left become unified records holding what is on the right
#: (the generic fields are checked on every one: tests/unified_cases.py).
UNIFIED_CASES: list[Case] = [
    (
        {
            "action": "vm.created",
            "actor": {"id": "u-1", "name": "Ada Lovelace", "type": "user"},
            "target": {"id": "vm-1", "type": "vm"},
            "client_ip": "198.51.100.9",
            "status_code": 201,
            "user_agent": "nirvana-go/1.52.0",
        },
        {
            "action": "vm.created",
            "category": "resource",
            "operation": "create",
            "target_type": "vm",
            "target_id": "vm-1",
            "actor_id": "u-1",
            "actor_name": "Ada Lovelace",
            "actor_type": "user",
            "source_ip": "198.51.100.9",
            "status_code": 201,
            "user_agent": "nirvana-go/1.52.0",
            "organization_id": UNKNOWN_ORGANIZATION,
        },
    ),
    (  # no target: its type comes from the action's grammar
        {
            "action": "api_key.deleted",
            "actor": {"id": "k-1", "name": None, "type": "api_key"},
            "target": None,
        },
        {
            "category": "credential",
            "operation": "delete",
            "target_type": "api_key",
            "target_id": None,
            "actor_type": "api_key",
            "actor_name": None,
        },
    ),
    (
        {"action": "organization.updated"},
        {"category": "configuration", "operation": "update"},
    ),
    ({"action": "vm.teleported"}, {"category": "resource", "operation": "other"}),
    ({"action": "quota exceeded"}, {"category": "other", "operation": "other"}),
    # status_code is documented as a number: a fraction is kept; what is not a number is null
    ({"status_code": 201.5}, {"status_code": 201.5}),
    ({"status_code": "201"}, {"status_code": None}),
    ({"status_code": True}, {"status_code": None}),
]


def test_known_events_map_to_the_expected_unified_record(emulator) -> None:
    check_known_events(
        emulator, "nirvana", UNIFIED_CASES, organization=lambda ev: UNKNOWN_ORGANIZATION
    )


NIRVANA_ACTIONS: tuple[str, ...] = ("vm.created",)


def test_every_documented_event_type_is_mapped() -> None:
    check_documented_types("nirvana", NIRVANA_ACTIONS)


def test_the_resource_verb_grammar_is_read() -> None:
    mapping = mapping_of("nirvana")
    assert mapping.classify("volume.deleted") == ("resource", "delete", "volume")
    assert mapping.classify("api_key.created") == ("credential", "create", "api_key")
    assert mapping.classify("vm.restarted") == ("resource", "execute", "vm")
    assert mapping.classify("gadget.created") == ("other", "create", "gadget")
    assert mapping.classify("nodots") == OTHER
