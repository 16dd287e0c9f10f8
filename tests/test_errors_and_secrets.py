"""User errors end with one clear line and a non-zero exit; secrets never reach any output."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
import requests

from tap_auditlogs.providers import all_providers
from tap_auditlogs.redaction import Redactor
from tap_auditlogs.responses import undecodable_body
from tap_auditlogs.unified import STREAM_NAME as UNIFIED
from tests.conftest import REPO, TAP_COMMAND, run_tap_cli, tap_config
from tests.emulator import SOCKET_TOKEN, FaultRule

CONFIG_ERRORS = {
    "no provider": ({}, "No provider is configured", 2),
    "missing token": ({"socket": {"org_slugs": ["acme"]}}, "`socket.api_token` is missing", 2),
    "start_date not a date": (
        {"start_date": "yesterday", "socket": {"api_token": SOCKET_TOKEN}},
        "`start_date`",
        2,
    ),
    "start_date without timezone": (
        {"start_date": "2024-01-01T00:00:00", "socket": {"api_token": SOCKET_TOKEN}},
        "no timezone",
        2,
    ),
    "base_url not a URL": (
        {"socket": {"api_token": SOCKET_TOKEN, "base_url": "api.socket.dev/v0"}},
        "`socket.base_url` must be an http(s) URL",
        2,
    ),
    "token of the wrong type": ({"socket": {"api_token": 12345}}, "`socket.api_token`", 2),
    "unknown key in a provider block": (
        {"socket": {"api_token": SOCKET_TOKEN, "org_slug": "acme"}},
        "unknown setting(s) org_slug in `socket`",
        2,
    ),
    "negative timeout": (
        {"request_timeout": -1, "socket": {"api_token": SOCKET_TOKEN}},
        "`request_timeout` must be at least 1",
        2,
    ),
    "empty org list": (
        {"socket": {"api_token": SOCKET_TOKEN, "org_slugs": []}},
        "`socket.org_slugs` is an empty list",
        2,
    ),
}


def assert_one_clear_line(stderr: str, expected: str) -> None:
    errors = [line for line in stderr.splitlines() if "ERROR" in line]
    assert errors, stderr
    assert any(expected in line for line in errors), stderr
    assert "Traceback" not in stderr, stderr


@pytest.mark.parametrize("case", list(CONFIG_ERRORS))
def test_bad_config_is_one_clear_line(case: str) -> None:
    config, expected, code = CONFIG_ERRORS[case]
    run = run_tap_cli(config)
    assert run.exit_code == code, run.stderr
    assert_one_clear_line(run.stderr, expected)
    assert run.messages == []
    assert SOCKET_TOKEN not in run.stderr


def test_discovery_needs_no_credentials_but_a_sync_and_the_test_do(tmp_path) -> None:
    """A new Meltano project lists the streams (``meltano select --list``) before any
    credential is set; anything that would call an API still refuses the empty config."""
    config_path = tmp_path / "config.json"
    config_path.write_text("{}")
    done = subprocess.run(
        [*TAP_COMMAND, "--config", str(config_path), "--discover"],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    streams = [entry["tap_stream_id"] for entry in json.loads(done.stdout)["streams"]]
    assert streams == [*sorted(p.stream_class.name for p in all_providers()), UNIFIED]
    for args in ((), ("--test",)):
        run = run_tap_cli({}, args=args)
        assert run.exit_code == 2, run.stderr
        assert_one_clear_line(run.stderr, "No provider is configured")


def test_bad_state_file_is_one_clear_line(emulator, tmp_path) -> None:
    emu = emulator(providers=("socket",), socket_orgs=("acme",))
    config = tap_config(emu)
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(config))
    state_path = tmp_path / "state.json"
    state_path.write_text('{"bookmarks": ')

    done = subprocess.run(
        [*TAP_COMMAND, "--config", str(config_path), "--state", str(state_path)],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    assert done.returncode == 2
    assert_one_clear_line(done.stderr, "--state file is not valid JSON")


def test_unknown_org_names_the_setting_and_others_still_sync(emulator) -> None:
    emu = emulator(providers=("socket",), socket_orgs=("acme", "globex"))
    run = run_tap_cli(tap_config(emu, socket={"org_slugs": ["acme", "nope"]}))
    assert run.exit_code == 1
    assert_one_clear_line(run.stderr, "socket.org_slugs")
    assert "'nope'" in run.stderr
    acme = {e.id for e in emu.truth("socket") if e.org == "acme"}
    assert set(run.ids("socket_audit_log", "event_id")) == acme
    partitions = run.final_state["bookmarks"]["socket_audit_log"]["partitions"]
    assert any(
        p["context"] == {"org_slug": "acme"} and p.get("replication_key_value") for p in partitions
    )


def test_bad_token_is_one_clear_line_naming_the_setting(emulator) -> None:
    emu = emulator(providers=("socket",), socket_orgs=("acme",))
    run = run_tap_cli(tap_config(emu, socket={"api_token": "sktsec_wrong_token_value_123"}))
    assert run.exit_code == 1
    assert_one_clear_line(run.stderr, "socket.api_token")
    assert "audit-log:list" in run.stderr
    assert "sktsec_wrong_token_value_123" not in run.stderr


def test_redirects_are_never_followed(emulator) -> None:
    emu = emulator(
        providers=("socket",), socket_orgs=("acme",), faults=[FaultRule("redirect", nth=(1,))]
    )
    run = run_tap_cli(tap_config(emu, socket={"org_slugs": ["acme"]}))
    assert run.exit_code == 1
    assert_one_clear_line(run.stderr, "redirect")
    assert "socket.base_url" in run.stderr
    assert [r.path for r in emu.requests()] == ["/socket/v0/orgs/acme/audit-log"], "not followed"


@pytest.mark.parametrize("level", ["debug", "info"])
def test_token_never_appears_in_any_output(emulator, level: str) -> None:
    faults = [
        FaultRule("429", nth=(2,), retry_after=0),
        FaultRule("500", nth=(3,)),
        FaultRule("drop", nth=(4,)),
        FaultRule("badjson", nth=(5,)),
    ]
    emu = emulator(providers=("socket",), socket_orgs=("acme", "globex"), faults=faults)
    env = {"TAP_AUDITLOGS_LOGLEVEL": level, "LOGLEVEL": level}
    good = run_tap_cli(tap_config(emu, socket={"org_slugs": ["acme", "ghost"]}), env=env)
    assert good.exit_code == 1  # 'ghost' is unknown: an error path
    stopped = run_tap_cli(
        tap_config(
            emu, request_timeout=1, max_retries=1, socket={"base_url": "http://127.0.0.1:9/v0"}
        ),
        env=env,
    )
    assert stopped.exit_code == 1
    for run in (good, stopped):
        stdout = json.dumps(run.messages)
        assert SOCKET_TOKEN not in stdout
        assert SOCKET_TOKEN not in run.stderr
        assert SOCKET_TOKEN[8:24] not in run.stderr
    if level == "debug":
        assert "DEBUG" in good.stderr, "debug logging was really on"


def run_with_env_config(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``tap-auditlogs --config ENV`` with ``env`` added to the environment."""
    return subprocess.run(
        [*TAP_COMMAND, "--config", "ENV"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, **env},
        check=False,
        timeout=120,
    )


def test_nested_settings_from_environment_variables(emulator) -> None:
    """TAP_AUDITLOGS_SOCKET_API_TOKEN sets socket.api_token with --config ENV, as in Meltano."""
    emu = emulator(providers=("socket",), socket_orgs=("acme",))
    socket = emu.tap_config()["socket"]
    env = {
        "TAP_AUDITLOGS_SOCKET_API_TOKEN": socket["api_token"],
        "TAP_AUDITLOGS_SOCKET_BASE_URL": socket["base_url"],
        "TAP_AUDITLOGS_SOCKET_ORG_SLUGS": '["acme"]',
        "TAP_AUDITLOGS_BACKOFF_BASE_SECONDS": "0.01",
    }
    done = run_with_env_config(env)
    assert done.returncode == 0, done.stderr
    records = [line for line in done.stdout.splitlines() if '"type":"RECORD"' in line]
    assert len(records) == len(emu.truth("socket"))
    assert socket["api_token"] not in done.stderr


def test_wrongly_typed_environment_variable_is_one_clear_line() -> None:
    env = {"TAP_AUDITLOGS_SOCKET_API_TOKEN": SOCKET_TOKEN, "TAP_AUDITLOGS_MAX_RETRIES": "many"}
    done = run_with_env_config(env)
    assert done.returncode == 2
    assert_one_clear_line(done.stderr, "TAP_AUDITLOGS_")
    assert SOCKET_TOKEN not in done.stderr


def test_an_unreadable_body_is_quoted_without_secrets() -> None:
    """A page that echoes the token (some proxies do) is quoted scrubbed, 80 characters."""
    Redactor.register(SOCKET_TOKEN)
    response = requests.Response()
    response.status_code = 200
    response.headers["Content-Type"] = "text/html"
    response._content = f"<html>\n  <p>Authorization: Bearer {SOCKET_TOKEN}</p>{'x' * 500}".encode()
    text = undecodable_body(response)
    assert SOCKET_TOKEN not in text
    assert "'<html> <p>Authorization: Bearer ***</p>xxx" in text
    quoted = text.split("starting '", 1)[1].rsplit("')", 1)[0]
    assert len(quoted) == 80
    assert "text/html" in text
    assert "Bearer" not in undecodable_body(response, quote=False)
