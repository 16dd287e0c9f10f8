"""A provider from outside the package that POSTs, with its cursor in the JSON body: every
request is a POST, the first with the page size and start time, every later one with the
cursor alone; read to ``has_more: false``, resumed from its state, killed and resumed
without loss; the connection test probes the same way; no secret in any message."""

from __future__ import annotations

import math
import re
import typing as t
from datetime import timedelta
from pathlib import Path

import pytest

from tap_auditlogs.core.instants import format_instant, parse_instant, seconds_to_ns
from tests.conftest import TapRun, installed_provider, provider_code_lines, run_tap_cli, tap_config
from tests.emulator import FaultRule
from tests.example_post_provider.emulator import TOKEN, ExampleEventsProvider
from tests.example_post_provider.example_events import ExampleEvents

KEY = ExampleEventsProvider.name
STREAM = "example_events"
ENTRY_POINT = "tests.example_post_provider.example_events:PROVIDER"
PATH = "/api/v1/auditevents"


@pytest.fixture
def registered(tmp_path: Path) -> t.Iterator[dict[str, str]]:
    """The provider installed as a package would be, for the tap processes these tests
    start; its API served by the emulator."""
    with installed_provider(tmp_path / "site", KEY, ENTRY_POINT, ExampleEventsProvider) as env:
        yield env


def config(emu: t.Any) -> dict:
    start = emu.scenario.now - timedelta(days=emu.scenario.span_days + 1)
    return tap_config(emu, start_date=start.isoformat())


def ids(*runs: TapRun) -> list[str]:
    return [record["uuid"] for run in runs for record in run.records(STREAM)]


def pages(emu: t.Any) -> list[t.Any]:
    return [r for r in emu.requests(KEY) if r.path.endswith(PATH)]


def test_post_cursor_paging_reads_everything_with_the_cursor_alone(registered, emulator) -> None:
    emu = emulator(providers=(KEY,), events_per_org=2500)
    first = run_tap_cli(config(emu), env=registered)
    assert first.exit_code == 0, first.stderr[-2000:]
    assert sorted(ids(first)) == sorted(e.id for e in emu.truth(KEY))
    sent = pages(emu)
    assert len(sent) == math.ceil(2500 / 1000), "has_more false ends the read"
    assert {r.method for r in sent} == {"POST"}
    assert sent[0].query == {}
    assert set(sent[0].body) == {"limit", "start_time"}
    assert sent[0].body["limit"] == 1000
    assert all(set(r.body) == {"cursor"} for r in sent[1:]), [r.body for r in sent]
    assert len({r.body["cursor"] for r in sent[1:]}) == len(sent) - 1

    emu.add_events(KEY, emu.provider(KEY).orgs[0], 3)
    emu.reset_requests()
    second = run_tap_cli(config(emu), first.final_state, env=registered)
    assert second.exit_code == 0, second.stderr[-2000:]
    assert len(ids(second)) == 3, "only the new events"
    (resumed,) = pages(emu)
    bookmark = max(parse_instant(record["timestamp"]) for record in first.records(STREAM))
    lookback = seconds_to_ns(ExampleEvents.default_lookback_seconds)
    start_time = format_instant(bookmark - lookback, digits=3)
    assert resumed.body == {"limit": 1000, "start_time": start_time}, "a new cursor"


@pytest.mark.parametrize("kill_after", [1, 999, 1000, 1001, 2499])
def test_killed_and_resumed_loses_nothing(registered, emulator, kill_after: int) -> None:
    emu = emulator(providers=(KEY,), events_per_org=2500)
    killed = run_tap_cli(config(emu), env=registered, kill_after_records=kill_after)
    assert killed.final_state is not None or kill_after <= 1000, "a STATE after each page"
    resumed = run_tap_cli(config(emu), killed.final_state, env=registered)
    assert resumed.exit_code == 0, resumed.stderr[-2000:]
    assert set(ids(killed, resumed)) == {e.id for e in emu.truth(KEY)}
    # A request cut off by the kill may be logged before its body arrived (body None).
    starts = [r.body for r in pages(emu) if isinstance(r.body, dict) and "start_time" in r.body]
    assert len(starts) == 2, "each run starts one cursor, then sends the cursor alone"


def test_the_connection_test_probes_with_the_same_post(registered, emulator) -> None:
    emu = emulator(providers=(KEY,), events_per_org=30)
    run = run_tap_cli(config(emu), env=registered, args=["--test"])
    assert run.exit_code == 0, run.stderr[-2000:]
    (probe,) = pages(emu)
    assert (probe.method, probe.query, probe.body) == ("POST", {}, {"limit": 1})


def test_errors_name_the_post_and_never_the_secret(registered, emulator) -> None:
    """An error body that echoes the request (its headers and body) back: the message
    names ``POST <path>``, the secret appears nowhere."""
    emu = emulator(providers=(KEY,), events_per_org=30, faults=[FaultRule("echo400", nth=1)])
    run = run_tap_cli(config(emu), env=registered)
    assert run.exit_code != 0
    assert re.search(rf"Example Events: POST /\S*{PATH}: HTTP 400", run.stderr), run.stderr
    assert "GET " not in run.stderr
    assert TOKEN not in run.stderr
    assert TOKEN[: len(TOKEN) * 2 // 3] not in run.stderr


def test_a_retried_post_sends_the_same_body(registered, emulator) -> None:
    """Dropped, cut off, 500: each retry of a continuation repeats its cursor."""
    faults = [FaultRule("500", nth=2), FaultRule("drop", nth=3), FaultRule("truncate", nth=5)]
    emu = emulator(providers=(KEY,), events_per_org=2500, faults=faults)
    run = run_tap_cli(config(emu), env=registered)
    assert run.exit_code == 0, run.stderr[-2000:]
    assert sorted(ids(run)) == sorted(e.id for e in emu.truth(KEY))
    sent = pages(emu)
    assert [r.fault for r in sent] == [None, "500", "drop", None, "truncate", None]
    assert sent[1].body == sent[2].body == sent[3].body
    assert sent[4].body == sent[5].body != sent[3].body


def test_the_provider_is_small() -> None:
    """Its code (not its tests, not its emulator) is at most 150 lines: a declaration."""
    lines = provider_code_lines(Path(__file__).parent)
    assert lines <= 150, f"{lines} lines of provider code"
