"""`tap-auditlogs --test`: one cheap call per provider and organization, a verdict for each.

Exit 0 only when every check passed (then one SCHEMA and one RECORD per stream, as the SDK's
test writes them); otherwise exit 1, no RECORD at all, the reason in one line per failed
check and in the last line, never a traceback, never a secret.
"""

from __future__ import annotations

import socket
import time

from tap_auditlogs.providers import all_providers
from tests.conftest import run_tap_cli, tap_config

SECRET_KEYS = ("api_token", "password", "api_key", "client_secret")


def secrets_of(config: dict) -> list[str]:
    return [
        str(block[key])
        for block in config.values()
        if isinstance(block, dict)
        for key in SECRET_KEYS
        if key in block
    ]


def assert_clean(stderr: str, config: dict) -> None:
    assert "Traceback" not in stderr, stderr
    for secret in secrets_of(config):
        assert secret not in stderr


def last_line(stderr: str) -> str:
    return stderr.strip().splitlines()[-1]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_all_providers_ok_one_record_per_stream(emulator) -> None:
    emu = emulator(events_per_org=30, span_days=2)
    config = tap_config(emu)
    run = run_tap_cli(config, args=["--test"])

    assert run.exit_code == 0, run.stderr
    records = [m for m in run.messages if m["type"] == "RECORD"]
    schemas = [m["stream"] for m in run.messages if m["type"] == "SCHEMA"]
    streams = {p.source_class.name for p in all_providers()}
    assert {m["stream"] for m in records} == streams
    assert len(records) == len(streams)
    assert set(schemas) == streams
    assert "Connection test passed" in last_line(run.stderr)
    # One check per organization (3 ConfigCat orgs, 3 Socket orgs, Nirvana, Torq today).
    listed = [p for p in all_providers() if p.source_class.organizations_setting]
    checks = sum(len(emu.provider(p.key).orgs) for p in listed) + len(all_providers()) - len(listed)
    assert run.stderr.count(": OK.") == checks
    assert_clean(run.stderr, config)

    # One small request per organization, plus each listing, plus Torq's token.
    calls = emu.requests()
    assert len(calls) <= checks + len(listed) + 1, [(c.method, c.path) for c in calls]
    socket_pages = [c for c in emu.requests("socket") if c.path.endswith("/audit-log")]
    assert len(socket_pages) == 3
    assert all(c.query.get("per_page") == "1" for c in socket_pages)
    torq_pages = [c for c in emu.requests("torq") if c.method == "GET"]
    assert [c.query.get("page_size") for c in torq_pages] == ["1"]


def test_bad_credentials_fail_with_the_setting_named(emulator) -> None:
    emu = emulator(providers=("socket", "nirvana"), events_per_org=10)
    config = tap_config(emu, socket={"api_token": "sktsec_wrong_token"})
    run = run_tap_cli(config, args=["--test"])

    assert run.exit_code == 1, run.stderr
    assert not [m for m in run.messages if m["type"] == "RECORD"]
    final = last_line(run.stderr)
    assert "Connection test failed (1 of 2 checks)" in final
    assert "credentials were refused (HTTP 401" in final
    assert "socket.api_token" in final
    assert "Nirvana Labs: OK." in run.stderr
    assert_clean(run.stderr, config)
    assert "sktsec_wrong_token" not in run.stderr


def test_missing_scope_and_unknown_org(emulator) -> None:
    emu = emulator(
        providers=("socket",),
        socket_orgs=("acme", "globex"),
        socket_forbidden_orgs=("globex",),
        events_per_org=10,
    )
    config = tap_config(emu, socket={"org_slugs": ["acme", "globex", "no-such-org"]})
    run = run_tap_cli(config, args=["--test"])

    assert run.exit_code == 1, run.stderr
    assert not [m for m in run.messages if m["type"] == "RECORD"]
    final = last_line(run.stderr)
    assert "(2 of 3 checks)" in final
    assert "org_slug 'globex'" in final
    assert "HTTP 403" in final
    assert "audit-log:list" in final
    assert "org_slug 'no-such-org'" in final
    assert "HTTP 404" in final
    assert "Check socket.org_slugs" in final
    assert "org_slug 'acme': OK." in run.stderr
    assert_clean(run.stderr, config)


def test_unreachable_host_and_wrong_region_are_quick(emulator) -> None:
    emu = emulator(providers=("nirvana", "torq"), events_per_org=10)
    port = closed_port()
    config = tap_config(
        emu,
        nirvana={"base_url": f"http://127.0.0.1:{port}"},
        torq={"client_secret": "a-key-of-the-other-region"},
        max_retries=8,
        backoff_base_seconds=1.0,
    )
    started = time.monotonic()
    run = run_tap_cli(config, args=["--test"])
    elapsed = time.monotonic() - started

    assert run.exit_code == 1, run.stderr
    assert elapsed < 20, f"the connection test took {elapsed:.0f} s"
    final = last_line(run.stderr)
    assert "Nirvana Labs: GET /v1/audit_logs" in final
    assert "connection failed" in final
    assert "Check nirvana.base_url" in final
    assert "state" not in final  # a test saves no state: no word about it
    assert "refused the API key" in final
    assert "torq.region" in final
    assert_clean(run.stderr, config)
    assert "a-key-of-the-other-region" not in run.stderr


def test_schema_mode_stays_the_sdks(emulator) -> None:
    emu = emulator(providers=("socket",), events_per_org=10)
    run = run_tap_cli(tap_config(emu), args=["--test=schema"])

    assert run.exit_code == 0, run.stderr
    assert {m["type"] for m in run.messages} == {"SCHEMA"}
    assert emu.requests() == []


def test_bad_config_is_exit_2_before_any_call(emulator) -> None:
    emu = emulator(providers=("socket",), events_per_org=10)
    config = {"socket": {"org_slugs": ["acme"], "base_url": emu.base_url("socket")}}
    run = run_tap_cli(config, args=["--test"])

    assert run.exit_code == 2, run.stderr
    assert "`socket.api_token` is missing" in last_line(run.stderr)
    assert "Traceback" not in run.stderr
    assert emu.requests() == []
