"""Log lines a person can read (issue 25, item 9): counts in the singular or plural as they
are, and a time-window backfill that says how far in time it got and what is left."""

from __future__ import annotations

import logging
import re
from datetime import timedelta

import pytest

from tap_auditlogs.core.instants import format_instant, instant_from_datetime
from tap_auditlogs.core.text import plural
from tap_auditlogs.engine import page_loop
from tap_auditlogs.engine.windows import TimeWindows
from tests.conftest import provider_sources, run_tap, tap_config
from tests.test_chaos import FIRST_PAGE, STREAMS

#: Providers read in time windows, by their stream.
WINDOWED = {
    STREAMS[name][0]: stream
    for name, stream in provider_sources().items()
    if isinstance(stream.strategy, TimeWindows)
}
WINDOW_LINE = re.compile(
    r"^(?P<label>.+): windows read up to (?P<date>\d{4}-\d{2}-\d{2}), (?P<left>.+) left "
    r"\((?P<done>\d+) of (?P<windows>\d+) windows?\)\.$"
)


def test_counts_are_singular_or_plural_as_they_are() -> None:
    assert plural(0, "record") == "0 records"
    assert plural(1, "record") == "1 record"
    assert plural(2, "page") == "2 pages"
    assert plural(1, "entry", "entries") == "1 entry"
    assert plural(3, "entry", "entries") == "3 entries"


def test_a_progress_line_says_one_page_and_one_record() -> None:
    said: list[str] = []
    page_loop.Progress(said.append, "org a").page(1, 1, None)
    assert re.fullmatch(r"org a: 1 page, 1 record read \(\d+/s\)\.", said[-1])


def window_lines(emulator, caplog, provider: str, days_back: int) -> tuple[list[dict], str]:
    """Run ``provider``'s one-organization log from ``days_back`` days ago: its window
    progress lines (parsed) and today's date by the emulator."""
    _, switches = FIRST_PAGE[provider]
    emu = emulator(providers=(provider,), seed=8, events_per_org=200, **switches)
    start = instant_from_datetime(emu.scenario.now - timedelta(days=days_back))
    caplog.set_level(logging.INFO)
    run = run_tap(tap_config(emu, start_date=format_instant(start)))
    assert run.exit_code == 0
    found = [WINDOW_LINE.match(message) for message in caplog.messages]
    today = format_instant(instant_from_datetime(emu.scenario.now))[:10]
    return [m.groupdict() for m in found if m], today


@pytest.mark.parametrize("provider", sorted(WINDOWED))
def test_a_window_backfill_says_the_date_reached_and_what_is_left(
    emulator, caplog, monkeypatch, provider: str
) -> None:
    monkeypatch.setattr(page_loop, "PROGRESS_EVERY_SECONDS", 0.0)
    lines, today = window_lines(emulator, caplog, provider, days_back=120)
    assert lines, "no window progress line"
    windows = int(lines[0]["windows"])
    assert windows >= 3
    assert [int(line["done"]) for line in lines] == list(range(1, windows + 1))
    assert all(line["label"].startswith(WINDOWED[provider].provider_label) for line in lines)
    dates = [line["date"] for line in lines]
    assert dates == sorted(dates)
    assert dates[-1] == today
    assert lines[-1]["left"] == "less than a day"
    days_left = [
        0 if line["left"] == "less than a day" else int(line["left"].split()[0]) for line in lines
    ]
    assert days_left == sorted(days_left, reverse=True)
    assert days_left[0] > 60


@pytest.mark.parametrize("provider", sorted(WINDOWED))
def test_window_progress_lines_are_few(emulator, caplog, provider: str) -> None:
    """At most one line every ``PROGRESS_EVERY_SECONDS``: a quick backfill says it once."""
    lines, _ = window_lines(emulator, caplog, provider, days_back=120)
    assert len(lines) == 1, lines
