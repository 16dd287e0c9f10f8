"""Requests that never run unbounded, retries that are never wasted, calm edges (issue 20,
items 7 and 8), for every provider each applies to, through the emulator.

* A body that trickles in is cut at ``request_deadline_seconds`` and retried; one that stalls
  in mid-body is called a timeout.
* An answer without its documented shape (a null or missing list of events, an envelope of
  another type) fails after two attempts naming the field and saying the API changed; a
  field the provider may leave out (ConfigCat's ``paging``) is read without.
* ``Retry-After: 0`` still backs off; a 429 with only the provider's documented reset header
  is waited out until then, or stops the provider cleanly when that is too long.
* A UTF-8 BOM before the JSON is read; a closed stdout ends the run with one line, exit 141.
* A host that refuses connections or does not resolve, before it answered in this run, fails
  its provider at once naming the host and ``<provider>.base_url``; one that answered is
  retried through an outage; each retry is one line (issue 25).
"""

from __future__ import annotations

import itertools
import json
import logging
import subprocess
import tempfile
import time
import typing as t
from datetime import timedelta
from pathlib import Path

import pytest
import requests

from tap_auditlogs.core.errors import EXIT_OUTPUT_CLOSED, EXIT_PROVIDER
from tap_auditlogs.core.instants import format_instant, instant_from_datetime
from tap_auditlogs.http.responses import SHAPE_TRIES, reset_header_seconds
from tests.conftest import (
    REPO,
    TAP_COMMAND,
    TapRun,
    free_port,
    parse_lines,
    run_tap,
    run_tap_cli,
    tap_config,
)
from tests.emulator import Emulator, FaultRule
from tests.emulator.registry import available_providers
from tests.test_chaos import FIRST_PAGE, STREAM_OF, STREAMS, record_key, truth_keys

EMULATED = available_providers()
PROVIDERS = sorted(FIRST_PAGE)
#: Providers whose pages hold their events under a key (not a bare list).
LISTED = sorted(name for name, emulated in EMULATED.items() if emulated.list_key)
#: (provider, change) pairs where the change is not something the API documents.
SHAPE_FAULTS = [
    (name, change)
    for name in LISTED
    for change in ("null_list", "no_list")
    if not (change == "no_list" and EMULATED[name].list_key_absent_when_empty)
]


class Setup(t.NamedTuple):
    """One provider's one-organization log, the tap's config for it, and where it starts."""

    emu: Emulator
    config: dict
    start_ns: int
    stream: str


def one_org(
    emulator: t.Any, provider: str, faults: list[FaultRule], *, events: int = 500, **settings: t.Any
) -> Setup:
    """An emulator with ``provider``'s one-organization log and ``faults``, and a config."""
    _, switches = FIRST_PAGE[provider]
    emu = emulator(providers=(provider,), seed=47, events_per_org=events, faults=faults, **switches)
    start_ns = instant_from_datetime(emu.scenario.now - timedelta(days=20))
    config = tap_config(emu, start_date=format_instant(start_ns), **settings)
    return Setup(emu, config, start_ns, STREAM_OF[provider])


def assert_all_arrived(setup: Setup, *runs: TapRun) -> None:
    """Every event since the start was emitted by one of ``runs``."""
    fields = STREAMS[setup.stream][1]
    emitted = {record_key(r, fields) for run in runs for r in run.records(setup.stream)}
    missing = truth_keys(setup.emu, setup.stream, setup.start_ns) - emitted
    assert not missing, f"{len(missing)} events lost"


def said(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    """The messages logged at ``level``."""
    return [r.getMessage() for r in caplog.records if r.levelno == level]


def second_page(provider: str, *more: int) -> tuple[int, ...]:
    """Request numbers: the second data page (and ``more`` after it)."""
    first = FIRST_PAGE[provider][0]
    return (first + 1, *(first + 1 + n for n in more))


# ---------------------------------------------------------------------------------------
# No request runs unbounded.


def run_through_trickle(setup: t.Any, caplog: pytest.LogCaptureFixture) -> tuple[list[str], float]:
    """Run the tap through a trickling answer: every event arrives; its WARNINGs and how
    long the run took."""
    started = time.monotonic()
    run = run_tap(setup.config)
    took = time.monotonic() - started
    assert run.exit_code == 0
    assert_all_arrived(setup, run)
    return said(caplog, logging.WARNING), took


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_trickling_body_is_cut_at_the_deadline_and_read_again(
    emulator, caplog, provider: str
) -> None:
    setup = one_org(
        emulator,
        provider,
        [FaultRule("trickle", nth=second_page(provider), provider=provider)],
        request_deadline_seconds=1,
    )
    warnings, took = run_through_trickle(setup, caplog)
    assert any(
        "did not arrive in full within 1 s (request_deadline_seconds)" in w and "retrying in" in w
        for w in warnings
    ), warnings
    assert took < 30, f"one trickling page held the run {took:.0f} s"


def test_a_trickling_token_answer_is_cut_at_the_deadline_and_asked_again(emulator, caplog) -> None:
    """Torq's token request (request 1) is read like every answer: within
    ``request_deadline_seconds``, then retried."""
    setup = one_org(
        emulator,
        "torq",
        [FaultRule("trickle", nth=1, provider="torq", delay_s=0.2)],
        request_deadline_seconds=1,
    )
    warnings, took = run_through_trickle(setup, caplog)
    assert any(
        "access token" in w
        and "did not arrive in full within 1 s (request_deadline_seconds)" in w
        and "retrying in" in w
        for w in warnings
    ), warnings
    assert took < 30, f"a trickling token answer held the run {took:.0f} s"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_request_the_http_library_refuses_is_one_line_naming_the_provider(
    emulator, provider: str
) -> None:
    """A URL (or header value) ``requests`` will not send raises a ValueError-kind error
    before any connection: one ProviderError line with what to check, never a traceback."""
    setup = one_org(emulator, provider, [], events=5)
    config = {provider: {**setup.config[provider], "base_url": "http://127.0.0.1:99999999"}}
    run = run_tap_cli({k: v for k, v in setup.config.items() if k not in EMULATED} | config)
    assert run.exit_code == EXIT_PROVIDER, run.stderr
    assert "Traceback" not in run.stderr
    assert "could not be sent (InvalidURL" in run.stderr
    assert "Check this provider's settings" in run.stderr


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_body_that_stalls_midway_is_a_timeout(emulator, caplog, provider: str) -> None:
    fault = FaultRule("stall", nth=second_page(provider), provider=provider, delay_s=4)
    setup = one_org(emulator, provider, [fault], request_timeout=1)
    run = run_tap(setup.config)
    assert run.exit_code == 0
    assert_all_arrived(setup, run)
    warnings = said(caplog, logging.WARNING)
    assert any("timed out in the middle of the body" in w for w in warnings), warnings
    assert not any("connection failed" in w for w in warnings), warnings


# ---------------------------------------------------------------------------------------
# An answer whose shape will not change on retry.


@pytest.mark.parametrize(("provider", "change"), SHAPE_FAULTS)
def test_a_list_of_events_null_or_missing_once_is_retried(
    emulator, caplog, provider: str, change: str
) -> None:
    setup = one_org(
        emulator, provider, [FaultRule(change, nth=second_page(provider), provider=provider)]
    )
    run = run_tap(setup.config)
    assert run.exit_code == 0
    assert_all_arrived(setup, run)
    key = EMULATED[provider].list_key
    problem = "is null" if change == "null_list" else "is missing"
    warnings = said(caplog, logging.WARNING)
    assert any(f"documented shape: `{key}` {problem}" in w for w in warnings), warnings


@pytest.mark.parametrize(("provider", "change"), SHAPE_FAULTS)
def test_a_list_of_events_null_or_missing_for_good_fails_fast_naming_it(
    emulator, provider: str, change: str
) -> None:
    pages = second_page(provider, *range(1, 100))
    setup = one_org(emulator, provider, [FaultRule(change, nth=pages, provider=provider)])
    started = time.monotonic()
    broken = run_tap_cli({**setup.config, "max_retries": 8})
    took = time.monotonic() - started
    assert broken.exit_code == 1, broken.stderr[-2000:]
    assert "Traceback" not in broken.stderr
    key = EMULATED[provider].list_key
    errors = [line for line in broken.stderr.splitlines() if "ERROR" in line]
    assert any(
        f"`{key}` is" in e and "The API changed" in e and f"the same in {SHAPE_TRIES} attempts" in e
        for e in errors
    ), errors
    assert not any("raise max_retries" in e for e in errors), errors
    faulted = [r for r in setup.emu.requests(provider) if r.fault == change]
    assert len(faulted) == SHAPE_TRIES, "not retried 8 times: the shape does not change"
    assert took < 60
    setup.emu.configure(faults=[])
    again = run_tap(setup.config, broken.final_state)
    assert again.exit_code == 0
    assert_all_arrived(setup, broken, again)


@pytest.mark.parametrize(
    "provider", sorted(name for name, emulated in EMULATED.items() if emulated.optional_envelope)
)
def test_an_envelope_field_the_api_may_leave_out_is_read_without_it(
    emulator, caplog, provider: str
) -> None:
    field = EMULATED[provider].optional_envelope
    setup = one_org(emulator, provider, [FaultRule("no_envelope", probability=1.0)])
    run = run_tap(setup.config)
    assert run.exit_code == 0
    assert_all_arrived(setup, run)
    warnings = said(caplog, logging.WARNING)
    assert sum(f"no `{field}`" in w for w in warnings) == 1, warnings
    assert not any("retrying" in w for w in warnings), warnings


# ---------------------------------------------------------------------------------------
# Rate limits: no retry wasted.


@pytest.mark.parametrize("provider", PROVIDERS)
def test_retry_after_zero_still_backs_off(emulator, provider: str) -> None:
    pages = second_page(provider, 1, 2)
    fault = FaultRule("429", nth=pages, provider=provider, retry_after=0)
    setup = one_org(emulator, provider, [fault], backoff_base_seconds=0.2)
    run = run_tap(setup.config)
    assert run.exit_code == 0
    assert_all_arrived(setup, run)
    log = setup.emu.requests(provider)
    waits = [
        later.at - earlier.at
        for earlier, later in itertools.pairwise(log)
        if earlier.fault == "429" and later.path == earlier.path
    ]
    # The least of each attempt's backoff: 0.1, 0.2, 0.4 s (base 0.2, doubled, lower half).
    assert len(waits) == 3, waits
    for wait, least in zip(waits, (0.1, 0.2, 0.4), strict=True):
        assert wait >= least * 0.9, waits


RESETTING = sorted(
    name
    for name, emulated in EMULATED.items()
    if emulated.reset_headers(emulated.__new__(emulated), 1) is not None
)


@pytest.mark.parametrize("provider", RESETTING)
def test_a_429_with_only_the_reset_header_is_waited_out(emulator, caplog, provider: str) -> None:
    fault = FaultRule("429_reset", nth=second_page(provider), provider=provider, retry_after=2)
    setup = one_org(emulator, provider, [fault])
    run = run_tap(setup.config)
    assert run.exit_code == 0
    assert_all_arrived(setup, run)
    log = setup.emu.requests(provider)
    gap = next(b.at - a.at for a, b in itertools.pairwise(log) if a.fault == "429_reset")
    assert gap >= 1.5, f"retried {gap:.2f} s after a 429 whose reset was 2 s ahead"


@pytest.mark.parametrize("provider", RESETTING)
def test_a_reset_later_than_max_retry_wait_stops_the_provider_cleanly(
    emulator, provider: str
) -> None:
    pages = second_page(provider, *range(1, 50))
    fault = FaultRule("429_reset", nth=pages, provider=provider, retry_after=600)
    setup = one_org(emulator, provider, [fault], max_retry_wait=5)
    started = time.monotonic()
    run = run_tap(setup.config)
    assert run.exit_code == 3
    assert time.monotonic() - started < 30
    assert sum(r.fault == "429_reset" for r in setup.emu.requests(provider)) == 1
    setup.emu.configure(faults=[])
    again = run_tap(setup.config, run.final_state)
    assert again.exit_code == 0
    assert_all_arrived(setup, run, again)


@pytest.mark.parametrize(
    ("value", "low", "high"),
    [
        ("30", 29.0, 30.0),  # seconds to wait
        ("epoch+30", 28.0, 31.0),  # epoch seconds, 30 s ahead
        ("2000-01-01T00:00:00Z", 0.0, 0.0),  # in the past: at once (the policy backs off)
        ("Sun, 06 Nov 1994 08:49:37 GMT", 0.0, 0.0),
        ("soon", None, None),
    ],
)
def test_a_reset_header_is_read_in_every_form(
    value: str, low: float | None, high: float | None
) -> None:
    response = requests.Response()
    if value == "epoch+30":
        value = str(int(time.time()) + 30)
    response.headers["X-Rate-Limit-Reset"] = value
    seconds = reset_header_seconds(response, "X-Rate-Limit-Reset")
    if low is None or high is None:
        assert seconds is None
    else:
        assert seconds is not None
        assert low <= seconds <= high


# ---------------------------------------------------------------------------------------
# Calm edges.


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_byte_order_mark_before_the_json_is_read(emulator, caplog, provider: str) -> None:
    setup = one_org(emulator, provider, [FaultRule("bom", probability=1.0, provider=provider)])
    run = run_tap(setup.config)
    assert run.exit_code == 0
    assert_all_arrived(setup, run)
    assert any(r.fault == "bom" for r in setup.emu.requests(provider))
    assert not said(caplog, logging.WARNING)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_closed_stdout_ends_the_run_with_one_line_and_its_exit_code(
    emulator, provider: str
) -> None:
    setup = one_org(emulator, provider, [], events=3000)
    with tempfile.TemporaryDirectory() as tmp:
        config_path = Path(tmp, "config.json")
        config_path.write_text(json.dumps(setup.config))
        process = subprocess.Popen(
            [*TAP_COMMAND, "--config", str(config_path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=REPO,
        )
        assert process.stdout is not None
        assert process.stderr is not None
        lines: list[bytes] = []
        for line in process.stdout:  # 20 records, then the target "dies"
            lines.append(line)
            if sum(b'"type":"RECORD"' in seen.replace(b" ", b"") for seen in lines) >= 20:
                break
        process.stdout.close()
        started = time.monotonic()
        stderr = process.stderr.read().decode()
        exit_code = process.wait(timeout=60)
    assert exit_code == EXIT_OUTPUT_CLOSED, stderr[-2000:]
    assert time.monotonic() - started < 30
    assert "Traceback" not in stderr
    assert "Exception ignored" not in stderr
    errors = [line for line in stderr.splitlines() if "ERROR" in line]
    assert len(errors) == 1, errors
    assert "stdout closed: broken pipe" in errors[0]
    received = TapRun(messages=parse_lines(b"".join(lines).decode()), exit_code=exit_code)
    again = run_tap(setup.config, received.final_state)
    assert again.exit_code == 0
    assert_all_arrived(setup, received, again)


# ---------------------------------------------------------------------------------------
# Unreachable hosts fail fast; a host that answered is retried; one line per retry (issue 25).

#: A base URL nothing answers at, by how: a port nothing listens on, a name that never resolves.
UNREACHABLE = {
    "refused": lambda: (f"http://127.0.0.1:{free_port()}", "refused the connection"),
    "unresolvable": lambda: ("http://nonexistent.invalid", "does not resolve"),
}


@pytest.mark.parametrize("how", sorted(UNREACHABLE))
@pytest.mark.parametrize("provider", PROVIDERS)
def test_an_unreachable_host_fails_its_provider_at_once_naming_host_and_setting(
    emulator, provider: str, how: str
) -> None:
    """Before the host answered anything in this run, a refused connection or a name that
    does not resolve fails that provider at once (not after minutes of retries with the
    default policy), in one ERROR line with the host and ``<provider>.base_url``; every other
    provider is read in full; exit 1 (a provider failed)."""
    emu = emulator(seed=5, events_per_org=30)
    base_url, words = UNREACHABLE[how]()
    start_ns = instant_from_datetime(emu.scenario.now - timedelta(days=20))
    config = tap_config(
        emu,
        start_date=format_instant(start_ns),
        max_retries=8,  # the defaults: 8 retries from 1 s would take minutes
        backoff_base_seconds=1.0,
        **{provider: {"base_url": base_url}},
    )
    started = time.monotonic()
    run = run_tap_cli(config)
    took = time.monotonic() - started

    assert run.exit_code == EXIT_PROVIDER, run.stderr[-2000:]
    assert took < 15, f"an unreachable host held the run {took:.0f} s"
    assert "Traceback" not in run.stderr
    host = base_url.partition("//")[2]
    errors = [line for line in run.stderr.splitlines() if "ERROR" in line and host in line]
    assert len(errors) == 1, errors
    assert words in errors[0]
    assert f"Check {provider}.base_url (the host must be reachable from here)" in errors[0]
    assert "retrying" not in run.stderr, "not one retry"
    assert "gave up after" not in run.stderr
    for other in emu.providers:
        if other != provider:
            stream = STREAM_OF[other]
            emitted = {record_key(r, STREAMS[stream][1]) for r in run.records(stream)}
            assert emitted == truth_keys(emu, stream, start_ns), f"{other} not read in full"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_host_that_answered_is_retried_when_it_refuses_connections_later(
    emulator, caplog, provider: str
) -> None:
    """Mid-run, the host drops the connection and refuses new ones for a while (a restart):
    it answered earlier in this run, so the full retry policy applies and nothing is lost."""
    fault = FaultRule("outage", nth=second_page(provider), provider=provider, delay_s=0.5)
    setup = one_org(emulator, provider, [fault], backoff_base_seconds=0.2, max_retries=6)
    run = run_tap(setup.config)
    assert run.exit_code == 0
    assert_all_arrived(setup, run)
    assert any(r.fault == "outage" for r in setup.emu.requests(provider))
    warnings = said(caplog, logging.WARNING)
    assert any("ConnectionRefusedError" in w and "retrying in" in w for w in warnings), warnings


@pytest.mark.parametrize("provider", PROVIDERS)
def test_one_retry_is_one_line_and_giving_up_is_the_taps_own(emulator, provider: str) -> None:
    """``backoff`` logs nothing of its own ("Backing off", "Giving up"): a retried 503 is
    one WARNING line, and a request given up on is the tap's ERROR line only."""
    setup = one_org(emulator, provider, [FaultRule("503", nth=second_page(provider))], events=200)
    run = run_tap_cli(setup.config)
    assert run.exit_code == 0, run.stderr[-2000:]
    about = [line for line in run.stderr.splitlines() if "503" in line]
    assert len(about) == 1, about
    assert "WARNING" in about[0]
    assert "retrying in" in about[0]

    failing = one_org(emulator, provider, [FaultRule("503", probability=1.0)], max_retries=1)
    run = run_tap_cli(failing.config)
    assert run.exit_code == EXIT_PROVIDER
    assert "Backing off" not in run.stderr
    assert "Giving up" not in run.stderr
    errors = [line for line in run.stderr.splitlines() if "ERROR" in line and "503" in line]
    assert len(errors) == 1, errors
    assert "gave up after 2 attempts" in errors[0]
