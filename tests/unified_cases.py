"""Checks of one provider's ``audit_events`` mapping, called from its own test file
(``tests/test_<provider>.py``), so a new provider brings its cases with it.

* ``check_known_events``: events patched to known shapes, read over HTTP from the
  emulator, become the unified records the provider's table promises.
* ``check_documented_types``: every event type the provider documents is mapped.
* ``check_documented_enum``: the copy of the provider's documented enum (``tests/data``,
  with its source) is all mapped, and the provider's event-type filter takes exactly it.
"""

from __future__ import annotations

import json
import typing as t

from tap_auditlogs.output.unified import normalize_action
from tap_auditlogs.providers import all_providers
from tap_auditlogs.tap import TapAuditLogs
from tests.conftest import REPO, run_tap, tap_config

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

    from tests.emulator.provider import TruthEvent

STREAM = "audit_events"
SCHEMA = json.loads((REPO / "tap_auditlogs" / "schemas" / "audit_events.json").read_text())
#: (what an event is patched with, what its unified record must hold)
Case = tuple[dict, dict]


def select(config: dict, streams: t.Collection[str]) -> dict:
    """The discovered catalog with exactly ``streams`` selected."""
    catalog = TapAuditLogs(config=config).catalog_dict
    for entry in catalog["streams"]:
        for metadata in entry["metadata"]:
            if metadata["breadcrumb"] == []:
                metadata["metadata"]["selected"] = entry["tap_stream_id"] in streams
    return catalog


def mapping_of(provider: str) -> t.Any:
    """The provider's ``UnifiedMapping`` (it must feed ``audit_events``)."""
    mapping = next(p for p in all_providers() if p.key == provider).unified
    assert mapping is not None, f"{provider} does not feed audit_events"
    return mapping


def check_known_events(
    emulator: t.Any,
    provider: str,
    cases: list[Case],
    organization: Callable[[TruthEvent], str],
) -> None:
    """Each case's event, patched and served, becomes a unified record holding what the
    case expects; the generic fields (provider, event_id, occurred_at, the organization
    ``organization`` names, raw) are checked on every one."""
    emu = emulator(providers=(provider,), seed=61, events_per_org=5)
    org = emu.provider(provider).orgs[0]
    added = emu.add_events(provider, org, len(cases))
    for event, (patch, _) in zip(added, cases, strict=True):
        event.item.update(patch)  # served from here on
    config = tap_config(emu)
    run = run_tap(config, catalog=select(config, {STREAM}))
    assert run.exit_code == 0
    assert [m for m in run.messages if m["type"] == "RECORD" and m["stream"] != STREAM] == []
    unified = {r["event_id"]: r for r in run.records(STREAM)}
    for event, (_, expected) in zip(added, cases, strict=True):
        row = unified[event.id]
        assert row["provider"] == provider
        assert row["occurred_at"] == event.ts.replace("+00:00", "Z")
        assert row["raw"] == event.item, "raw is the record exactly as served"
        assert row["organization_id"] == expected.get("organization_id", organization(event))
        assert {key: row[key] for key in expected} == expected, expected
        assert set(row) == set(SCHEMA["properties"]) - {"ocsf"}


def check_documented_types(provider: str, documented: Iterable[str]) -> None:
    """Every documented event type has a mapping, and a row in docs/ocsf.md (its OCSF class,
    generated from the table by ``make docs``)."""
    mapping = mapping_of(provider)
    missing = [name for name in documented if not mapping.is_mapped(name)]
    assert missing == [], f"{provider}: no mapping for {missing}"
    rows = ocsf_doc_rows(provider)
    undocumented = [name for name in documented if normalize_action(name) not in rows]
    assert undocumented == [], f"{provider}: no row in docs/ocsf.md for {undocumented}"


def ocsf_doc_rows(provider: str) -> set[str]:
    """The event types (normalized) of ``provider``'s rows in docs/ocsf.md."""
    lines = (REPO / "docs" / "ocsf.md").read_text().splitlines()
    found = (line.split("|") for line in lines if line.startswith(f"| `{provider}` |"))
    return {normalize_action(cells[2].strip().strip("`")) for cells in found}


def check_documented_enum(provider: str, documented: Sequence[str]) -> None:
    """The documented enum (``tests/data``) lists each value once, every value is mapped,
    and the provider's event-type filter, if it has one, takes exactly these values."""
    assert documented, f"{provider}: the documented enum is empty"
    assert len(set(documented)) == len(documented), f"{provider}: a value is listed twice"
    check_documented_types(provider, documented)
    stream = next(p for p in all_providers() if p.key == provider).source_class
    if stream.event_type_values:
        assert sorted(stream.event_type_values) == sorted(documented), (
            f"{provider}: the filter's values differ from the documented enum"
        )
