"""User errors end with one clear line and a non-zero exit; secrets never reach any output."""

from __future__ import annotations

import contextlib
import html
import io
import json
import logging
import os
import subprocess
import typing as t
from urllib.parse import quote, quote_plus

import pytest
import requests
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tap_auditlogs.cli.command import PROBE_LIMITS
from tap_auditlogs.core.errors import AuditLogsError
from tap_auditlogs.core.redaction import (
    FRAGMENT_CHARS,
    Redactor,
    basic_credentials,
    print_scrubbed_exception,
)
from tap_auditlogs.http.responses import BODY_EXCERPT_CHARS, undecodable_body
from tap_auditlogs.providers import all_providers
from tap_auditlogs.streams.audit_events import STREAM_NAME as UNIFIED
from tap_auditlogs.streams.coverage import STREAM_NAME as COVERAGE
from tap_auditlogs.tap import TapAuditLogs
from tests.conftest import REPO, TAP_COMMAND, TapRun, parse_lines, run_tap, run_tap_cli, tap_config
from tests.emulator import (
    FAULT_KINDS,
    SOCKET_TOKEN,
    Emulator,
    FaultRule,
    Scenario,
    available_providers,
)

CONFIG_ERRORS = {
    "no provider": ({}, "No provider is configured", 2),
    "missing token": ({"socket": {"org_slugs": ["acme"]}}, "`socket.api_token` is missing", 2),
    "start_date not a date": (
        {"start_date": "yesterday", "socket": {"api_token": SOCKET_TOKEN}},
        "`start_date`",
        2,
    ),
    "token empty": ({"socket": {"api_token": ""}}, "`socket.api_token` is set but empty", 2),
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
    assert streams == [*sorted(p.source_class.name for p in all_providers()), UNIFIED, COVERAGE]
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


# ------------------------------------------------------------- secrets in every form

#: Echo faults (tests/emulator/faults.py): error bodies that quote the request's credentials.
ECHO_KINDS = sorted(kind for kind in FAULT_KINDS if kind.startswith("echo"))
PROVIDERS = {provider.key: provider for provider in all_providers()}


def secret_names(key: str) -> list[str]:
    """The provider's secret settings, as its settings schema declares them."""
    return [
        prop.name for prop in PROVIDERS[key].settings if prop.to_dict()[prop.name].get("secret")
    ]


def forms_on_the_wire(key: str, settings: dict[str, str]) -> list[str]:
    """Every secret of ``settings`` as it may be quoted: raw, JSON-escaped, URL-encoded,
    and the Basic ``base64(user:secret)`` where the provider sends one."""
    forms = []
    for name in secret_names(key):
        secret = settings[name]
        forms += [secret, json.dumps(secret)[1:-1], quote(secret, safe="")]
        user = settings.get("username") or settings.get("client_id")
        if user is not None:
            forms.append(basic_credentials(user, secret))
    return forms


def leaked_slices(forms: list[str], text: str) -> list[str]:
    """The ``FRAGMENT_CHARS``-character slices of ``forms`` that occur in ``text``."""
    n = FRAGMENT_CHARS
    slices = {form[i : i + n] for form in forms for i in range(len(form) - n + 1)}
    return sorted(piece for piece in slices if piece in text)


@pytest.fixture
def forget_secrets() -> t.Iterator[None]:
    """Generated secrets are forgotten after the test (so that they scrub nothing later)."""
    registered = (Redactor._short, set(Redactor._fragments))
    yield
    Redactor._short, Redactor._fragments = registered


@pytest.fixture
def debug_log() -> t.Iterator[io.StringIO]:
    """Everything logged, at DEBUG, tracebacks included (the Redactor joins the handler)."""
    text = io.StringIO()
    handler = logging.StreamHandler(text)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield text
    root.removeHandler(handler)
    root.setLevel(level)


def connection_test_in_process(config: dict) -> TapRun:
    """``--test`` in this process: the connection check and what it writes."""
    buffer = io.BytesIO()
    stdout = io.TextIOWrapper(buffer, encoding="utf-8")
    exit_code = 0
    with contextlib.redirect_stdout(stdout):
        try:
            tap = TapAuditLogs(config={**config, **PROBE_LIMITS})
            exit_code = 0 if tap.check_connections() else 1
            tap.flush_messages()  # else at exit, to the real stdout
        except AuditLogsError as error:
            exit_code = error.exit_code
        finally:
            stdout.flush()
    return TapRun(messages=parse_lines(buffer.getvalue().decode()), exit_code=exit_code)


#: Characters that JSON, repr, URLs and HTML escape, besides letters and digits.
ESCAPED = " \"\\'%+&/=#?:@;<>{}"
#: Characters an HTTP header cannot carry, or that a copy and paste brings along.
UNSENDABLE = ("\n", "\t", "\r", "\x00", "\x7f", "é", "☃", "\u200b", "\u00a0", "😀")


#: The words the tap and the emulator write on their own (messages, names, data): a secret
#: made of them is not one the leak check can judge. Hypothesis draws strings from the code
#: under test too (it drew "organiza", which every "organization" in the output holds).
OWN_WORDS = "\n".join(
    path.read_text(errors="replace")
    for folder, pattern in (("tap_auditlogs", "**/*.py"), ("tests/emulator", "*.py"))
    for path in sorted((REPO / folder).glob(pattern))
)


def made_of_own_words(secret: str) -> bool:
    """True when 8 characters of ``secret`` in a row stand in the tap's or emulator's text."""
    return any(secret[i : i + 8] in OWN_WORDS for i in range(len(secret) - 7))


@st.composite
def credential_shapes(draw: st.DrawFn) -> str:
    """A secret: printable ASCII with escaped characters, sometimes with whitespace at an
    edge or an unsendable character inside (both are refused before anything is sent)."""
    alphabet = st.one_of(
        st.characters(min_codepoint=0x21, max_codepoint=0x7E), st.sampled_from(ESCAPED)
    )
    core = draw(st.text(alphabet, min_size=8, max_size=64))
    assume(len(set(core)) >= 4)  # "aaaaaaaa" is no credential, and ordinary text holds it
    assume(not made_of_own_words(core))
    if draw(st.integers(0, 4)) == 0:
        at = draw(st.integers(1, len(core) - 1))
        core = core[:at] + draw(st.sampled_from(UNSENDABLE)) + core[at:]
    before = draw(st.sampled_from(["", "", "", " ", "\n"]))
    return before + core + draw(st.sampled_from(["", "", "", "\n", "\r\n", " "]))


@pytest.mark.parametrize("key", sorted(PROVIDERS))
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    secret=credential_shapes(),
    kind=st.sampled_from(ECHO_KINDS),
    nth=st.integers(1, 3),
    pad=st.integers(0, 320),
    accepted=st.booleans(),
    connection_test=st.booleans(),
)
def test_no_piece_of_a_secret_in_any_output(
    key: str,
    forget_secrets: None,
    debug_log: io.StringIO,
    secret: str,
    kind: str,
    nth: int,
    pad: int,
    accepted: bool,
    connection_test: bool,
) -> None:
    """Whatever the credential looks like and wherever the API echoes it (whole, cut,
    decoded, URL-encoded; in error bodies, on the token endpoint, in a 200 that is no JSON),
    no 8 characters of it reach stdout or the log, at DEBUG, in a sync or ``--test``."""
    debug_log.seek(0)
    debug_log.truncate()
    emulator_settings = Emulator.credentials(key)
    credentials = {**emulator_settings, **dict.fromkeys(secret_names(key), secret)}
    switches = {f"{key}_credentials": credentials} if accepted else {}
    with Emulator(
        Scenario(
            providers=(key,),
            events_per_org=30,
            faults=[FaultRule(kind, nth=(nth,), echo_pad=pad)],
            **{**available_providers()[key].one_org, **switches},
        )
    ) as emu:
        config = tap_config(emu, max_retries=1, **{key: credentials})
        run = (connection_test_in_process if connection_test else run_tap)(config)
        sent = emu.requests()
    sendable = secret == secret.strip() and all(" " <= c <= "~" for c in secret)
    output = json.dumps(run.messages) + debug_log.getvalue()
    if sendable:
        assert "DEBUG" in output, "debug logging was really on"
        assert run.exit_code != 0 or run.records(), "what the run wrote was captured"
    else:
        assert run.exit_code == 2
        assert sent == [], "a refused secret is never sent"
    assert leaked_slices(forms_on_the_wire(key, credentials), output) == []


#: Where the tap cuts what it quotes of an error body: the API's JSON message (a 401), a
#: plain-text error (a 400), the start of a 200 that is no JSON.
QUOTED_CHARS = {"echo401": 300, "echo400": 200, "echo200": BODY_EXCERPT_CHARS}


@pytest.mark.parametrize("kind", sorted(QUOTED_CHARS))
@pytest.mark.parametrize("key", sorted(PROVIDERS))
def test_a_cut_inside_a_credential_shows_none_of_it(
    emulator, debug_log: io.StringIO, key: str, kind: str
) -> None:
    """Error bodies are scrubbed before they are cut: when the cut falls 5 characters into
    an echoed credential (Torq: its token request's Basic credentials), not even those 5
    characters are shown."""
    emu = emulator(providers=(key,), events_per_org=20, **available_providers()[key].one_org)
    config = tap_config(emu, max_retries=1)
    assert run_tap(config).exit_code == 0
    scheme, _, value = emu.requests()[0].headers["authorization"].partition(" ")
    before = f"invalid credentials: {scheme} "  # tests/emulator/faults.py echoed_credentials
    pad = QUOTED_CHARS[kind] - len(before) - 5
    emu.configure(faults=[FaultRule(kind, nth=(1,), echo_pad=pad)])
    emu.reset_requests()
    debug_log.seek(0)
    debug_log.truncate()
    run = run_tap(config)
    output = json.dumps(run.messages) + debug_log.getvalue()
    assert f"{scheme} {value[:5]}" not in output
    assert leaked_slices(forms_on_the_wire(key, config[key]), output) == []
    if kind != "echo200" or key != "torq":  # Torq's token endpoint body is never quoted
        assert f"{'-' * 20}" in output, "the error body was quoted"


def test_credentials_with_a_line_break_are_refused_before_anything_is_sent(emulator) -> None:
    """A secret file written with ``echo`` ends with a newline: every secret setting of every
    provider is refused in one line naming it, at the default log level and with ``--test``,
    and nothing is sent (the token would be quoted in a traceback otherwise)."""
    emu = emulator(events_per_org=5)
    config = tap_config(emu)
    names = [f"{key}.{name}" for key in sorted(PROVIDERS) for name in secret_names(key)]
    for key in PROVIDERS:
        for name in secret_names(key):
            config[key][name] += "\n"
    forms = [form for key in PROVIDERS for form in forms_on_the_wire(key, config[key])]
    for args in ((), ("--test",)):
        run = run_tap_cli(config, args=args)
        assert run.exit_code == 2, run.stderr
        errors = [line for line in run.stderr.splitlines() if "ERROR" in line]
        assert len(errors) == 1, run.stderr
        assert all(f"`{name}` starts or ends with whitespace" in errors[0] for name in names)
        assert "Traceback" not in run.stderr
        assert leaked_slices(forms, run.stderr + json.dumps(run.messages)) == []
    assert emu.requests() == [], "nothing was sent"


def test_every_form_of_a_secret_and_every_piece_of_one_is_scrubbed(forget_secrets: None) -> None:
    secret = "pa ss/wo\"rd'%+&<é>\\tail_of_it"
    Redactor.register(secret)
    Redactor.register_basic("user", secret)
    forms = [
        secret,
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1].replace("/", "\\/"),
        repr(secret),
        repr(secret.encode()),
        quote(secret, safe=""),
        quote(secret),
        quote_plus(secret),
        html.escape(secret),
        basic_credentials("user", secret),
        secret[3:14],  # a truncated echo
    ]
    for form in forms:
        scrubbed = Redactor.scrub(f"before {form} after")
        assert scrubbed.startswith("before"), scrubbed
        assert scrubbed.endswith("after"), scrubbed
        assert leaked_slices([secret, basic_credentials("user", secret)], scrubbed) == []
    assert Redactor.scrub("nothing secret here") == "nothing secret here"


def test_an_uncaught_exception_is_printed_scrubbed(
    forget_secrets: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """What Python would print in full (e.g. ``Invalid header value b'Bearer <token>\\n'``)."""
    Redactor.register(SOCKET_TOKEN)
    try:
        raise ValueError(f"Invalid header value {f'Bearer {SOCKET_TOKEN}'.encode()!r}")
    except ValueError as error:
        print_scrubbed_exception(type(error), error, error.__traceback__)
    printed = capsys.readouterr().err
    assert "Traceback" in printed
    assert "Invalid header value b'Bearer ***'" in printed
    assert leaked_slices([SOCKET_TOKEN], printed) == []
