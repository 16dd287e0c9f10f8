"""A fifth provider from outside the package: registered through the entry-point group,
read through the whole engine (Link-header paging, an empty last page that links to
itself, 429s with only ``X-Rate-Limit-Reset``), and killed and resumed without loss."""

from __future__ import annotations

import json
import math
import os
import subprocess
import typing as t
from datetime import timedelta
from pathlib import Path

import pytest

from tap_auditlogs.cli.settings import start_date_setting
from tap_auditlogs.providers import all_providers, and_list
from tests.conftest import (
    REPO,
    TAP_COMMAND,
    TapRun,
    installed_provider,
    provider_code_lines,
    run_tap_cli,
    tap_config,
)
from tests.example_provider.emulator import TOKEN, ExampleProvider
from tests.example_provider.example_log import PROVIDER

STREAM = "example_audit_log"
ENTRY_POINT = "tests.example_provider.example_log:PROVIDER"


@pytest.fixture
def registered(tmp_path: Path) -> t.Iterator[dict[str, str]]:
    """The provider installed as a package would be, for the tap processes these tests
    start; its API served by the emulator."""
    with installed_provider(tmp_path / "site", "example", ENTRY_POINT, ExampleProvider) as env:
        yield env


def config(emu: t.Any) -> dict:
    start = emu.scenario.now - timedelta(days=emu.scenario.span_days + 1)
    return tap_config(emu, start_date=start.isoformat())


def ids(*runs: TapRun) -> list[str]:
    return [record["uuid"] for run in runs for record in run.records(STREAM)]


def test_only_the_registered_process_knows_it(registered, tmp_path) -> None:
    assert "example" not in {p.key for p in all_providers()}, "never named in tap_auditlogs/"
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps({"example": {"api_token": TOKEN}}))
    done = subprocess.run(
        [*TAP_COMMAND, "--config", str(config_path), "--discover"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, **registered},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    streams = [entry["tap_stream_id"] for entry in json.loads(done.stdout)["streams"]]
    assert streams == [STREAM, "audit_events", "sync_coverage"]


def test_the_prose_that_names_every_provider_names_it(registered) -> None:
    """``--about``, the ``start_date`` description and the docs' provider lists come from
    the registry (``make docs`` writes them): a registered provider appears in each."""
    script = (
        "import json, sys; sys.path.insert(0, 'scripts'); import update_docs as d; "
        "print(json.dumps([d.HUB['label'], d.streams_table(), "
        "d.render_pyproject('description = \"x\"')]))"
    )
    env = {**os.environ, **registered}
    about = subprocess.run(
        [*TAP_COMMAND, "--about", "--format=json"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        check=True,
    )
    info = json.loads(about.stdout)
    providers = sorted([*all_providers(), PROVIDER], key=lambda provider: provider.key)
    labels = [provider.label for provider in providers]
    assert info["description"].startswith(f"Audit logs of {and_list(labels)} organizations")
    start_date = info["settings"]["properties"]["start_date"]["description"]
    assert start_date == start_date_setting(providers).to_dict()["start_date"]["description"]
    assert "Example" in start_date
    docs = subprocess.run(
        [TAP_COMMAND[0], "-c", script],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        check=True,
    )
    label, table, pyproject = json.loads(docs.stdout)
    assert label == f"Audit Logs ({', '.join(labels)})"
    assert "| `example_audit_log` | Example | `uuid` | `published` | " in table
    assert f"({', '.join(labels)})" in pyproject


def test_link_paging_reads_everything_and_stops_at_the_empty_page(registered, emulator) -> None:
    emu = emulator(providers=("example",), events_per_org=2500)
    first = run_tap_cli(config(emu), env=registered)
    assert first.exit_code == 0, first.stderr[-2000:]
    assert sorted(ids(first)) == sorted(e.id for e in emu.truth("example"))
    pages = [r for r in emu.requests("example") if r.path.endswith("/logs")]
    assert len(pages) == math.ceil(2500 / 1000) + 1, "three full pages, then the empty one"
    assert pages[-1].query.get("after") == "2500"

    emu.add_events("example", emu.provider("example").orgs[0], 3)
    second = run_tap_cli(config(emu), first.final_state, env=registered)
    assert second.exit_code == 0, second.stderr[-2000:]
    assert len(ids(second)) == 3, "only the new events"


def test_a_429_with_only_x_rate_limit_reset_is_waited_out(registered, emulator) -> None:
    emu = emulator(providers=("example",), events_per_org=1500, example_rate_limit_every=2)
    run = run_tap_cli(config(emu), env=registered)
    assert run.exit_code == 0, run.stderr[-2000:]
    assert sorted(ids(run)) == sorted(e.id for e in emu.truth("example"))
    refused = [r for r in emu.requests("example") if r.status == 429]
    assert refused
    waits = [line for line in run.stderr.splitlines() if "HTTP 429" in line and "retrying" in line]
    assert len(waits) == len(refused)
    assert all("as Retry-After asks" in line for line in waits), waits


@pytest.mark.parametrize("kill_after", [1, 999, 1000, 1700])
def test_killed_and_resumed_loses_nothing(registered, emulator, kill_after: int) -> None:
    emu = emulator(providers=("example",), events_per_org=2500)
    killed = run_tap_cli(config(emu), env=registered, kill_after_records=kill_after)
    assert killed.final_state is not None or kill_after <= 1000, "a STATE after each page"
    resumed = run_tap_cli(config(emu), killed.final_state, env=registered)
    assert resumed.exit_code == 0, resumed.stderr[-2000:]
    assert set(ids(killed, resumed)) == {e.id for e in emu.truth("example")}


def test_the_provider_is_small() -> None:
    """Its code (not its tests, not its emulator) is at most 150 lines: a declaration."""
    lines = provider_code_lines(Path(__file__).parent)
    assert lines <= 150, f"{lines} lines of provider code"
