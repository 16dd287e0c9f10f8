"""No value can crash the run or collapse two events (issue 20, item 4).

An event without its time field, with a null one, with garbage or with an epoch number, and
an event without an id or with a null one (the emulator's ``odd_values``, tests/emulator/odd.py),
for every provider: every event arrives, keyed by its id or the tap's substitute; each odd
event is named in one WARNING; the bookmark never moves on a time it cannot read; other
organizations and providers go on; a kill-and-resume still ends with every event.
"""

from __future__ import annotations

import copy
import logging
import math
import re
import typing as t
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from jsonschema import Draft7Validator

from tap_auditlogs.core.instants import (
    NS_PER_SECOND,
    format_instant,
    instant_from_datetime,
    parse_instant,
    read_epoch,
    read_instant,
)
from tap_auditlogs.engine.values import ODD_VALUE_WARNINGS
from tap_auditlogs.providers import all_providers
from tap_auditlogs.streams.audit_events import STREAM_NAME as UNIFIED
from tap_auditlogs.tap import TapAuditLogs
from tests.conftest import (
    TapRun,
    provider_sources,
    run_tap,
    run_tap_cli,
    served_id,
    served_instant,
    tap_config,
)
from tests.emulator import Scenario, TruthEvent
from tests.emulator.odd import ID_KINDS, ODD_KINDS
from tests.emulator.registry import available_providers

#: provider key -> its stream's name and primary-key fields
STREAMS = {
    p.key: (p.source_class.name, tuple(p.source_class.primary_keys)) for p in all_providers()
}
PROVIDERS = sorted(STREAMS)
EVERY_KIND = tuple(ODD_KINDS)
TIME_KINDS = tuple(kind for kind in ODD_KINDS if kind not in ID_KINDS)
START = "2000-01-01T00:00:00Z"


def odd_switches(provider: str, kinds: tuple[str, ...] = EVERY_KIND, **more: t.Any) -> dict:
    return {"providers": (provider,), f"{provider}_odd_values": kinds, **more}


def key_of(provider: str, event: TruthEvent) -> tuple[str, ...]:
    """The primary key the tap gives ``event`` (the substitute id for one served without)."""
    stream, fields = STREAMS[provider]
    return (event.org, served_id(stream, event))[-len(fields) :]


def emitted_keys(run: TapRun, provider: str) -> list[tuple[str, ...]]:
    stream, fields = STREAMS[provider]
    return [tuple(str(record[name]) for name in fields) for record in run.records(stream)]


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def time_field(provider: str) -> str:
    return available_providers()[provider].time_field


def id_field(provider: str) -> str:
    return available_providers()[provider].id_field


# ------------------------------------------------------------------------------ units

SECOND = 1_767_225_600  # 2026-01-01T00:00:00Z


@pytest.mark.parametrize(
    ("value", "unit", "ns"),
    [
        (SECOND, "s", SECOND * NS_PER_SECOND),
        (SECOND + 0.123456, "s", SECOND * NS_PER_SECOND + 123_456_000),
        (str(SECOND), "s", SECOND * NS_PER_SECOND),
        (SECOND * 1000 + 7, "ms", SECOND * NS_PER_SECOND + 7_000_000),
        (f"{SECOND * 1000 + 7}", "ms", SECOND * NS_PER_SECOND + 7_000_000),
        (SECOND * 10**6 + 7, "us", SECOND * NS_PER_SECOND + 7_000),
        (SECOND * 10**9 + 7, "ns", SECOND * NS_PER_SECOND + 7),
        (10**8, "s", 10**8 * NS_PER_SECOND),  # 1973-03-03: the first instant of every unit
        (10**11 - 1, "s", (10**11 - 1) * NS_PER_SECOND),  # year 5138 in seconds
        (10**11, "ms", 10**8 * NS_PER_SECOND),
    ],
)
def test_epoch_numbers_are_read_by_their_magnitude(value: object, unit: str, ns: int) -> None:
    assert read_epoch(value) == (ns, unit)
    assert read_instant(value) == ns


@pytest.mark.parametrize(
    "value",
    [None, "", "garbage", 0, 42, -SECOND, 10**8 - 1, 10**20, True, float("nan"), float("inf"),
     "1e9", " ", {"at": SECOND}, [SECOND], "2026-02-30T00:00:00Z", "12:00"],
)  # fmt: skip
def test_what_is_no_instant_is_none_and_never_an_error(value: object) -> None:
    assert read_instant(value) is None


@given(
    st.datetimes(
        min_value=datetime(1973, 3, 4),
        max_value=datetime(5000, 1, 1),
        timezones=st.just(timezone.utc),
    )
)
def test_every_unit_reads_back_the_same_instant(moment: datetime) -> None:
    """s (with a fraction), ms, us and ns of one instant, as numbers or text, read alike."""
    ns = instant_from_datetime(moment)
    us = ns // 1000
    seconds = us / 1_000_000  # a float: exact to its own precision only
    assert abs(t.cast("int", read_instant(seconds)) - ns) <= math.ulp(seconds) * NS_PER_SECOND
    assert read_instant(us // 1000) == us // 1000 * 1_000_000
    assert read_instant(str(us // 1000)) == us // 1000 * 1_000_000
    assert read_instant(us) == ns
    assert read_instant(ns) == ns
    assert read_instant(format_instant(ns)) == ns, "ISO 8601 still reads first"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_substitute_id_is_deterministic_distinct_and_fits_the_declared_type(
    provider: str,
) -> None:
    stream_name, _ = STREAMS[provider]
    stream = provider_sources()[stream_name]
    key, when = stream.primary_keys[-1], t.cast("str", stream.replication_key)
    event = {when: "2026-01-01T00:00:00Z", "action": "a", key: None}
    twin = {**event, "action": "b"}
    missing = {name: value for name, value in event.items() if name != key}
    substitute = stream.substitute_id(event)
    assert stream.id_of(event) == str(substitute) == stream.id_of(copy.deepcopy(event))
    assert stream.id_of(missing) == stream.id_of(event), "null and missing alike"
    assert stream.id_of(twin) != stream.id_of(event), "two events, two ids"
    assert stream.id_of({**event, key: " "}) == stream.id_of(event), "blank is no id"
    declared = stream.schema["properties"][key]
    assert list(Draft7Validator(declared).iter_errors(substitute)) == []
    if "integer" in declared["type"]:
        assert isinstance(substitute, int)
        assert -(2**52) <= substitute < 0, "negative (never a real id), exact as a double"
    else:
        assert re.fullmatch(r"sha256:[0-9a-f]{32}", str(substitute))


# ------------------------------------------------------------------ through the emulator


@pytest.mark.parametrize("provider", PROVIDERS)
def test_every_odd_event_arrives_with_one_warning_each(
    emulator, caplog: pytest.LogCaptureFixture, provider: str
) -> None:
    emu = emulator(seed=41, events_per_org=70, **odd_switches(provider))
    run = run_tap(tap_config(emu, start_date=START))
    assert run.exit_code == 0
    stream, fields = STREAMS[provider]
    truth = emu.truth(provider)
    expected = {key_of(provider, ev) for ev in truth}
    assert len(expected) == len(truth), "every event has its own key"
    assert set(emitted_keys(run, provider)) == expected, "every event, nothing else"

    records = run.records(stream)
    schema = provider_sources()[stream].schema["properties"]
    for name in fields:
        validator = Draft7Validator(schema[name])
        assert all(not list(validator.iter_errors(r[name])) for r in records), name

    said = warnings(caplog)
    timeless = [ev for ev in truth if served_instant(stream, ev) is None]
    idless = [ev for ev in truth if ev.item.get(id_field(provider)) is None]
    assert timeless, "the scenario serves events without a readable time"
    assert idless, "the scenario serves events without an id"
    assert len(timeless) + len(idless) <= ODD_VALUE_WARNINGS * len(emu.provider(provider).orgs)
    partitioned = provider_sources()[stream].organizations_setting is not None
    for ev in timeless:
        raw = ev.item.get(time_field(provider), "missing")
        shown = "missing" if raw == "missing" else repr(raw)
        lines = [
            line
            for line in said
            if f"event '{served_id(stream, ev)}' has no readable {time_field(provider)}" in line
        ]
        assert len(lines) == 1, (ev, lines)
        assert stream in lines[0]
        assert f"({shown})" in lines[0], "the raw value"
        assert not partitioned or f"'{ev.org}'" in lines[0], "the organization"
    for ev in idless:
        lines = [line for line in said if f"substitute id {served_id(stream, ev)!r}" in line]
        assert len(lines) == 1, (ev, lines)
        assert stream in lines[0]
        assert not partitioned or f"'{ev.org}'" in lines[0]
    for unit in ("s", "ms"):
        assert len([line for line in said if f"epoch number in {unit} " in line]) == 1


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("kind", ["garbage_cursor", "no_cursor", "null_cursor", "epoch_ms"])
def test_the_bookmark_never_moves_on_a_time_it_cannot_read(
    emulator, provider: str, kind: str
) -> None:
    """The newest event is the odd one (the 4th made, odd.py): the bookmark stays on the
    newest time the tap can read, and a second run emits nothing the first did not."""
    one_org = {**available_providers()[provider].one_org, f"{provider}_events_per_org": 4}
    emu = emulator(seed=42, **odd_switches(provider, (kind,), **one_org))
    stream, _ = STREAMS[provider]
    truth = emu.truth(provider)
    (org,) = emu.provider(provider).orgs
    newest = emu.provider(provider).events(org)[-1]  # the last made: none is newer
    assert served_instant(stream, newest) == (
        instant_from_datetime(newest.at) // 10**6 * 10**6 if kind == "epoch_ms" else None
    ), "the newest event is the odd one"
    config = tap_config(emu, start_date=START)
    first = run_tap(config)
    assert first.exit_code == 0
    assert set(emitted_keys(first, provider)) == {key_of(provider, ev) for ev in truth}
    readable = [ts for ev in truth if (ts := served_instant(stream, ev)) is not None]
    for part in _partitions(first.final_state, stream):
        bookmark = parse_instant(part["replication_key_value"])
        window = provider_sources()[stream].strategy.name == "time-windows"
        assert bookmark <= instant_from_datetime(datetime.now(timezone.utc))
        assert window or bookmark == max(readable), "the newest readable time"
    again = run_tap(config, first.final_state)
    assert again.exit_code == 0
    resent = set(emitted_keys(again, provider)) - {key_of(provider, newest)}
    assert len(resent) <= 1, "a second run resends at most the event it cannot place"


def _partitions(state: dict | None, stream: str) -> list[dict]:
    entry = (state or {})["bookmarks"][stream]
    return entry.get("partitions") or [entry]


def test_one_bad_event_stops_no_other_organization_or_provider(emulator) -> None:
    """Every provider at once, each serving every kind of odd value in several orgs."""
    switches = {f"{p}_odd_values": EVERY_KIND for p in PROVIDERS}
    emu = emulator(seed=43, events_per_org=50, **switches)
    run = run_tap(tap_config(emu, start_date=START))
    assert run.exit_code == 0
    for provider in PROVIDERS:
        stream, _ = STREAMS[provider]
        assert set(emitted_keys(run, provider)) == {
            key_of(provider, ev) for ev in emu.truth(provider)
        }
        states = _partitions(run.final_state, stream)
        assert len(states) == len(emu.provider(provider).orgs)
        assert all(part["replication_key_value"] for part in states), "every org moved on"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_killed_run_resumes_from_any_state_with_every_odd_event(emulator, provider: str) -> None:
    pages = 3 * (available_providers()[provider].resume_bound or 0)  # a STATE before the kill
    emu = emulator(
        seed=44, **odd_switches(provider, **{f"{provider}_events_per_org": max(240, pages)})
    )
    start = instant_from_datetime(emu.scenario.now - timedelta(days=31))  # the whole log
    windows = {"configcat": {"window_days": 3}} if provider == "configcat" else {}
    config = tap_config(emu, start_date=format_instant(start), **windows)
    truth = {key_of(provider, ev) for ev in emu.truth(provider)}
    killed = run_tap_cli(config, kill_after_records=len(truth) * 2 // 3)
    assert killed.exit_code == -9, killed.stderr[-2000:]
    positions = [
        (index, message["value"])
        for index, message in enumerate(killed.messages)
        if message["type"] == "STATE"
    ]
    assert positions, "the killed run wrote a STATE"
    for index, state in positions[:: max(1, len(positions) // 6)] + positions[-1:]:
        delivered = set(emitted_keys(TapRun(killed.messages[:index], 0), provider))
        resumed = run_tap(config, state)
        assert resumed.exit_code == 0
        missing = truth - delivered - set(emitted_keys(resumed, provider))
        assert not missing, f"STATE #{index}: lost {sorted(missing)[:3]}"


def test_audit_events_keys_every_odd_event_like_its_provider_table(emulator) -> None:
    switches = {f"{p}_odd_values": EVERY_KIND for p in PROVIDERS}
    emu = emulator(seed=45, events_per_org=40, **switches)
    config = tap_config(emu, start_date=START)
    catalog = TapAuditLogs(config=config).catalog_dict
    for entry in catalog["streams"]:
        for metadata in entry["metadata"]:
            if metadata["breadcrumb"] == []:
                metadata["metadata"]["selected"] = True
    run = run_tap(config, catalog=catalog)
    assert run.exit_code == 0
    unified = run.records(UNIFIED)
    schema = next(m["schema"] for m in run.messages if m.get("stream") == UNIFIED)
    validator = Draft7Validator(schema, format_checker=Draft7Validator.FORMAT_CHECKER)
    assert [e.message for r in unified for e in validator.iter_errors(r)][:3] == []
    keys = {(r["provider"], r["organization_id"], r["event_id"]) for r in unified}
    assert len(keys) == len(unified) == sum(len(emu.truth(p)) for p in PROVIDERS)
    for provider in PROVIDERS:
        stream, _ = STREAMS[provider]
        rows = {r["event_id"]: r for r in unified if r["provider"] == provider}
        assert set(rows) == {served_id(stream, ev) for ev in emu.truth(provider)}
        for ev in emu.truth(provider):
            row = rows[served_id(stream, ev)]
            assert row["raw"] == ev.item, "raw: exactly as served (no substitute written in)"
            instant = served_instant(stream, ev)
            if instant is None:
                assert row["occurred_at"] is None
            else:
                assert parse_instant(row["occurred_at"]) == instant


def test_an_old_event_without_a_time_is_still_emitted_once_per_run(emulator) -> None:
    """The tap cannot tell whether an event without a time is older than ``start_date``:
    it emits it (a duplicate at worst), never drops it."""
    emu = emulator(
        seed=46, events_per_org=30, span_days=20, **odd_switches("nirvana", ("no_cursor",))
    )
    emu.configure(nirvana_filters="ignored")
    start = emu.scenario.now - timedelta(days=10)
    run = run_tap(tap_config(emu, start_date=format_instant(instant_from_datetime(start))))
    assert run.exit_code == 0
    emitted = set(emitted_keys(run, "nirvana"))
    for ev in emu.truth("nirvana"):
        if ev.at >= start or served_instant("nirvana_audit_log", ev) is None:
            assert key_of("nirvana", ev) in emitted


def test_the_emulator_switch_refuses_an_unknown_kind() -> None:
    with pytest.raises(ValueError, match="unknown kinds"):
        Scenario(socket_odd_values=("no_such_kind",))
