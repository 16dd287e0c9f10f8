"""Evidence of completeness (issue 23): ``sync_coverage``, the end-of-run summary, retention.

Every test talks to the emulator; the providers come from the registry.
"""

from __future__ import annotations

import copy
import json
import logging
import subprocess
import sys
import typing as t
import uuid
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest

from tap_auditlogs.core.errors import EXIT_PROVIDER, EXIT_RETENTION_GAP
from tap_auditlogs.core.instants import (
    format_instant,
    instant_from_datetime,
    now_instant,
    parse_instant,
)
from tap_auditlogs.providers import all_providers
from tap_auditlogs.streams.coverage import NO_ORGANIZATION, STREAM_NAME
from tests.conftest import (
    REPO,
    TapRun,
    provider_sources,
    psql,
    run_tap,
    run_tap_cli,
    served_id,
    tap_config,
)
from tests.emulator import Emulator, QuotaRule
from tests.emulator.registry import available_providers
from tests.unified_cases import select

if t.TYPE_CHECKING:
    from tests.emulator.provider import TruthEvent

PROVIDERS = sorted(available_providers())
STREAM_OF = {p.key: p.source_class.name for p in all_providers()}
#: Fields that name the run, not what it read.
RUN_FIELDS = ("run_id", "run_started_at")


def coverage_rows(run: TapRun) -> list[tuple[int, dict]]:
    """(message index, record) of every ``sync_coverage`` record."""
    return [
        (index, m["record"])
        for index, m in enumerate(run.messages)
        if m["type"] == "RECORD" and m["stream"] == STREAM_NAME
    ]


def final_rows(run: TapRun) -> dict[tuple[str, str], dict]:
    """The last row of each stream and partition (what a loader's upsert keeps)."""
    return {(row["stream"], row["partition"]): row for _, row in coverage_rows(run)}


def days_ago(emu: Emulator, days: float) -> str:
    return format_instant(instant_from_datetime(emu.scenario.now - timedelta(days=days)))


def partition_events(emu: Emulator, provider: str, row: dict) -> list[TruthEvent]:
    """The emulator's events of the row's partition."""
    events = emu.truth(provider)
    if row["organization_id"] == NO_ORGANIZATION:
        return events
    return [ev for ev in events if ev.org == row["organization_id"]]


def missing_in_claims(emu: Emulator, run_messages: list[tuple[list[dict], list[dict]]]) -> list:
    """Events the emulator holds inside a range some row claims complete, but that no RECORD
    before that row (in that run or an earlier one) holds. ``run_messages``: per run, its
    messages."""
    emitted: dict[str, set[str]] = {}
    problems = []
    for messages, _ in run_messages:
        for message in messages:
            if message["type"] != "RECORD":
                continue
            stream, record = message["stream"], message["record"]
            if stream == STREAM_NAME:
                provider = record["provider"]
                for ev in claimed(emu, provider, record):
                    if served_id(stream_of(provider), ev) not in emitted.get(
                        stream_of(provider), ()
                    ):
                        problems.append((record["stream"], record["partition"], ev.id, ev.ts))
                continue
            key = provider_sources()[stream].id_of(record) if stream in provider_sources() else None
            if key is not None:
                emitted.setdefault(stream, set()).add(key)
    return problems


def stream_of(provider: str) -> str:
    return STREAM_OF[provider]


def claimed(emu: Emulator, provider: str, row: dict) -> list[TruthEvent]:
    """The emulator's events inside the range ``row`` claims complete."""
    if row["covered_from"] is None:
        return []
    low, high = parse_instant(row["covered_from"]), parse_instant(row["covered_to"])
    stream = provider_sources()[stream_of(provider)]
    return [
        ev
        for ev in partition_events(emu, provider, row)
        if (ts := stream.instant_of(ev.item)) is not None and low <= ts <= high
    ]


# ------------------------------------------------------------------- (a) the stream


@pytest.mark.parametrize("provider", PROVIDERS)
def test_coverage_is_opt_in_and_says_what_each_partition_proved(emulator, provider: str) -> None:
    emu = emulator(providers=(provider,), seed=71, events_per_org=60)
    start = days_ago(emu, float(emu.scenario.span_days) + 1)
    config = tap_config(emu, start_date=start, concurrency=1)
    stream = STREAM_OF[provider]
    plain = run_tap(config)
    assert plain.exit_code == 0
    assert not coverage_rows(plain), "sync_coverage is opt-in"

    run = run_tap(config, catalog=select(config, {stream, STREAM_NAME}))
    assert run.exit_code == 0
    rows = coverage_rows(run)
    assert rows
    assert len({row["run_id"] for _, row in rows}) == 1
    uuid.UUID(rows[0][1]["run_id"])
    finals = final_rows(run)
    field = provider_sources()[stream].partition_field
    organizations = {str(r.get(field)) for r in run.records(stream)}
    if provider_sources()[stream].organizations_setting is None:  # one log, one partition
        organizations = {NO_ORGANIZATION}
    assert {row["organization_id"] for row in finals.values()} == organizations
    lookback = provider_sources()[stream].lookback_ns
    for row in finals.values():
        assert row["status"] == "complete", row
        assert row["error_class"] is None
        assert parse_instant(row["covered_from"]) == parse_instant(start)
        started = parse_instant(row["run_started_at"])
        assert parse_instant(row["covered_to"]) >= started - lookback - 10**9 * 5
        assert row["pages"] >= 1
        assert row["tap_version"]
        assert row["gap_reason"] is None
        emitted = [
            r
            for r in run.records(stream)
            if row["organization_id"] == NO_ORGANIZATION
            or str(r.get(provider_sources()[stream].partition_field)) == row["organization_id"]
        ]
        assert row["records"] == len(emitted)
    # Every range claimed complete holds only events emitted before the claim.
    assert missing_in_claims(emu, [(run.messages, [])]) == []
    # And each claim is followed by a STATE before the next record of its partition ends
    # the run: the last message is a STATE.
    assert run.messages[-1]["type"] == "STATE"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_each_claim_goes_out_before_the_state_that_covers_it(emulator, provider: str) -> None:
    """A loader that commits on STATE: at each STATE, the newest claim per partition never
    reaches past its bookmark's events, and the bookmark never runs ahead of the claim."""
    emu = emulator(providers=(provider,), seed=72, events_per_org=150)
    config = tap_config(emu, start_date=days_ago(emu, float(emu.scenario.span_days) + 1))
    stream = STREAM_OF[provider]
    run = run_tap(config, catalog=select(config, {stream, STREAM_NAME}))
    assert run.exit_code == 0
    claims: dict[str, int] = {}
    key = provider_sources()[stream].replication_key
    for message in run.messages:
        if message["type"] == "RECORD" and message["stream"] == STREAM_NAME:
            row = message["record"]
            if row["covered_to"] is not None:
                claims[row["organization_id"]] = parse_instant(row["covered_to"])
        if message["type"] != "STATE":
            continue
        stream_state = message["value"]["bookmarks"].get(stream, {})
        for partition in stream_state.get("partitions", [stream_state]):
            bookmark = partition.get("replication_key_value")
            if not bookmark or partition.get("replication_key") not in (None, key):
                continue
            context = partition.get("context") or {}
            organization = next(iter(context.values()), NO_ORGANIZATION)
            assert organization in claims, "a STATE went out before the claim it proves"
            assert claims[organization] >= parse_instant(bookmark)


def test_reading_ahead_writes_the_same_coverage_as_a_sequential_run(emulator) -> None:
    emu = emulator(seed=73, events_per_org=120, latency_s=0.005)
    config = tap_config(emu, start_date=days_ago(emu, float(emu.scenario.span_days) + 1))
    catalog = select(config, {*STREAM_OF.values(), STREAM_NAME})
    sequential = run_tap({**config, "concurrency": 1}, catalog=catalog)
    ahead = run_tap({**config, "concurrency": 8}, catalog=catalog)
    assert sequential.exit_code == ahead.exit_code == 0

    def outline(run: TapRun) -> list:
        shape: list = []
        for message in run.messages:
            if message["type"] == "RECORD" and message["stream"] == STREAM_NAME:
                row = {k: v for k, v in message["record"].items() if k not in RUN_FIELDS}
                if row["status"] == "complete" or row["stream"] == "configcat_audit_log":
                    row.pop("covered_to")  # taken from the run's start time
                shape.append(("COVERAGE", row))
            else:
                shape.append((message["type"], message.get("stream")))
        return shape

    assert outline(ahead) == outline(sequential)


# --------------------------------------------------- failures and (b) the summary


def test_failed_and_quota_stopped_partitions_are_recorded_and_shown_at_a_glance(emulator) -> None:
    refused = "socket" if "socket" in PROVIDERS else PROVIDERS[-1]
    quota = next(p for p in PROVIDERS if p != refused)
    wrong = {k: v + "x" for k, v in Emulator.credentials(refused).items()}
    emu = emulator(
        providers=(refused, quota),
        seed=74,
        events_per_org=300,
        quota={quota: QuotaRule(calls_per_window=3, window_s=3600)},
    )
    start = days_ago(emu, float(emu.scenario.span_days) + 1)
    config = tap_config(emu, start_date=start, **{refused: wrong})
    config["max_retry_wait"] = 0
    catalog_config = {**config}
    run = run_tap(catalog_config, catalog=select(config, {*STREAM_OF.values(), STREAM_NAME}))
    assert run.exit_code == EXIT_PROVIDER
    statuses = {row["status"] for row in final_rows(run).values() if row["provider"] == quota}
    assert "quota" in statuses
    failed = [row for row in final_rows(run).values() if row["provider"] == refused]
    assert failed
    assert all(row["status"] == "failed" and row["error_class"] for row in failed)
    emu.reset_quota(quota)
    cli = run_tap_cli(config)
    assert cli.exit_code == EXIT_PROVIDER
    summary = cli.stderr[cli.stderr.index("Coverage of run") :]
    assert "FAILED (ProviderError)" in summary
    assert "QUOTA (QuotaExhaustedError)" in summary
    label = next(p.label for p in all_providers() if p.key == quota)
    assert label in summary
    for secret in Emulator.credentials(refused).values():
        assert secret not in cli.stderr


def test_the_summary_ends_every_run(emulator) -> None:
    emu = emulator(seed=75, events_per_org=20)
    config = tap_config(emu, start_date=days_ago(emu, float(emu.scenario.span_days) + 1))
    run = run_tap_cli(config)
    assert run.exit_code == 0
    summary = run.stderr[run.stderr.index("Coverage of run") :].splitlines()
    lines = [line for line in summary if " -> " in line and "records" in line]
    assert len(lines) >= len(PROVIDERS)
    assert all("complete" in line for line in lines)


# ------------------------------------------------------------------- (c) retention

RETENTION_DAYS = 5.0


def aged(state: dict, instant: str) -> dict:
    """``state`` as an older run would have left it: every bookmark at ``instant``."""
    state = copy.deepcopy(state)
    for stream_state in state["bookmarks"].values():
        for partition in stream_state.get("partitions", [stream_state]):
            if partition.get("replication_key_value"):
                partition["replication_key_value"] = instant
                partition.pop("recent_ids", None)
                partition.pop("pending_pass", None)
    return state


def retention_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING
        and "retention" in r.getMessage().lower()
        and not r.getMessage().startswith("Coverage of run")  # the summary
    ]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_first_run_past_the_retention_warns_once_and_says_where_data_starts(
    emulator, caplog: pytest.LogCaptureFixture, provider: str
) -> None:
    emu = emulator(
        providers=(provider,), seed=76, events_per_org=80, span_days=20,
        **{f"{provider}_retention_days": RETENTION_DAYS},
    )  # fmt: skip
    start = days_ago(emu, 21)
    config = tap_config(emu, start_date=start, **{provider: {"retention_days": RETENTION_DAYS}})
    stream = STREAM_OF[provider]
    run = run_tap(config, catalog=select(config, {stream, STREAM_NAME}))
    assert run.exit_code == 0, "a first run gets a WARNING only"
    finals = list(final_rows(run).values())
    warnings = retention_warnings(caplog)
    assert len(warnings) == len(finals), warnings
    label = next(p.label for p in all_providers() if p.key == provider)
    for row in finals:
        assert row["status"] == "complete"
        assert row["gap_reason"] == "retention_before_first_run"
        assert parse_instant(row["gap_from"]) == parse_instant(start)
        horizon = parse_instant(row["run_started_at"]) - int(RETENTION_DAYS * 86_400 * 10**9)
        assert abs(parse_instant(row["covered_from"]) - horizon) < 60 * 10**9
        assert row["covered_from"] == row["gap_to"]
        assert any(label in w and row["organization_id"] in w for w in warnings) or (
            row["organization_id"] == NO_ORGANIZATION
        )
    assert missing_in_claims(emu, [(run.messages, [])]) == []


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("is_error", [True, False])
def test_a_resumed_run_past_the_retention_reads_what_exists_and_exits_distinctly(
    emulator, caplog: pytest.LogCaptureFixture, provider: str, is_error: bool
) -> None:
    emu = emulator(providers=(provider,), seed=77, events_per_org=80, span_days=20)
    config = tap_config(emu, start_date=days_ago(emu, 21))
    stream = STREAM_OF[provider]
    catalog = select(config, {stream, STREAM_NAME})
    first = run_tap(config, catalog=catalog)
    assert first.exit_code == 0
    # The pipeline broke for 12 days; the vendor keeps 5.
    last_read = days_ago(emu, 12)
    emu.configure(**{f"{provider}_retention_days": RETENTION_DAYS})
    config = {
        **config,
        provider: {**config[provider], "retention_days": RETENTION_DAYS},
        "retention_gap_is_error": is_error,
    }
    caplog.clear()
    run = run_tap(config, state=aged(first.final_state or {}, last_read), catalog=catalog)
    assert run.exit_code == (EXIT_RETENTION_GAP if is_error else 0)
    warnings = [w for w in retention_warnings(caplog) if "RETENTION GAP" in w]
    finals = list(final_rows(run).values())
    assert finals
    assert len(warnings) == len(finals), warnings
    label = next(p.label for p in all_providers() if p.key == provider)
    assert all(label in w and "lost" in w for w in warnings)
    for row in finals:
        assert row["status"] == "complete", "everything that still exists was read"
        assert row["gap_reason"] == "retention"
        assert parse_instant(row["gap_from"]) == parse_instant(last_read)
        assert row["covered_from"] == row["gap_to"]
    # Every event the vendor still serves was emitted.
    assert missing_in_claims(emu, [(run.messages, [])]) == []


# ---------------------------------------------- (d) the documented query, in a real loader

HOUR_NS = 3600 * 10**9


def readme_query(organization: str) -> str:
    """The documented "hours not covered" query (docs/coverage.md), for ``organization``."""
    text = (REPO / "docs" / "coverage.md").read_text()
    block = text.split("<!-- coverage-query:start -->")[1].split("<!-- coverage-query:end -->")[0]
    sql = block.split("```sql")[1].split("```")[0]
    assert "organization_id = 'X'" in sql
    return sql.replace("organization_id = 'X'", f"organization_id = '{organization}'")


def load_into_duckdb(run: TapRun, workdir: Path, database: Path) -> None:
    """Pipe one run's messages into target-duckdb (the loader the project venv holds)."""
    config = workdir / "target.json"
    config.write_text(json.dumps({"path": str(database), "default_target_schema": "auditlogs"}))
    lines = "".join(json.dumps(message) + "\n" for message in run.messages)
    done = subprocess.run(
        [str(Path(sys.executable).parent / "target-duckdb"), "--config", str(config)],
        input=lines,
        capture_output=True,
        text=True,
        cwd=workdir,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]


def uncovered_hours(rows: list[dict], now_ns: int) -> list[int]:
    """What the query answers, computed here from the rows (hour starts, ns)."""
    spans = sorted(
        (parse_instant(r["covered_from"]), parse_instant(r["covered_to"]))
        for r in rows
        if r["covered_from"] is not None
    )
    merged: list[list[int]] = []
    for low, high in spans:
        if merged and low <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], high)
        else:
            merged.append([low, high])
    first = (now_ns - 90 * 86_400 * 10**9) // HOUR_NS * HOUR_NS
    last = now_ns // HOUR_NS * HOUR_NS - HOUR_NS
    return [
        hour
        for hour in range(first, last + 1, HOUR_NS)
        if not any(low <= hour and high >= hour + HOUR_NS for low, high in merged)
    ]


def outage_sequence(emulator: t.Callable[..., Emulator]) -> tuple[Emulator, TapRun, TapRun]:
    """Run 1 happens "20 days ago" (the API's clock is that far behind: the tap's run start
    follows it); the pipeline then breaks; run 2, today, finds 10 of those days gone (the
    vendor keeps 10) and exits with the retention gap's code."""
    provider = next(p for p in PROVIDERS if provider_sources()[STREAM_OF[p]].organizations_setting)
    emu = emulator(
        providers=(provider,), seed=78, events_per_org=200, span_days=24,
        **{f"{provider}_clock_skew_s": -20 * 86_400},
    )  # fmt: skip
    config = tap_config(emu, start_date=days_ago(emu, 25))
    catalog = select(config, {STREAM_OF[provider], STREAM_NAME})
    first = run_tap(config, catalog=catalog)
    assert first.exit_code == 0
    emu.configure(**{f"{provider}_clock_skew_s": 0, f"{provider}_retention_days": 10})
    config = {**config, provider: {**config[provider], "retention_days": 10}}
    second = run_tap(config, state=first.final_state, catalog=catalog)
    assert second.exit_code == EXIT_RETENTION_GAP
    return emu, first, second


def test_the_documented_query_finds_the_hours_an_outage_past_the_retention_lost(
    emulator, tmp_path: Path
) -> None:
    """Run 1 happens "20 days ago" (the API's clock is that far behind: the tap's run start
    follows it); the pipeline then breaks; run 2, today, finds 10 of those days gone (the
    vendor keeps 10). The hours of the outage the vendor dropped are what the query reports."""
    day = 86_400
    emu, first, second = outage_sequence(emulator)
    database = tmp_path / "warehouse.duckdb"
    load_into_duckdb(first, tmp_path, database)
    load_into_duckdb(second, tmp_path, database)

    organization = next(iter(final_rows(second).values()))["organization_id"]
    with duckdb.connect(str(database), read_only=True) as db:
        columns = "run_id, CAST(covered_from AS VARCHAR), CAST(covered_to AS VARCHAR)"
        rows = [
            {"run_id": run_id, "covered_from": low, "covered_to": high}
            for run_id, low, high in db.execute(
                f"SELECT {columns} FROM auditlogs.sync_coverage WHERE organization_id = ?",
                [organization],
            ).fetchall()
        ]
        now_ns = now_instant()
        query = readme_query(organization).strip().rstrip(";")
        found = [
            int(seconds) * 10**9
            for (seconds,) in db.execute(
                f"SELECT epoch(hour_not_covered) FROM ({query}) AS answer ORDER BY 1"
            ).fetchall()
        ]
    assert len(rows) == 2, "one row per run after the loader's upsert"
    for row in rows:
        for name in ("covered_from", "covered_to"):
            row[name] = format_instant(parse_instant(row[name], allow_naive=True))
    expected = uncovered_hours(rows, now_ns)
    assert found == expected
    # The outage: run 1 proved up to ~20 days ago, run 2 from ~10 days ago (the retention).
    outage_low, outage_high = now_ns - 20 * day * 10**9, now_ns - 10 * day * 10**9
    inside = [h for h in found if outage_low + HOUR_NS <= h <= outage_high - 2 * HOUR_NS]
    assert len(inside) >= 10 * 24 - 4
    # Before start_date nothing was asked for; after the outage every hour is covered.
    start = parse_instant(days_ago(emu, 25))
    assert all(h < outage_high + HOUR_NS for h in found if h > start + HOUR_NS)
    assert not [h for h in found if start + HOUR_NS < h < outage_low - HOUR_NS]


def sql_text(value: str | None) -> str:
    return "NULL" if value is None else f"'{value}'"


@pytest.mark.slow
def test_the_documented_query_runs_on_postgresql_too(emulator, postgres: int) -> None:
    """The same documented query on PostgreSQL, over the rows of the same outage sequence."""
    _, first, second = outage_sequence(emulator)
    rows = list(final_rows(first).values()) + list(final_rows(second).values())
    organization = rows[-1]["organization_id"]
    rows = [row for row in rows if row["organization_id"] == organization]
    values = ", ".join(
        f"('{row['organization_id']}', "
        + ", ".join(
            "NULL" if row[k] is None else f"'{row[k]}'" for k in ("covered_from", "covered_to")
        )
        + ")"
        for row in rows
    )
    schema = f"auditlogs_{uuid.uuid4().hex[:8]}"
    query = readme_query(organization).strip().rstrip(";").replace("auditlogs.", f"{schema}.")
    answer = psql(
        postgres,
        f"CREATE SCHEMA {schema}; CREATE TABLE {schema}.sync_coverage (organization_id text, "
        f"covered_from timestamptz, covered_to timestamptz); "
        f"INSERT INTO {schema}.sync_coverage VALUES {values}; "
        "SELECT CAST(extract(epoch FROM hour_not_covered) AS bigint) "
        f"FROM ({query}) AS answer ORDER BY 1",
    )
    now_ns = now_instant()
    # psql prints the command tags of the statements before the SELECT's rows.
    found = [int(row[0]) * 10**9 for row in answer if row[0].isdigit()]
    assert found == uncovered_hours(rows, now_ns)
    assert len(found) > 10 * 24
