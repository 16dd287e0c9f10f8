"""Bad input: every broken setting or state gets one clear line, or a documented safe path.

Each case runs the real ``tap-auditlogs`` command. A broken config or state ends with exit
code 2 and one ERROR line that names the setting or the state key, before any request; a
provider that refuses ends with exit code 1. Never a traceback, never a secret. State the
tap can still read safely (an older shape, a stream or an organization no longer
configured) is accepted: nothing at or after ``start_date`` is skipped, and a bookmark the
tap cannot use is announced with a warning before the partition is read again.
"""

from __future__ import annotations

import dataclasses
import json
import typing as t
from datetime import timedelta

import pytest

from tap_auditlogs.core.instants import format_instant, instant_from_datetime, parse_instant
from tests.conftest import run_tap_cli, tap_config
from tests.emulator import Emulator, Scenario, available_providers

SOCKET = "socket_audit_log"
TORQ = "torq_audit_log"
LOOKBACK_NS = 300 * 1_000_000_000


@dataclasses.dataclass(frozen=True)
class Case:
    """One bad input and what the tap must do with it."""

    says: str  # in an ERROR line (exit 1 or 2), or a WARNING line (exit 0); "" for none
    config: dict = dataclasses.field(default_factory=dict)  # overrides (None drops a key)
    state: t.Any = None  # the --state content (a str is written as it is)
    exit: int = 2
    keeps: str | None = None  # exit 0: this stream's state comes back unchanged


def partition(org: str = "acme", **keys: t.Any) -> dict:
    """A Socket state holding one partition."""
    part = {"context": {"org_slug": org}, "replication_key": "created_at", **keys}
    return {"bookmarks": {SOCKET: {"partitions": [part]}}}


BOOKMARK = "2026-11-10T00:00:00Z"  # replaced by an instant inside the data (see `state_for`)

CASES: dict[str, Case] = {
    # ---- configuration: exit 2, one line naming the setting ------------------------------
    "timeout not a number": Case(
        "`request_timeout` must be of type integer", {"request_timeout": "abc"}
    ),
    "timeout a boolean": Case(
        "`request_timeout` must be of type integer", {"request_timeout": True}
    ),
    "retries negative": Case("`max_retries` must be at least 0", {"max_retries": -1}),
    "retry wait a string": Case(
        "`max_retry_wait` must be of type integer", {"max_retry_wait": "9"}
    ),
    "backoff negative": Case(
        "`backoff_base_seconds` must be at least 0", {"backoff_base_seconds": -1}
    ),
    "unknown key in torq": Case(
        "unknown setting(s) regoin in `torq`; did you mean `region`?", {"torq": {"regoin": "eu"}}
    ),
    "unknown key in socket": Case(
        "unknown setting(s) org_slug in `socket`", {"socket": {"org_slug": "acme"}}
    ),
    "provider block a string": Case("setting `nirvana` must be of type object", {"nirvana": "k"}),
    "client id a number": Case(
        "`torq.client_id` must be of type string", {"torq": {"client_id": 7}}
    ),
    "region unknown": Case("`torq.region` is invalid", {"torq": {"region": "ap"}}),
    "org list a string": Case(
        "`socket.org_slugs` must be of type array", {"socket": {"org_slugs": "acme"}}
    ),
    "org list empty": Case("`socket.org_slugs` is an empty list", {"socket": {"org_slugs": []}}),
    "event types blank": Case(
        "`socket.event_types` is an empty list", {"socket": {"event_types": [" "]}}
    ),
    "lookback negative": Case(
        "`nirvana.lookback_seconds` must be 0 or more", {"nirvana": {"lookback_seconds": -5}}
    ),
    "lookback a fraction": Case(
        "`nirvana.lookback_seconds` must be of type integer", {"nirvana": {"lookback_seconds": 1.5}}
    ),
    "base_url not http": Case(
        "`nirvana.base_url` must be an http(s) URL", {"nirvana": {"base_url": "ftp://x"}}
    ),
    "start_date in the future": Case(
        "`start_date` is in the future", {"start_date": "2099-01-01T00:00:00Z"}
    ),
    "start_date impossible": Case("`start_date`", {"start_date": "2024-13-45T00:00:00Z"}),
    "credential missing": Case(
        "`torq.client_secret` is missing", {"torq": {"client_secret": None}}
    ),
    "token empty": Case("`socket.api_token` is set but empty", {"socket": {"api_token": ""}}),
    "token blanks": Case("`socket.api_token` is set but empty", {"socket": {"api_token": "  "}}),
    "client id empty": Case("`torq.client_id` is set but empty", {"torq": {"client_id": ""}}),
    "batch_config": Case("`batch_config` is not supported", {"batch_config": {"encoding": {}}}),
    # ---- state: exit 2, one line naming the state key ------------------------------------
    "state not JSON": Case("--state file is not valid JSON", state='{"bookmarks": '),
    "state a list": Case("--state file must hold a JSON object", state="[]"),
    "state a string": Case("--state file must hold a JSON object", state='"bookmarks"'),
    "bookmarks a list": Case("`bookmarks` must be an object", state={"bookmarks": []}),
    "stream state a number": Case(
        f"`bookmarks.{SOCKET}` must be an object", state={"bookmarks": {SOCKET: 5}}
    ),
    "partitions a string": Case(
        f"`bookmarks.{SOCKET}.partitions` must be a list",
        state={"bookmarks": {SOCKET: {"partitions": "acme"}}},
    ),
    "partition without context": Case(
        "must be an object with a `context` object",
        state={"bookmarks": {SOCKET: {"partitions": [{"replication_key_value": BOOKMARK}]}}},
    ),
    "partition twice": Case(
        "repeats an earlier partition",
        state={
            "bookmarks": {
                SOCKET: {"partitions": [partition()["bookmarks"][SOCKET]["partitions"][0]] * 2}
            }
        },
    ),
    "bookmark a number": Case(
        "replication_key_value` must be a date-time string, not 123",
        state=partition(replication_key_value=123),
    ),
    "bookmark not a date": Case(
        "replication_key_value` is not a date-time ('yesterday')",
        state=partition(replication_key_value="yesterday"),
    ),
    "bookmark in the future": Case(
        "replication_key_value` is in the future",
        state=partition(replication_key_value="2099-01-01T00:00:00Z"),
    ),
    "unpartitioned bookmark a number": Case(
        f"`bookmarks.{TORQ}.replication_key_value` must be a date-time string",
        state={"bookmarks": {TORQ: {"replication_key": "timestamp", "replication_key_value": 5}}},
    ),
    "recent_ids a list": Case(
        "recent_ids` must be an object",
        state=partition(replication_key_value=BOOKMARK, recent_ids=[]),
    ),
    "recent_ids value not a date": Case(
        "recent_ids.117` is not a date-time",
        state=partition(replication_key_value=BOOKMARK, recent_ids={"117": "soon"}),
    ),
    "pending_pass garbage": Case(
        "pending_pass` must be an object", state=partition(pending_pass="x")
    ),
    "pending_pass ceiling garbage": Case(
        "pending_pass.ceiling` is not a date-time",
        state=partition(pending_pass={"ceiling": "nope", "page_token": "2"}),
    ),
    "pending_pass token an object": Case(
        "pending_pass.page_token` must be a string, a number or null",
        state=partition(pending_pass={"page_token": {"page": 2}, "oldest_id": "1"}),
    ),
    # ---- a provider refuses: exit 1 ---------------------------------------------------------
    "wrong token": Case(
        "the credentials were refused",
        {"socket": {"api_token": "sktsec_wrong_token_12345"}},
        exit=1,
    ),
    "org not there": Case("socket.org_slugs", {"socket": {"org_slugs": ["acme", "nope"]}}, exit=1),
    # ---- state the tap reads safely: exit 0, nothing at or after start_date skipped ----------
    "empty state file": Case("", state="", exit=0),
    "older tap: no recent_ids": Case("", state=partition(replication_key_value=BOOKMARK), exit=0),
    "bookmark without timezone": Case(
        "", state=partition(replication_key_value=BOOKMARK.rstrip("Z")), exit=0
    ),
    "SDK shape with progress_markers": Case(
        "",
        state=partition(
            replication_key_value=BOOKMARK,
            progress_markers={
                "Note": "Progress is not resumable if interrupted.",
                "replication_key": "created_at",
                "replication_key_value": "2026-11-22T00:00:00Z",
            },
        ),
        exit=0,
    ),
    "bookmark of another replication key": Case(
        "is for the replication key 'updated_at'",
        state=partition(replication_key="updated_at", replication_key_value=BOOKMARK),
        exit=0,
    ),
    "one bookmark for a stream read per org": Case(
        "is for the whole stream",
        state={
            "bookmarks": {
                SOCKET: {"replication_key": "created_at", "replication_key_value": BOOKMARK}
            }
        },
        exit=0,
    ),
    "stream no longer there": Case(
        "bookmarks for stream `github_audit_log`, which this tap does not have",
        state={"bookmarks": {"github_audit_log": {"replication_key_value": BOOKMARK}}},
        exit=0,
        keeps="github_audit_log",
    ),
    "org no longer configured": Case(
        "Socket: the saved state of org_slug 'initech' matches no partition read now",
        state=partition("initech", replication_key_value=BOOKMARK),
        exit=0,
        keeps=SOCKET,
    ),
    "org typo in the state": Case(
        "org_slug 'acmee' matches no partition read now (a typo of org_slug 'acme'?)",
        state=partition("acmee", replication_key_value=BOOKMARK),
        exit=0,
        keeps=SOCKET,
    ),
    "stream typo in the state": Case(
        f"stream `socket_audit_logs`, which this tap does not have (a typo of `{SOCKET}`?)",
        state={"bookmarks": {"socket_audit_logs": {"partitions": []}}},
        exit=0,
        keeps="socket_audit_logs",
    ),
    "Meltano's singer_state wrapper": Case(
        "", state={"singer_state": partition(replication_key_value=BOOKMARK)}, exit=0
    ),
    "currently_syncing garbage": Case("", state={"currently_syncing": 5}, exit=0),
    "provider not configured now, its bookmark unreadable": Case(
        "",
        state={
            "bookmarks": {
                "configcat_audit_log": {
                    "partitions": [{"context": {"organizationId": "o1"}, "recent_ids": []}]
                }
            }
        },
        exit=0,
        keeps="configcat_audit_log",
    ),
}


@pytest.fixture(scope="module")
def emu() -> t.Iterator[Emulator]:
    """One small emulator for every case (no case changes its data)."""
    emulator = Emulator(
        Scenario(
            seed=41,
            providers=("socket", "torq", "nirvana"),
            events_per_org=60,
            socket_orgs=("acme", "globex"),
        )
    )
    with emulator:
        yield emulator


def config_for(emu: Emulator, case: Case) -> tuple[dict, int]:
    """The case's settings, and ``start_date`` in ns."""
    start_ns = instant_from_datetime(emu.scenario.now - timedelta(days=20))
    config = tap_config(emu, **{"start_date": format_instant(start_ns), **case.config})
    for block in config.values():
        if isinstance(block, dict):
            for key in [k for k, v in block.items() if v is None]:
                del block[key]
    return config, start_ns


def state_for(emu: Emulator, case: Case) -> tuple[str | None, int | None]:
    """The --state text, with ``BOOKMARK`` moved to an instant inside the data (10 days ago)."""
    if case.state is None:
        return None, None
    text = case.state if isinstance(case.state, str) else json.dumps(case.state)
    bookmark = emu.scenario.now - timedelta(days=10)
    ns = instant_from_datetime(bookmark)
    if BOOKMARK[:-1] not in text:
        return text, None
    return text.replace(BOOKMARK[:-1], format_instant(ns)[:-1]), ns


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input(emu: Emulator, tmp_path, name: str) -> None:
    case = CASES[name]
    config, start_ns = config_for(emu, case)
    text, bookmark_ns = state_for(emu, case)
    args: list[str] = []
    if text is not None:
        path = tmp_path / "state.json"
        path.write_text(text)
        args = ["--state", str(path)]
    run = run_tap_cli(config, args=args, timeout=60)

    assert run.exit_code == case.exit, run.stderr[-3000:]
    assert "Traceback" not in run.stderr, run.stderr
    for provider in available_providers().values():
        for secret in provider.credentials().values():
            assert len(secret) < 12 or secret not in run.stderr
    errors = [line for line in run.stderr.splitlines() if "| ERROR" in line]
    if case.exit == 2:
        assert len(errors) == 1, run.stderr
        assert case.says in errors[0], errors[0]
        assert run.messages == [], "nothing is read with a broken config or state"
        return
    if case.exit == 1:
        assert any(case.says in line for line in errors), run.stderr
        return
    assert errors == [], run.stderr
    if case.says:
        warnings = [line for line in run.stderr.splitlines() if "| WARNING" in line]
        assert any(case.says in line for line in warnings), run.stderr
    # Nothing at or after start_date is skipped: a usable bookmark is honoured (minus the
    # lookback), an unusable one means a full re-read.
    usable = bookmark_ns is not None and not case.says and not case.keeps
    floor = max(start_ns, bookmark_ns - LOOKBACK_NS) if usable and bookmark_ns else start_ns
    socket = {e.id for e in emu.truth("socket") if parse_instant(e.ts) >= floor}
    assert socket <= set(run.ids(SOCKET, "event_id"))
    torq = {e.id for e in emu.truth("torq") if parse_instant(e.ts) >= start_ns}
    assert torq <= set(run.ids(TORQ, "id"))
    if case.keeps:
        sent = json.loads(text or "{}")["bookmarks"][case.keeps]
        kept = run.final_state["bookmarks"][case.keeps]
        if case.keeps == SOCKET:
            sent, kept = sent["partitions"][0], kept["partitions"][0]
        assert kept == sent, "the state of what is not configured now is kept as it was"


def test_a_foreign_bookmark_is_not_adopted_by_a_killed_run(emulator) -> None:
    """A bookmark of another replication key is ignored, also after a kill mid-pass.

    Found here: the first checkpoint of the pass wrote our replication key next to the
    foreign value, so the next run took that value for a bookmark of ours and skipped
    every event below it (200 of 400 lost).
    """
    emu = emulator(providers=("socket",), seed=42, socket_orgs=("acme",), events_per_org=400)
    start_ns = instant_from_datetime(emu.scenario.now - timedelta(days=30))
    config = tap_config(emu, start_date=format_instant(start_ns))
    stamps = sorted(e.ts for e in emu.truth("socket"))
    state = partition(replication_key="updated_at", replication_key_value=stamps[200])
    killed = run_tap_cli(config, state, kill_after_records=150)  # inside the second page
    assert killed.exit_code == -9
    assert "is for the replication key 'updated_at'" in killed.stderr
    assert killed.final_state["bookmarks"][SOCKET]["partitions"][0].get("pending_pass")
    resumed = run_tap_cli(config, killed.final_state)
    assert resumed.exit_code == 0, resumed.stderr[-2000:]
    emitted = set(killed.ids(SOCKET, "event_id")) | set(resumed.ids(SOCKET, "event_id"))
    assert {e.id for e in emu.truth("socket")} <= emitted


def test_a_top_level_typo_names_the_setting_it_probably_meant() -> None:
    run = run_tap_cli({"strat_date": "2024-01-01T00:00:00Z", "socket": {"api_token": "x" * 10}})
    assert run.exit_code == 2
    errors = [line for line in run.stderr.splitlines() if "ERROR" in line]
    assert any("unknown setting `strat_date`" in e and "`start_date`" in e for e in errors), errors
    assert "Traceback" not in run.stderr
