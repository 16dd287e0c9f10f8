"""``audit_events``, the unified stream, over HTTP against the emulator: each provider's
mapping, one pass feeding both tables, state and kills, DuckDB, enum coverage, OCSF."""

from __future__ import annotations

import json
import random
import typing as t
from collections import Counter
from datetime import datetime, timedelta, timezone

import jsonschema
import pytest

from tap_auditlogs.core.instants import parse_instant
from tap_auditlogs.output.ocsf import OCSF_VERSION, OTHER_ACTIVITY
from tap_auditlogs.output.unified import (
    ACTOR_TYPES,
    CATEGORIES,
    OPERATIONS,
    OTHER,
    UNKNOWN_ORGANIZATION,
)
from tap_auditlogs.providers import all_providers
from tap_auditlogs.tap import TapAuditLogs
from tests.conftest import REPO, run_tap, run_tap_cli, tap_config
from tests.emulator import Emulator
from tests.unified_cases import SCHEMA, STREAM, select

if t.TYPE_CHECKING:
    from tests.conftest import TapRun

PROVIDERS = {p.key: p for p in all_providers()}
PROVIDER_STREAMS = {key: p.source_class.name for key, p in PROVIDERS.items()}


# ---------------------------------------------------------------------------- helpers


def covering_start(emu: Emulator) -> str:
    """A start_date older than every generated event (so every event is read)."""
    return (emu.scenario.now - timedelta(days=emu.scenario.span_days + 1)).isoformat()


def pairs(records: t.Iterable[dict]) -> set[tuple[str, str]]:
    """(provider, event_id) of unified records."""
    return {(r["provider"], r["event_id"]) for r in records}


def truth_pairs(emu: Emulator) -> set[tuple[str, str]]:
    """(provider, id) of every event the emulator holds."""
    return {(p, e.id) for p in emu.providers for e in emu.truth(p)}


def provider_messages(run: TapRun, kind: str) -> list[dict]:
    """Messages of type ``kind`` for the provider streams."""
    names = set(PROVIDER_STREAMS.values())
    return [m for m in run.messages if m["type"] == kind and m.get("stream") in names]


# ------------------------------------------------------------- each provider's mapping


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
def test_each_provider_tests_its_own_mapping(provider: str) -> None:
    """Each provider's test file holds its known events and documented types and checks
    them with tests/unified_cases.py: a new provider brings its own."""
    module = PROVIDERS[provider].source_class.__module__.split(".")[2]
    text = (REPO / "tests" / f"test_{module}.py").read_text()
    assert "check_known_events(" in text, f"tests/test_{module}.py"
    assert "check_documented_types(" in text or "check_documented_enum(" in text, module


def test_organization_names_come_from_the_records_or_discovery(emulator) -> None:
    emu = emulator(seed=62, events_per_org=5)
    config = tap_config(emu)
    run = run_tap(config, catalog=select(config, {STREAM}))
    names = {
        (r["provider"], r["organization_id"]): r["organization_name"] for r in run.records(STREAM)
    }
    configcat = emu.provider("configcat")
    for org in configcat.orgs:
        assert names[("configcat", org)] == configcat.org_names[org], "from GET /v1/organizations"
    assert all(names[key] for key in names if key[0] in ("socket", "torq"))
    assert names[("nirvana", UNKNOWN_ORGANIZATION)] is None


# ------------------------------------------------------------- one pass feeds both tables


def test_one_pass_feeds_both_tables_with_no_extra_api_call(emulator) -> None:
    now = datetime.now(timezone.utc)
    runs: dict[str, tuple[Emulator, TapRun]] = {}
    everything = {*PROVIDER_STREAMS.values(), STREAM}
    for name, streams in {
        "providers": set(PROVIDER_STREAMS.values()),
        "both": everything,
        "unified": {STREAM},
    }.items():
        emu = emulator(seed=63, now=now, events_per_org=160)
        config = tap_config(emu, start_date=covering_start(emu))
        runs[name] = (emu, run_tap(config, catalog=select(config, streams)))
        assert runs[name][1].exit_code == 0

    calls = {name: Counter(r.provider for r in emu.requests()) for name, (emu, _) in runs.items()}
    assert calls["providers"] == calls["both"] == calls["unified"], calls
    assert sum(calls["both"].values()) > 4 * 2, "several pages per provider"

    providers, both, unified = (run for _, run in runs.values())
    provider_records = provider_messages(both, "RECORD")
    assert [m["record"] for m in provider_messages(providers, "RECORD")] == [
        m["record"] for m in provider_records
    ]
    assert providers.records(STREAM) == []
    assert len(both.records(STREAM)) == len(provider_records), "one unified record per event"
    expected = {
        (key, str(m["record"][PROVIDERS[key].source_class.primary_keys[-1]]))
        for m in provider_records
        for key, stream in PROVIDER_STREAMS.items()
        if m["stream"] == stream
    }
    assert pairs(both.records(STREAM)) == expected == truth_pairs(runs["both"][0])
    keys = Counter(
        (r["provider"], r["organization_id"], r["event_id"]) for r in both.records(STREAM)
    )
    assert max(keys.values()) == 1, "the primary key is unique"

    # Only audit_events: the provider streams run, but write no SCHEMA and no RECORD.
    assert provider_messages(unified, "RECORD") == []
    assert provider_messages(unified, "SCHEMA") == []
    schemas = [m for m in unified.messages if m["type"] == "SCHEMA"]
    assert [m["stream"] for m in schemas] == [STREAM], "its SCHEMA once"
    assert unified.messages.index(schemas[0]) < min(
        i for i, m in enumerate(unified.messages) if m["type"] == "RECORD"
    )
    assert pairs(unified.records(STREAM)) == pairs(both.records(STREAM))
    bookmarks = unified.final_state["bookmarks"]
    assert set(bookmarks) == set(PROVIDER_STREAMS.values()), "audit_events keeps no bookmark"


def test_unified_records_match_the_schema_and_keep_every_digit(emulator) -> None:
    emu = emulator(seed=64, events_per_org=60)
    config = tap_config(emu, start_date=covering_start(emu))
    run = run_tap(config, catalog=select(config, {STREAM}))
    validator = jsonschema.Draft7Validator(SCHEMA, format_checker=jsonschema.FormatChecker())
    records = run.records(STREAM)
    for record in records:
        validator.validate(record)
        assert set(record) <= set(SCHEMA["properties"])
        assert record["category"] in CATEGORIES
        assert record["operation"] in OPERATIONS
        assert record["actor_type"] in ACTOR_TYPES
        assert record["occurred_at"].endswith("Z")
    torq = [r for r in records if r["provider"] == "torq"]
    nanos = [r for r in torq if len(r["raw"]["timestamp"]) == 30]
    assert nanos, "the emulator serves some nine-digit Torq timestamps"
    assert all(r["occurred_at"] == r["raw"]["timestamp"] for r in torq), "as sent, every digit"


def test_second_run_emits_only_new_events(emulator) -> None:
    emu = emulator(seed=65, events_per_org=40)
    config = tap_config(emu, start_date=covering_start(emu))
    catalog = select(config, {STREAM})
    first = run_tap(config, catalog=catalog)
    second = run_tap(config, state=first.final_state, catalog=catalog)
    assert second.records() == []
    fresh = emu.add_events("socket", emu.provider("socket").orgs[0], 3)
    fresh += emu.add_events("nirvana", emu.provider("nirvana").orgs[0], 2)
    third = run_tap(config, state=second.final_state, catalog=catalog)
    assert pairs(third.records()) == {("socket", e.id) for e in fresh[:3]} | {
        ("nirvana", e.id) for e in fresh[3:]
    }


def test_a_unified_record_precedes_the_state_that_covers_it(emulator) -> None:
    """Torq's ascending reads checkpoint page by page: each STATE covers what came before."""
    emu = emulator(providers=("torq",), seed=66, events_per_org=1300)
    config = tap_config(emu, start_date=covering_start(emu))
    run = run_tap(config, catalog=select(config, {STREAM}))
    stamps = {e.id: parse_instant(e.ts) for e in emu.truth("torq")}
    written: set[str] = set()
    checked = 0
    for message in run.messages:
        if message["type"] == "RECORD":
            written.add(message["record"]["event_id"])
        elif message["type"] == "STATE":
            bookmark = message["value"]["bookmarks"].get("torq_audit_log", {})
            if "replication_key_value" not in bookmark:
                continue
            covered = parse_instant(bookmark["replication_key_value"])
            assert {i for i, ts in stamps.items() if ts < covered} <= written
            checked += 1
    assert checked >= 3, "several page checkpoints"
    assert written == set(stamps)


@pytest.mark.parametrize("seed", [1, 2])
def test_killed_runs_with_only_audit_events_lose_no_event(emulator, tmp_path, seed: int) -> None:
    rng = random.Random(seed)
    emu = emulator(seed=300 + seed, events_per_org=150)
    config = tap_config(emu, start_date=covering_start(emu))
    catalog_path = tmp_path / "catalog.json"
    catalog_path.write_text(json.dumps(select(config, {STREAM})))
    args = ["--catalog", str(catalog_path)]
    state: dict | None = None
    seen: set[tuple[str, str]] = set()
    kills = 0
    for _ in range(8):
        if rng.random() < 0.5:
            provider = rng.choice(emu.providers)
            emu.add_events(provider, rng.choice(emu.provider(provider).orgs), rng.randint(1, 20))
        run = run_tap_cli(config, state, kill_after_records=rng.randint(1, 500), args=args)
        assert provider_messages(run, "RECORD") == []
        seen |= pairs(run.records(STREAM))
        state = run.final_state or state
        if run.exit_code == 0:
            break
        kills += 1
    final = run_tap_cli(config, state, args=args)
    assert final.exit_code == 0, final.stderr
    seen |= pairs(final.records(STREAM))
    assert kills >= 1, "at least one run was killed"
    assert truth_pairs(emu) - seen == set()


# ------------------------------------------------------------------ taxonomy coverage


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
def test_tables_use_the_taxonomy_and_unknown_types_are_other(provider: str) -> None:
    mapping = PROVIDERS[provider].unified
    assert mapping is not None
    for name, (category, operation, target_type, _) in mapping.event_types.items():
        assert category in CATEGORIES, name
        assert operation in OPERATIONS, name
        assert target_type is None or target_type.islower(), name
        assert mapping.classify(name) == (category, operation, target_type)
    assert mapping.classify("definitelyNotAnEventType") == OTHER
    assert mapping.classify("") == OTHER
    assert mapping.classify(None) == OTHER


# ------------------------------------------------------------------ discovery, maps, OCSF


def test_discovery_lists_audit_events_after_the_providers_opt_in(emulator) -> None:
    emu = emulator(providers=("nirvana",), seed=67, events_per_org=5)
    catalog = TapAuditLogs(config=tap_config(emu)).catalog_dict
    entries = {e["tap_stream_id"]: e for e in catalog["streams"]}
    assert list(entries) == ["nirvana_audit_log", STREAM, "sync_coverage"]
    root = next(m["metadata"] for m in entries[STREAM]["metadata"] if m["breadcrumb"] == [])
    assert root["selected-by-default"] is False
    assert list(root["table-key-properties"]) == ["provider", "organization_id", "event_id"]
    assert list(root["valid-replication-keys"]) == ["occurred_at"]
    # Without a catalog, only the provider tables are written (audit_events is opt-in).
    run = run_tap(tap_config(emu))
    assert {m["stream"] for m in run.messages if m["type"] in ("SCHEMA", "RECORD")} == {
        "nirvana_audit_log"
    }


def test_stream_maps_and_field_selection_apply(emulator) -> None:
    emu = emulator(providers=("socket",), seed=68, socket_orgs=("acme",), events_per_org=20)
    plain = tap_config(emu)
    # The catalog first: the SDK refuses stream maps of a stream its catalog deselects
    # (as audit_events is by default), for any stream.
    catalog = select(plain, {STREAM})
    config = {**plain, "stream_maps": {STREAM: {"raw": "__NULL__", "who": "actor_email"}}}
    entry = next(e for e in catalog["streams"] if e["tap_stream_id"] == STREAM)
    for metadata in entry["metadata"]:
        if metadata["breadcrumb"] == ["properties", "user_agent"]:
            metadata["metadata"]["selected"] = False
    run = run_tap(config, catalog=catalog)
    records = run.records(STREAM)
    assert len(records) == 20
    assert all("raw" not in r and "user_agent" not in r for r in records)
    assert all(r["who"] == r["actor_email"] for r in records)
    schema = next(m for m in run.messages if m["type"] == "SCHEMA")["schema"]
    assert "raw" not in schema["properties"]
    assert "who" in schema["properties"]


def test_ocsf_in_the_class_of_its_event_type_when_asked(emulator) -> None:
    emu = emulator(seed=69, events_per_org=30)
    config = tap_config(emu, start_date=covering_start(emu))
    plain = run_tap(config, catalog=select(config, {STREAM}))
    assert all("ocsf" not in r for r in plain.records(STREAM))
    config["unified_ocsf"] = True
    run = run_tap(config, catalog=select(config, {STREAM}))
    records = run.records(STREAM)
    assert len(records) == len(plain.records(STREAM))
    classes = Counter()
    for record in records:
        ocsf = record["ocsf"]
        declared = PROVIDERS[record["provider"]].unified.ocsf_class(record["action"])
        activity_id = declared.activities.get(record["operation"], OTHER_ACTIVITY)[0]
        assert (ocsf["class_uid"], ocsf["category_uid"]) == (declared.uid, 3)
        classes[declared.uid] += 1
        assert ocsf["activity_id"] == activity_id
        assert ocsf["type_uid"] == declared.uid * 100 + activity_id
        assert ocsf["metadata"]["version"] == OCSF_VERSION
        assert ocsf["metadata"]["uid"] == record["event_id"]
        assert ocsf["metadata"]["original_time"] == record["occurred_at"]
        assert ocsf["metadata"]["event_code"] == record["action"]
        assert ocsf["time"] == parse_instant(record["occurred_at"]) // 1_000_000
        assert ocsf["severity_id"] == 1
        assert ocsf["status_id"] in (0, 1, 2)
        if record["actor_id"]:
            assert ocsf["actor"]["user"]["uid"] == record["actor_id"]
        if record["source_ip"]:
            assert ocsf["src_endpoint"]["ip"] == record["source_ip"]
        else:
            assert "src_endpoint" not in ocsf, "an optional object is left out, not empty"
        subject = ocsf.get("entity") or ocsf["user"]
        if record["target_id"] and declared.subject == "target":
            assert subject["uid"] == record["target_id"]
        assert ocsf["unmapped"]["category"] == record["category"]
    # Logins, accounts, access grants and the vendors' objects each have their class.
    assert set(classes) == {3001, 3002, 3004, 3005}, classes
