"""The command line's input: ``--config`` files, ``.env`` and variables, ``--help``, catalogs,
Meltano's state and date-times without a timezone.

Each mistake ends with one ERROR line naming the file, variable or setting and exit code 2, no
traceback; what the tap can read on a stated assumption goes on with one WARNING. The real
``tap-auditlogs`` command runs in a subprocess, as in test_bad_input.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import typing as t
from datetime import timedelta
from pathlib import Path

import pytest

from tap_auditlogs.cli.environment import settings_from_environment
from tap_auditlogs.cli.settings import config_schema, settings_warnings, validate_settings
from tap_auditlogs.core.instants import format_instant, instant_from_datetime, parse_instant
from tap_auditlogs.streams.sdk import ENV_PREFIX
from tap_auditlogs.tap import TapAuditLogs
from tests.conftest import TAP_COMMAND, run_tap_cli, tap_config
from tests.emulator import SOCKET_TOKEN

SOCKET = "socket_audit_log"


def run_cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """``tap-auditlogs`` in ``cwd``, with no ``TAP_AUDITLOGS_*`` variable but those of ``env``."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
    return subprocess.run(
        [*TAP_COMMAND, *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**clean, **(env or {})},
        check=False,
        timeout=60,
    )


def lines(stderr: str, level: str) -> list[str]:
    """The log lines of one level."""
    return [line for line in stderr.splitlines() if f"| {level}" in line]


def one_error(done: subprocess.CompletedProcess) -> str:
    """The run's only ERROR line, after checking it ended as a user error should."""
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    assert done.stdout == "", "nothing is written with a broken input"
    errors = lines(done.stderr, "ERROR")
    assert len(errors) == 1, done.stderr
    return errors[0]


# ---- --config files -------------------------------------------------------------------------
BAD_CONFIG_FILES = {
    "missing": (None, "The --config file {path} does not exist"),
    "trailing comma": (
        '{\n  "socket": {"api_token": "x"},\n}\n',
        "The --config file is not valid JSON ({path}, line 3 column 1: ",
    ),
    "cut off": ('{"socket": ', "The --config file is not valid JSON ({path}, line 1 column 12: "),
    "empty": ("", "The --config file is not valid JSON ({path}, line 1 column 1: "),
    "a list": (
        '[{"socket": {}}]',
        "The --config file must hold a JSON object ({path} holds an array)",
    ),
    "a string": ('"socket"', "The --config file must hold a JSON object ({path} holds a string)"),
}


@pytest.mark.parametrize("case", list(BAD_CONFIG_FILES))
@pytest.mark.parametrize("mode", ["sync", "--discover", "--test"])
def test_a_bad_config_file_is_one_line_naming_it(tmp_path: Path, case: str, mode: str) -> None:
    text, says = BAD_CONFIG_FILES[case]
    path = tmp_path / "config.json"
    if text is not None:
        path.write_text(text)
    args = ["--config", str(path)] + ([] if mode == "sync" else [mode])
    error = one_error(run_cli(*args, cwd=tmp_path))
    assert says.format(path=path) in error, error


def test_a_second_config_file_is_checked_too(tmp_path: Path) -> None:
    good = tmp_path / "config.json"
    good.write_text(json.dumps({"socket": {"api_token": SOCKET_TOKEN}}))
    error = one_error(run_cli("--config", str(good), "--config", "secrets.json", cwd=tmp_path))
    assert "The --config file secrets.json does not exist" in error


# ---- .env and environment variables ---------------------------------------------------------
def streams_discovered(done: subprocess.CompletedProcess) -> list[str]:
    """The streams of a ``--discover`` run (all of them when no provider is configured)."""
    assert done.returncode == 0, done.stderr
    return [entry["tap_stream_id"] for entry in json.loads(done.stdout)["streams"]]


def test_dotenv_is_read_from_the_working_directory_only(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(f"{ENV_PREFIX}SOCKET_API_TOKEN={SOCKET_TOKEN}\n")
    below = tmp_path / "project"
    below.mkdir()
    here = streams_discovered(run_cli("--config", "ENV", "--discover", cwd=tmp_path))
    assert SOCKET in here
    assert "torq_audit_log" not in here, "the .env of the working directory configures Socket"
    elsewhere = streams_discovered(run_cli("--config", "ENV", "--discover", cwd=below))
    assert "torq_audit_log" in elsewhere, "a .env above the working directory is not read"


def test_the_environment_wins_over_dotenv(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(f"{ENV_PREFIX}REQUEST_TIMEOUT=abc\n")
    error = one_error(run_cli("--config", "ENV", "--discover", cwd=tmp_path))
    assert f"Environment variable {ENV_PREFIX}REQUEST_TIMEOUT (in {tmp_path / '.env'}) " in error
    assert "must be an integer" in error
    ok = run_cli(
        "--config", "ENV", "--discover", cwd=tmp_path, env={f"{ENV_PREFIX}REQUEST_TIMEOUT": "5"}
    )
    assert ok.returncode == 0, ok.stderr


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("REQUEST_TIMEOUT", "sixty", "must be an integer"),
        ("BACKOFF_BASE_SECONDS", "fast", "must be a number"),
        ("SOCKET_ORG_SLUGS", '["acme", ', "must be a JSON array"),
        ("SOCKET", "[1]", "must be a JSON object"),
        ("TORQ_LOOKBACK_SECONDS", "1.5", "must be an integer"),
    ],
)
def test_a_wrong_typed_variable_is_named(
    tmp_path: Path, variable: str, value: str, says: str
) -> None:
    env = {f"{ENV_PREFIX}{variable}": value, f"{ENV_PREFIX}SOCKET_API_TOKEN": SOCKET_TOKEN}
    error = one_error(run_cli("--config", "ENV", cwd=tmp_path, env=env))
    assert f"Environment variable {ENV_PREFIX}{variable} {says}" in error, error
    assert value not in error.split("|")[-1], "a value is never quoted (it could be a secret)"


def test_settings_from_environment_dotenv_rules(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In process: the working directory's .env fills in, the environment wins, nothing is
    written into the environment."""
    for name in [k for k in os.environ if k.startswith(ENV_PREFIX)]:
        monkeypatch.delenv(name)
    (tmp_path / ".env").write_text(
        f"{ENV_PREFIX}SOCKET_API_TOKEN=from-file\n{ENV_PREFIX}MAX_RETRIES=3\nOTHER=1\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(f"{ENV_PREFIX}MAX_RETRIES", "7")
    schema = TapAuditLogs.config_jsonschema
    config = settings_from_environment(schema, ENV_PREFIX)
    assert config["socket"]["api_token"] == "from-file"
    assert config["max_retries"] == 7
    assert f"{ENV_PREFIX}SOCKET_API_TOKEN" not in os.environ
    assert "OTHER" not in os.environ
    monkeypatch.chdir(tmp_path.parent)
    assert "socket" not in settings_from_environment(config_schema(), ENV_PREFIX)


# ---- --help, catalogs -------------------------------------------------------------------------
def test_help_describes_the_connection_test(tmp_path: Path) -> None:
    done = run_cli("--help", cwd=tmp_path)
    assert done.returncode == 0
    text = " ".join(done.stdout.split())
    assert "test the connection to every configured provider" in text
    assert "single record" not in text


def test_a_catalog_that_selects_nothing_says_so(emulator, tmp_path: Path) -> None:
    emu = emulator(providers=("socket",), seed=5, socket_orgs=("acme",), events_per_org=20)
    config = tap_config(emu)
    catalog = TapAuditLogs(config=config).catalog_dict
    for entry in catalog["streams"]:
        for item in entry["metadata"]:
            if item["breadcrumb"] == []:
                item["metadata"]["selected"] = False
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps(catalog))
    run = run_tap_cli(config, args=["--catalog", str(path)], timeout=60)
    assert run.exit_code == 0, run.stderr
    warnings = lines(run.stderr, "WARNING")
    assert [w for w in warnings if "No stream is selected in the catalog" in w], run.stderr
    assert any("nothing to sync" in w for w in warnings)
    assert run.records() == []


# ---- state ----------------------------------------------------------------------------------
def test_meltano_state_get_output_is_accepted(emulator) -> None:
    """``meltano state get`` prints ``{"singer_state": {...}}``: the same run as the bare state."""
    emu = emulator(providers=("socket",), seed=8, socket_orgs=("acme",), events_per_org=120)
    config = tap_config(emu)
    first = run_tap_cli(config)
    assert first.exit_code == 0, first.stderr
    bare = run_tap_cli(config, first.final_state)
    wrapped = run_tap_cli(config, {"singer_state": first.final_state})
    assert wrapped.exit_code == 0, wrapped.stderr
    assert lines(wrapped.stderr, "WARNING") == []
    assert len(wrapped.records(SOCKET)) == len(bare.records(SOCKET)) < len(first.records(SOCKET))
    assert "singer_state" not in (wrapped.final_state or {})
    assert wrapped.final_state == bare.final_state


@pytest.mark.parametrize("concurrency", [1, 8])
def test_a_saved_partition_no_longer_read_is_warned_once(emulator, concurrency: int) -> None:
    emu = emulator(providers=("socket",), seed=9, socket_orgs=("acme", "globex"))
    config = tap_config(emu, concurrency=concurrency)
    first = run_tap_cli(config)
    state = first.final_state
    assert state is not None
    stale = {"context": {"org_slug": "acne"}, "replication_key": "created_at"}
    state["bookmarks"][SOCKET]["partitions"].append(stale)
    run = run_tap_cli(config, state)
    assert run.exit_code == 0, run.stderr
    said = [w for w in lines(run.stderr, "WARNING") if "'acne'" in w]
    assert len(said) == 1, run.stderr
    assert "matches no partition read now (a typo of org_slug 'acme'?)" in said[0]
    assert "org_slug 'acme'; org_slug 'globex'" in said[0]
    assert stale in (run.final_state or {})["bookmarks"][SOCKET]["partitions"]


# ---- date-times without a timezone ----------------------------------------------------------
def test_a_start_date_without_timezone_is_read_as_utc(emulator) -> None:
    emu = emulator(providers=("socket",), seed=12, socket_orgs=("acme",), events_per_org=80)
    start_ns = instant_from_datetime(emu.scenario.now - timedelta(days=10))
    naive = format_instant(start_ns, digits=0).rstrip("Z")  # as Meltano rewrites 01/02/2025
    run = run_tap_cli(tap_config(emu, start_date=naive))
    assert run.exit_code == 0, run.stderr
    warned = [w for w in lines(run.stderr, "WARNING") if "no timezone" in w]
    assert len(warned) == 1, run.stderr
    assert f"setting `start_date` ({naive}) has no timezone: read as UTC ({naive}Z)" in warned[0]
    read = {r["event_id"] for r in run.records(SOCKET)}
    assert {e.id for e in emu.truth("socket") if parse_instant(e.ts) >= start_ns} <= read
    assert all(parse_instant(r["created_at"]) >= start_ns for r in run.records(SOCKET))


@pytest.mark.parametrize("name", ["start_date", "end_date"])
def test_settings_validation_reads_a_naive_date_time_as_utc(name: str) -> None:
    config: dict[str, t.Any] = {name: "2025-01-02T00:00:00", "socket": {"api_token": "x" * 12}}
    if name == "end_date":
        config["start_date"] = "2025-01-01T23:00:00Z"
    assert validate_settings(config) == []
    assert settings_warnings(config) == [
        f"setting `{name}` (2025-01-02T00:00:00) has no timezone: read as UTC "
        "(2025-01-02T00:00:00Z). Add Z or an offset such as +02:00 to say which one is meant."
    ]
    assert settings_warnings({name: "2025-01-02T00:00:00Z"}) == []
    assert settings_warnings({name: "2025-01-02"}) == []  # a bare date: midnight UTC, as said
    assert validate_settings({name: "2025-01-02T25:00:00"}) != []  # still refused when wrong
