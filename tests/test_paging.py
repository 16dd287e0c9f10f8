"""Issue 20, items 1 and 2: more is more, and totals are reconciled.

Every misbehaviour is an emulator switch, tried on every provider it applies to: empty pages
that still say there is more (a server that filters after paging), a last page that names
itself as the next one, ConfigCat's ``hasNext`` on the last page and its page numbers clamped
past the end, Nirvana's ``next_cursor`` null mid-log under a right ``total_count``, and
ConfigCat's equal timestamps shuffled between requests. Each run must end with every event
(after a resume against a healthy API where the tap cannot tell), with the WARNING asked for.
"""

from __future__ import annotations

import logging
import typing as t
from datetime import timedelta

import pytest

from tap_auditlogs.core.instants import format_instant, instant_from_datetime
from tap_auditlogs.core.types import Page
from tap_auditlogs.engine.totals import ScopeCount
from tap_auditlogs.providers import all_providers
from tests.conftest import TapRun, run_tap, run_tap_cli, tap_config
from tests.emulator.registry import available_providers
from tests.test_chaos import STREAM_OF, STREAMS, record_key, truth_keys

#: Providers whose emulator can serve empty pages that say there is more.
EMPTY_PAGE_PROVIDERS = sorted(
    name for name, emulated in available_providers().items() if "empty_pages" in emulated.switches
)
#: The readings each provider's log may be read with (a switch that changes the strategy).
READINGS: dict[str, dict[str, t.Any]] = {
    "nirvana newest-first": {"nirvana_filters": "ignored", "nirvana_order": "desc"},
    "nirvana unordered": {"nirvana_filters": "ignored", "nirvana_order": "random"},
    "socket unordered": {"socket_order": "random"},
}
#: Switches that make a provider's last page name itself as the next page (the same page
#: token twice). ConfigCat's page numbers are the tap's own, so it has none.
SAME_TOKEN_TWICE: dict[str, dict[str, t.Any]] = {
    "socket": {"socket_end_marker": "self"},
    "torq": {"torq_page_token": "sticky_last"},
    "nirvana": {"nirvana_cursor": "sticky_last"},
}
#: Events per organization: several pages, the last one short (250, 450: page 100; 1_300: 500).
EVENTS = {"torq": 1_300}


def _start(emulator: t.Any, provider: str, **switches: t.Any) -> t.Any:
    emulated = available_providers()[provider]
    per_org = EVENTS.get(provider, 450)
    scenario = {**emulated.one_org, f"{provider}_events_per_org": per_org, **switches}
    return emulator(providers=(provider,), seed=61, span_days=20, **scenario)


def _config(emu: t.Any) -> tuple[dict, int]:
    start_ns = instant_from_datetime(emu.scenario.now - timedelta(days=25))
    return tap_config(emu, start_date=format_instant(start_ns)), start_ns


def _missing(emu: t.Any, provider: str, start_ns: int, *runs: TapRun) -> set:
    stream = STREAM_OF[provider]
    fields = STREAMS[stream][1]
    emitted = {record_key(r, fields) for run in runs for r in run.records(stream)}
    return truth_keys(emu, stream, start_ns) - emitted


def _warnings(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and text in r.getMessage()
    ]


# ---------------------------------------------------------------------------------------
# 1. More is more.


def _empty_page_cases() -> list[t.Any]:
    cases = [pytest.param(name, {}, id=name) for name in EMPTY_PAGE_PROVIDERS]
    cases += [
        pytest.param(name.split()[0], switches, id=name)
        for name, switches in READINGS.items()
        if name.split()[0] in EMPTY_PAGE_PROVIDERS
    ]
    return cases


@pytest.mark.parametrize("every", [2, 3])
@pytest.mark.parametrize(("provider", "reading"), _empty_page_cases())
def test_empty_pages_that_say_there_is_more_are_followed(
    emulator, provider: str, reading: dict, every: int
) -> None:
    emu = _start(emulator, provider, **{f"{provider}_empty_pages": every}, **reading)
    config, start_ns = _config(emu)
    run = run_tap(config)
    assert run.exit_code == 0
    assert not _missing(emu, provider, start_ns, run), "an empty page ended the read"
    # The next run from its state reads nothing again that it should not miss either.
    emu.add_events(provider, emu.provider(provider).orgs[0], 3)
    again = run_tap(config, run.final_state)
    assert again.exit_code == 0
    assert not _missing(emu, provider, start_ns, run, again)


#: Switches that serve empty pages pointing on forever past the data.
ENDLESS_EMPTY_PAGES: dict[str, dict[str, t.Any]] = {
    "socket": {"socket_end_marker": "empty_results", "socket_order": "random"},
    "torq": {"torq_page_token": "empty_forever"},
}


@pytest.mark.parametrize("provider", sorted(ENDLESS_EMPTY_PAGES))
def test_endless_empty_pages_end_the_log_only_where_the_api_documents_it(
    emulator, provider: str, caplog
) -> None:
    """Past the data, empty pages that point on forever: a provider that documents an
    empty page as the end reads them as the end (a WARNING); Torq reports a loop."""
    emu = _start(emulator, provider, **ENDLESS_EMPTY_PAGES[provider])
    config, start_ns = _config(emu)
    run = run_tap(config)
    assert not _missing(emu, provider, start_ns, run), "the data pages were emitted"
    source_class = next(p.source_class for p in all_providers() if p.key == provider)
    if source_class.empty_page_may_end:
        assert run.exit_code == 0
        assert _warnings(caplog, "empty pages in a row"), caplog.text
    else:
        assert run.exit_code == 1


@pytest.mark.parametrize("provider", sorted(SAME_TOKEN_TWICE))
def test_a_last_page_that_names_itself_again_ends_the_read_with_a_warning(
    emulator, provider: str, caplog
) -> None:
    emu = _start(emulator, provider, **SAME_TOKEN_TWICE[provider])
    config, start_ns = _config(emu)
    run = run_tap(config)
    assert run.exit_code == 0, "never a failure"
    assert not _missing(emu, provider, start_ns, run), "never a lost page"
    warned = _warnings(caplog, "nothing can follow it")
    assert len(warned) == 1, warned
    again = run_tap(config, run.final_state)
    assert again.exit_code == 0
    assert not _missing(emu, provider, start_ns, run, again)


@pytest.mark.parametrize("provider", sorted(SAME_TOKEN_TWICE))
def test_a_one_page_log_that_names_itself_again_ends_with_a_warning(
    emulator, provider: str, caplog
) -> None:
    emu = _start(
        emulator, provider, **SAME_TOKEN_TWICE[provider], **{f"{provider}_events_per_org": 30}
    )
    config, start_ns = _config(emu)
    run = run_tap(config)
    assert run.exit_code == 0
    assert not _missing(emu, provider, start_ns, run)
    assert _warnings(caplog, "nothing can follow it")


@pytest.mark.parametrize("ending", ["has_next", "clamped"])
@pytest.mark.parametrize("empty_pages", [0, 3])
def test_configcat_has_next_on_the_last_page_and_a_clamped_page_end_each_window(
    emulator, ending: str, empty_pages: int, caplog
) -> None:
    emu = _start(
        emulator, "configcat", configcat_last_page=ending, configcat_empty_pages=empty_pages
    )
    config, start_ns = _config(emu)
    run = run_tap(config)
    assert run.exit_code == 0, "every window ends although hasNext says more"
    assert not _missing(emu, "configcat", start_ns, run)
    bookmarks = run.final_state["bookmarks"]["configcat_audit_log"]["partitions"]  # type: ignore[index]
    assert all(p.get("replication_key_value") for p in bookmarks), "the stream progresses"
    if ending == "clamped":
        assert _warnings(caplog, "served a page already read again")


# ---------------------------------------------------------------------------------------
# 2. Totals are reconciled.


def test_nirvana_cursor_null_mid_log_is_read_on_when_sorted(emulator, caplog) -> None:
    """Oldest first (filters honoured): each re-read starts where the last one got to."""
    emu = _start(emulator, "nirvana", nirvana_cursor="null_mid_log")
    config, start_ns = _config(emu)
    run = run_tap(config)
    assert run.exit_code == 0
    assert not _missing(emu, "nirvana", start_ns, run), "the total is reconciled in one run"
    assert not _warnings(caplog, "distinct were read")


@pytest.mark.parametrize("order", ["desc", "random"])
def test_nirvana_cursor_null_mid_log_keeps_the_bookmark_and_warns(
    emulator, order: str, caplog
) -> None:
    """Newest first or unordered: no re-read gets past the null cursor. One WARNING with
    the numbers, the bookmark stays; a resume against a healthy API reads everything."""
    emu = _start(
        emulator,
        "nirvana",
        nirvana_cursor="null_mid_log",
        nirvana_filters="ignored",
        nirvana_order=order,
    )
    config, start_ns = _config(emu)
    run = run_tap(config)
    assert run.exit_code == 0
    warned = _warnings(caplog, "distinct were read")
    assert len(warned) == 1, warned
    assert "reports 450 events" in warned[0]
    assert "200 distinct were read" in warned[0]
    state = run.final_state or {}
    bookmark = state.get("bookmarks", {}).get("nirvana_audit_log", {})
    assert not bookmark.get("replication_key_value"), "the bookmark did not move"
    emu.configure(nirvana_cursor="normal")
    resumed = run_tap(config, run.final_state)
    assert resumed.exit_code == 0
    assert not _missing(emu, "nirvana", start_ns, run, resumed)


@pytest.mark.parametrize("empty_pages", [0, 2])
def test_configcat_ties_shuffled_between_requests_are_read_in_narrower_windows(
    emulator, empty_pages: int, caplog
) -> None:
    emu = _start(
        emulator,
        "configcat",
        configcat_ties="shuffled",
        configcat_burst=7,
        configcat_events_per_org=600,
        configcat_empty_pages=empty_pages,
    )
    config, start_ns = _config(emu)
    run = run_tap(config)
    assert run.exit_code == 0
    assert not _missing(emu, "configcat", start_ns, run), "the total is reconciled"
    assert not _warnings(caplog, "distinct were read")


def test_configcat_a_shortfall_no_narrower_window_resolves_keeps_the_bookmark(
    emulator, caplog
) -> None:
    """More equal timestamps than a page holds, shuffled on every request: no window is
    narrow enough. One WARNING, no bookmark past it; a healthy API then gives everything."""
    emu = _start(
        emulator,
        "configcat",
        configcat_ties="shuffled",
        configcat_burst=250,
        configcat_events_per_org=500,
    )
    config, start_ns = _config(emu)
    run = run_tap(config)
    assert run.exit_code == 0
    warned = _warnings(caplog, "distinct were read")
    assert len(warned) == 1, warned
    emu.configure(configcat_ties="stable")
    resumed = run_tap(config, run.final_state)
    assert resumed.exit_code == 0
    assert not _missing(emu, "configcat", start_ns, run, resumed)


def test_a_token_that_repeats_mid_log_stops_the_read_after_handing_its_page_on(
    emulator, caplog
) -> None:
    """Torq's second page names itself as the next one while more follow: a loop, stopped
    with an error, but the page that repeated the token is emitted, not thrown away."""
    emu = _start(emulator, "torq", torq_page_token="repeat", torq_events_per_org=1_600)
    config, start_ns = _config(emu)
    run = run_tap(config)
    assert run.exit_code == 1
    emitted = run.records("torq_audit_log")
    assert len(emitted) == 1_000, "both pages read went out"
    assert run.final_state is not None
    emu.configure(torq_page_token="normal")
    fixed = run_tap(config, run.final_state)
    assert fixed.exit_code == 0
    assert not _missing(emu, "torq", start_ns, run, fixed)


@pytest.mark.parametrize(("provider", "reading"), _empty_page_cases())
def test_a_run_killed_among_empty_pages_resumes_without_loss(
    emulator, provider: str, reading: dict
) -> None:
    emu = _start(emulator, provider, **{f"{provider}_empty_pages": 2}, **reading)
    config, start_ns = _config(emu)
    truth = truth_keys(emu, STREAM_OF[provider], start_ns)
    killed = run_tap_cli(config, kill_after_records=len(truth) * 2 // 5)
    assert killed.exit_code == -9, killed.stderr[-2000:]
    resumed = run_tap(config, killed.final_state)
    assert resumed.exit_code == 0
    assert not _missing(emu, provider, start_ns, killed, resumed)


def test_a_total_that_rises_during_the_read_is_the_one_counted() -> None:
    """An event arriving during a read raises the total: counting the smallest total would
    let it hide an event the read missed (page boundaries that shifted between requests)."""
    count = ScopeCount()
    count.add(Page(records=[], token=None, next_token=2, total=5), ["a", "b", "c"])
    count.add(Page(records=[], token=2, next_token=None, total=6), ["d", "e"])
    assert count.total == 6
    assert count.shortfall == 1
