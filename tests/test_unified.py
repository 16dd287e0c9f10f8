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

from tap_auditlogs.instants import parse_instant
from tap_auditlogs.providers import all_providers
from tap_auditlogs.tap import TapAuditLogs
from tap_auditlogs.unified import (
    ACTOR_TYPES,
    CATEGORIES,
    OCSF_ACTIVITIES,
    OCSF_VERSION,
    OPERATIONS,
    OTHER,
    UNKNOWN_ORGANIZATION,
)
from tests.conftest import REPO, run_tap, run_tap_cli, tap_config

if t.TYPE_CHECKING:
    from tests.conftest import TapRun
    from tests.emulator.socketdev import EVENT_TYPES as SOCKET_EVENT_TYPES
from tests.emulator import Emulator
from tests.emulator.socketdev import EVENT_TYPES as SOCKET_EVENT_TYPES

STREAM = "audit_events"
PROVIDERS = {p.key: p for p in all_providers()}
PROVIDER_STREAMS = {key: p.stream_class.name for key, p in PROVIDERS.items()}
SCHEMA = json.loads((REPO / "tap_auditlogs" / "schemas" / "audit_events.json").read_text())
#: The providers' published schemas, beside the clone (CI and the shared workspace).
SPECS = REPO.parent / "shared" / "specs"

# ---- documented event types (copies, so coverage is checked without ../shared) ---------
# Socket: openapi.json `type` enum of getAuditLogEvents (SocketDev/socket-sdk-js, 2026-08).
# ConfigCat: `AuditLogType` enum (configcat-publicapi-java-client api/openapi.yaml, 2026-08).
SOCKET_TYPES: tuple[str, ...] = SOCKET_EVENT_TYPES  # the emulator keeps the copy

CONFIGCAT_TYPES: tuple[str, ...] = (
    "productCreated", "productChanged", "productDeleted", "productsReordered",
    "productPreferencesUpdated", "teamMemberInvited", "teamMemberInvitationRevoked",
    "teamMemberJoined", "teamMemberPermissionGroupChanged", "teamMemberRemoved", "teamMemberLeft",
    "teamMemberInvitationChanged", "teamMemberInvitationResent", "teamMemberInvitationRejected",
    "teamMemberAddedToProduct", "configCreated", "configChanged", "configDeleted",
    "configsReordered", "environmentCreated", "environmentChanged", "environmentDeleted",
    "environmentsReordered", "settingCreated", "settingChanged", "settingDeleted",
    "settingsReordered", "predefinedVariationsChanged", "settingConvertedToPredefinedVariations",
    "settingConvertedToFreeFormValues", "settingValueChanged", "webHookCreated", "webHookChanged",
    "webHookDeleted", "permissionGroupCreated", "permissionGroupChanged",
    "permissionGroupDeleted", "permissionGroupDefault", "apiKeyAdded", "apiKeyRemoved",
    "integrationAdded", "integrationChanged", "integrationRemoved", "apiKeyConnected",
    "integrationLinkAdded", "integrationLinkRemoved", "organizationAdded", "organizationChanged",
    "organizationSubscriptionTypeChanged", "organizationAdminChanged", "organizationAdminLeft",
    "twoFactorDisabledForMember", "tagAdded", "tagChanged", "tagRemoved", "settingTagAdded",
    "settingTagRemoved", "publicApiAccessTokenAdded", "publicApiAccessTokenRemoved",
    "domainAdded", "domainVerified", "domainRemoved", "autoProvisioningConfigurationChanged",
    "samlIdpConfigurationAdded", "samlIdpConfigurationRemoved", "samlIdpConfigurationUpdated",
    "autoProvisioningEnabledChanged", "organizationMemberJoined",
    "organizationMemberProductJoinRequested", "organizationMemberProductJoinRequestRejected",
    "organizationMemberProductJoinRequestApproved", "organizationMemberRemoved",
    "codeReferencesUploaded", "codeReferenceDeleted", "codeReferenceStaleBranchDeleted",
    "segmentCreated", "segmentChanged", "segmentDeleted", "webhookSigningKeyDeleted",
    "webhookSigningKeyCreated", "userProvisioningConfigurationChanged",
    "syncGroupProvisioningRuleChanged", "syncGroupsReordered", "syncUserProvisioningEnabled",
    "syncUserProvisioningDisabled", "userEmailChanged", "userFullNameChanged", "userDisabled",
    "awsConnected", "awsDisconnected", "userEnabled", "syncUserDeleted", "syncGroupDeleted",
    "proxyConfigurationCreated", "proxyConfigurationChanged", "proxyConfigurationDeleted",
    "proxyConfigurationSecretRegenerated", "proxyNotificationSettingsUpdated",
    "proxyNotificationSettingsDeleted", "proxyNotificationSigningKeyAdded",
    "proxyNotificationSigningKeyDeleted", "changeRequestCreated", "changeRequestUpdated",
    "changeRequestSettingValuesUpdated", "changeRequestSettingValueRebased",
    "changeRequestApproved", "changeRequestApprovalDismissed", "changeRequestApplied",
    "changeRequestAppliedOnSchedule", "changeRequestClosed", "changeRequestNeedsAttention",
    "changeRequestCommentAdded", "changeRequestCommentEdited", "changeRequestCommentDeleted",
    "changeRequestSettingDeleted", "changeRequestNeedsAttentionFixed",
    "changeRequestOwnershipClaimed"
)  # fmt: skip

# Torq: the event list of developers.torq.io/apidocs/resources-audit-logs (the stored copy
# ends here). Nirvana Labs: the one action its docs name (`resource.verb` grammar).
TORQ_ACTIONS: tuple[str, ...] = (
    "User invited", "User accepted invitation", "User role updated", "User deleted",
    "User logged in", "User logged out", "User switched accounts", "Workflow created",
    "Workflow deleted", "Workflow updated", "Workflow published", "Workflow unpublished",
    "Workflow edited", "Workflow reverted", "Workflow enabled", "Workflow disabled",
    "Workspace variable created", "Workspace variable updated", "Workspace variable deleted",
    "Email address added", "Email address removed", "Webhook added", "Webhook removed",
    "Webhook authentication headers added", "Webhook authentication headers removed",
    "Webhook authentication headers updated", "API key enabled", "API key deleted",
    "Secret created", "Secret deleted", "Secret updated", "Integration created",
    "Integration deleted", "Integration updated", "Custom step created", "Custom step deleted",
    "Runner created", "Runner deleted", "IdP connection created", "IdP connection updated",
)  # fmt: skip
NIRVANA_ACTIONS: tuple[str, ...] = ("vm.created",)

DOCUMENTED = {
    "socket": SOCKET_TYPES,
    "configcat": CONFIGCAT_TYPES,
    "torq": TORQ_ACTIONS,
    "nirvana": NIRVANA_ACTIONS,
}


# ---------------------------------------------------------------------------- helpers


def select(config: dict, streams: t.Collection[str]) -> dict:
    """The discovered catalog with exactly ``streams`` selected."""
    catalog = TapAuditLogs(config=config).catalog_dict
    for entry in catalog["streams"]:
        for metadata in entry["metadata"]:
            if metadata["breadcrumb"] == []:
                metadata["metadata"]["selected"] = entry["tap_stream_id"] in streams
    return catalog


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

#: provider -> [(what the event is patched with, what its unified record must hold)].
#: The generic checks (provider, event_id, occurred_at, organization, raw) run on every one.
CASES: dict[str, list[tuple[dict, dict]]] = {
    "socket": [
        (
            {
                "type": "createApiToken",
                "user_id": "u-17",
                "user_email": "ada@acme.example",
                "ip_address": "203.0.113.7",
                "country_code": "DE",
                "user_agent": "curl/8.5",
                "status_code": 200,
            },
            {
                "action": "createApiToken",
                "category": "credential",
                "operation": "create",
                "target_type": "api_token",
                "actor_id": "u-17",
                "actor_email": "ada@acme.example",
                "actor_name": None,
                "actor_type": "user",
                "source_ip": "203.0.113.7",
                "country_code": "DE",
                "user_agent": "curl/8.5",
                "status_code": 200,
            },
        ),
        (  # Socket spells SSO types oddly in responses; "" is null
            {"type": "sSOLoginCompleted", "ip_address": "", "country_code": None},
            {"category": "authentication", "operation": "login", "source_ip": None},
        ),
        (
            {"type": "userSignedOut", "user_id": None, "user_email": ""},
            {"operation": "logout", "actor_type": "unknown", "actor_email": None},
        ),
        (  # organization_id is nullable: the org slug names the organization then
            {"type": "revokeApiToken", "organization_id": None},
            {"category": "credential", "operation": "delete"},
        ),
        (
            {"type": "teleportRepository"},
            {"category": "other", "operation": "other", "target_type": None},
        ),
    ],
    "configcat": [
        (
            {
                "auditLogTypeEnum": "settingValueChanged",
                "auditLogType": "Setting value changed",
                "userEmail": "ada@acme.example",
                "userName": "Ada Lovelace",
                "actionTarget": "isAwesomeFeatureEnabled",
            },
            {
                "action": "settingValueChanged",
                "category": "configuration",
                "operation": "update",
                "target_type": "feature_flag",
                "target_name": "isAwesomeFeatureEnabled",
                "actor_email": "ada@acme.example",
                "actor_name": "Ada Lovelace",
                "actor_id": None,
                "actor_type": "user",
                "source_ip": None,
                "status_code": None,
            },
        ),
        (  # an older item with the label only
            {"auditLogTypeEnum": None, "auditLogType": "Public API access token added"},
            {"action": "Public API access token added", "category": "credential"},
        ),
        (
            {"auditLogTypeEnum": "teamMemberInvited", "userEmail": None, "userName": ""},
            {"category": "membership", "operation": "create", "actor_type": "unknown"},
        ),
        (  # dropped from the 2026 enum
            {"auditLogTypeEnum": "productOwnershipTransferred"},
            {"category": "other", "operation": "other"},
        ),
    ],
    "torq": [
        (
            {
                "action": "Workflow edited",
                "actor_type": "web_app",
                "email": "ada@acme.example",
                "actor_name": "Ada Lovelace",
                "resource_id": "wf-1",
                "resource_name": "Phishing triage",
                "ip": "198.51.100.1",
                "user_agent": "Mozilla/5.0",
            },
            {
                "action": "Workflow edited",
                "category": "resource",
                "operation": "update",
                "target_type": "workflow",
                "target_id": "wf-1",
                "target_name": "Phishing triage",
                "actor_email": "ada@acme.example",
                "actor_name": "Ada Lovelace",
                "actor_type": "user",
                "source_ip": "198.51.100.1",
                "user_agent": "Mozilla/5.0",
            },
        ),
        (
            {"action": "API key deleted", "actor_type": "api_key", "email": ""},
            {"category": "credential", "operation": "delete", "actor_type": "api_key"},
        ),
        (
            {"action": "User logged in", "actor_type": "slack"},
            {"category": "authentication", "operation": "login", "actor_type": "user"},
        ),
        (  # an action Torq does not document
            {"action": "create_workflow"},
            {"category": "other", "operation": "other", "target_type": None},
        ),
    ],
    "nirvana": [
        (
            {
                "action": "vm.created",
                "actor": {"id": "u-1", "name": "Ada Lovelace", "type": "user"},
                "target": {"id": "vm-1", "type": "vm"},
                "client_ip": "198.51.100.9",
                "status_code": 201,
                "user_agent": "nirvana-go/1.52.0",
            },
            {
                "action": "vm.created",
                "category": "resource",
                "operation": "create",
                "target_type": "vm",
                "target_id": "vm-1",
                "actor_id": "u-1",
                "actor_name": "Ada Lovelace",
                "actor_type": "user",
                "source_ip": "198.51.100.9",
                "status_code": 201,
                "user_agent": "nirvana-go/1.52.0",
                "organization_id": UNKNOWN_ORGANIZATION,
            },
        ),
        (  # no target: its type comes from the action's grammar
            {
                "action": "api_key.deleted",
                "actor": {"id": "k-1", "name": None, "type": "api_key"},
                "target": None,
            },
            {
                "category": "credential",
                "operation": "delete",
                "target_type": "api_key",
                "target_id": None,
                "actor_type": "api_key",
                "actor_name": None,
            },
        ),
        (
            {"action": "organization.updated"},
            {"category": "configuration", "operation": "update"},
        ),
        ({"action": "vm.teleported"}, {"category": "resource", "operation": "other"}),
        ({"action": "quota exceeded"}, {"category": "other", "operation": "other"}),
    ],
}

#: The organization each provider's unified record names, from the served item.
ORGANIZATION = {
    "socket": lambda ev: ev.item["organization_id"] or ev.org,
    "configcat": lambda ev: ev.org,
    "torq": lambda ev: ev.item["account_id"],
    "nirvana": lambda ev: UNKNOWN_ORGANIZATION,
}


@pytest.mark.parametrize("provider", sorted(CASES))
def test_known_events_map_to_the_expected_unified_record(emulator, provider: str) -> None:
    emu = emulator(providers=(provider,), seed=61, events_per_org=5)
    org = emu.provider(provider).orgs[0]
    added = emu.add_events(provider, org, len(CASES[provider]))
    for event, (patch, _) in zip(added, CASES[provider], strict=True):
        event.item.update(patch)  # served from here on
    config = tap_config(emu)
    run = run_tap(config, catalog=select(config, {STREAM}))
    assert run.exit_code == 0
    assert provider_messages(run, "RECORD") == []
    unified = {r["event_id"]: r for r in run.records(STREAM)}
    for event, (_, expected) in zip(added, CASES[provider], strict=True):
        row = unified[event.id]
        assert row["provider"] == provider
        assert row["occurred_at"] == event.ts.replace("+00:00", "Z")
        assert row["raw"] == event.item, "raw is the record exactly as served"
        assert row["organization_id"] == expected.get(
            "organization_id", ORGANIZATION[provider](event)
        )
        assert {key: row[key] for key in expected} == expected, expected
        assert set(row) == set(SCHEMA["properties"]) - {"ocsf"}


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
        (key, str(m["record"][PROVIDERS[key].stream_class.primary_keys[-1]]))
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


@pytest.mark.parametrize("provider", sorted(DOCUMENTED))
def test_every_documented_event_type_is_mapped(provider: str) -> None:
    mapping = PROVIDERS[provider].unified
    assert mapping is not None
    missing = [name for name in DOCUMENTED[provider] if not mapping.is_mapped(name)]
    assert missing == [], f"{provider}: no mapping for {missing}"
    if provider == "socket":  # responses spell the types lowerCamel
        assert all(mapping.is_mapped(name[:1].lower() + name[1:]) for name in SOCKET_TYPES)


def _enums(spec: object, found: list[list[str]]) -> list[list[str]]:
    """Every ``enum`` list in a JSON document."""
    if isinstance(spec, dict):
        for key, value in spec.items():
            if key == "enum" and isinstance(value, list):
                found.append(value)
            else:
                _enums(value, found)
    elif isinstance(spec, list):
        for value in spec:
            _enums(value, found)
    return found


@pytest.mark.parametrize(
    ("provider", "spec_file"), [("socket", "socket.json"), ("configcat", "configcat.json")]
)
def test_published_enums_are_mapped_and_copied(provider: str, spec_file: str) -> None:
    path = SPECS / spec_file
    if not path.is_file():
        pytest.skip(
            f"{path} is missing (../shared/specs beside the clone); "
            "the copies in this file are checked instead"
        )
    spec = json.loads(path.read_text())
    if provider == "socket":
        parameter = next(p for p in spec["audit_log_parameters"] if p["name"] == "type")
        enums = [parameter["schema"]["enum"]]
    else:
        enums = [values for values in _enums(spec, []) if "settingValueChanged" in values]
    assert enums, f"no event-type enum found in {path}"
    mapping = PROVIDERS[provider].unified
    assert mapping is not None
    for values in enums:
        missing = [name for name in values if not mapping.is_mapped(name)]
        assert missing == [], f"{provider}: {path.name} has types without a mapping: {missing}"
        assert set(values) == set(DOCUMENTED[provider]), "refresh the copy in this file"


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
def test_tables_use_the_taxonomy_and_unknown_types_are_other(provider: str) -> None:
    mapping = PROVIDERS[provider].unified
    assert mapping is not None
    for name, (category, operation, target_type) in mapping.event_types.items():
        assert category in CATEGORIES, name
        assert operation in OPERATIONS, name
        assert target_type is None or target_type.islower(), name
        assert mapping.classify(name) == (category, operation, target_type)
    assert mapping.classify("definitelyNotAnEventType") == OTHER
    assert mapping.classify("") == OTHER
    assert mapping.classify(None) == OTHER


def test_nirvana_reads_the_resource_verb_grammar() -> None:
    mapping = PROVIDERS["nirvana"].unified
    assert mapping is not None
    assert mapping.classify("volume.deleted") == ("resource", "delete", "volume")
    assert mapping.classify("api_key.created") == ("credential", "create", "api_key")
    assert mapping.classify("vm.restarted") == ("resource", "execute", "vm")
    assert mapping.classify("gadget.created") == ("other", "create", "gadget")
    assert mapping.classify("nodots") == OTHER


# ------------------------------------------------------------------ discovery, maps, OCSF


def test_discovery_lists_audit_events_after_the_providers_opt_in(emulator) -> None:
    emu = emulator(providers=("nirvana",), seed=67, events_per_org=5)
    catalog = TapAuditLogs(config=tap_config(emu)).catalog_dict
    entries = {e["tap_stream_id"]: e for e in catalog["streams"]}
    assert list(entries) == ["nirvana_audit_log", STREAM]
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


def test_ocsf_api_activity_when_asked(emulator) -> None:
    emu = emulator(seed=69, events_per_org=30)
    config = tap_config(emu, start_date=covering_start(emu))
    plain = run_tap(config, catalog=select(config, {STREAM}))
    assert all("ocsf" not in r for r in plain.records(STREAM))
    config["unified_ocsf"] = True
    run = run_tap(config, catalog=select(config, {STREAM}))
    records = run.records(STREAM)
    assert len(records) == len(plain.records(STREAM))
    for record in records:
        ocsf = record["ocsf"]
        activity_id = OCSF_ACTIVITIES.get(record["operation"], (99, ""))[0]
        assert (ocsf["class_uid"], ocsf["category_uid"]) == (6003, 6)
        assert ocsf["activity_id"] == activity_id
        assert ocsf["type_uid"] == 600300 + activity_id
        assert ocsf["metadata"]["version"] == OCSF_VERSION
        assert ocsf["metadata"]["uid"] == record["event_id"]
        assert ocsf["metadata"]["original_time"] == record["occurred_at"]
        assert ocsf["time"] == parse_instant(record["occurred_at"]) // 1_000_000
        assert ocsf["api"]["operation"] == (record["action"] or "unknown")
        assert ocsf["severity_id"] == 1
        assert ocsf["status_id"] in (0, 1, 2)
        assert isinstance(ocsf["src_endpoint"], dict)
        assert "user" in ocsf["actor"]
        if record["source_ip"]:
            assert ocsf["src_endpoint"]["ip"] == record["source_ip"]
        if record["target_id"] or record["target_name"]:
            assert ocsf["resources"][0].get("uid") == record["target_id"]
        assert ocsf["unmapped"]["category"] == record["category"]
