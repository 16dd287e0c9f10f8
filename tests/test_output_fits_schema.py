"""Every RECORD fits its SCHEMA and carries no U+0000, whatever the vendor sends.

Loaders drop or choke on what a SCHEMA does not declare, and PostgreSQL cannot store NUL: the
tap moves undeclared fields into ``undeclared_fields`` (conform.py) and replaces U+0000 with
U+FFFD (output.py) unless ``keep_nul_characters`` is set. Checked on the emulator's awkward
data (``awkward_values=True``: NULs, vendor-added fields at the top level and inside declared
objects, emoji/RTL, 70,000-character strings) for every provider, with and without
``audit_events``.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator

import pytest
from jsonschema import Draft7Validator

from tap_auditlogs.client import AuditLogStream
from tap_auditlogs.conform import UNDECLARED_FIELDS, FieldSorter, closed_schema
from tap_auditlogs.connection_test import check_provider
from tap_auditlogs.output import replace_nul
from tap_auditlogs.providers import all_providers
from tap_auditlogs.tap import TapAuditLogs
from tap_auditlogs.unified import STREAM_NAME as UNIFIED
from tests.conftest import TapRun, run_tap, tap_config
from tests.emulator.awkward import ADDED_FIELD, ADDED_KEY, LONG_TEXT, UNICODE_TEXT

SCHEMA = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "actor": {
            "type": ["object", "null"],
            "properties": {"id": {"type": ["string", "null"]}},
            "additionalProperties": True,
        },
        "payload": {"type": ["object", "null"], "additionalProperties": True},
    },
    "additionalProperties": True,
}


def everything(config: dict) -> dict:
    """The discovered catalog with every stream selected (``audit_events`` too)."""
    catalog = TapAuditLogs(config=config).catalog_dict
    for entry in catalog["streams"]:
        for metadata in entry["metadata"]:
            if metadata["breadcrumb"] == []:
                metadata["metadata"]["selected"] = True
    return catalog


def awkward_run(emulator, **settings: object) -> TapRun:
    emu = emulator(seed=11, events_per_org=40, awkward_values=True)
    config = tap_config(emu, start_date="2000-01-01T00:00:00Z", **settings)
    run = run_tap(config, catalog=everything(config))
    assert run.exit_code == 0
    return run


# ------------------------------------------------------------------------------ units


def test_closed_schema_declares_undeclared_fields_and_closes_declared_objects() -> None:
    closed = closed_schema(SCHEMA)
    assert closed["additionalProperties"] is False
    assert closed["properties"]["actor"]["additionalProperties"] is False
    assert closed["properties"]["payload"]["additionalProperties"] is True, "free-form stays"
    assert closed["properties"][UNDECLARED_FIELDS]["type"] == ["object", "null"]
    assert SCHEMA["additionalProperties"] is True, "the source schema is not changed"


def test_undeclared_fields_move_at_their_place_and_the_rest_stays() -> None:
    sort = FieldSorter(closed_schema(SCHEMA))
    plain = {"id": "1", "actor": {"id": "a"}, "payload": {"anything": {"deep": 1}}}
    assert sort(copy.deepcopy(plain)) == plain, "nothing undeclared: unchanged, no new key"
    record = {
        "id": "1",
        "risk": "high",
        "actor": {"id": "a", "email": "a@example.com"},
        "payload": {"new": 1},
        UNDECLARED_FIELDS: "a vendor field of that name is undeclared too",
    }
    assert sort(record) == {
        "id": "1",
        "actor": {"id": "a"},
        "payload": {"new": 1},
        UNDECLARED_FIELDS: {
            "risk": "high",
            "actor": {"email": "a@example.com"},
            UNDECLARED_FIELDS: "a vendor field of that name is undeclared too",
        },
    }
    assert sort({"id": "2", "actor": None}) == {"id": "2", "actor": None}


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b'{"a":"x\\u0000y"}', b'{"a":"x\\ufffdy"}'),
        (b'{"a\\u0000":"\\u0000\\u0000"}', b'{"a\\ufffd":"\\ufffd\\ufffd"}'),
        (b'{"a":"\\\\u0000"}', b'{"a":"\\\\u0000"}'),  # the text \u0000, not a NUL
        (b'{"a":"\\\\\\u0000"}', b'{"a":"\\\\\\ufffd"}'),  # a backslash, then a NUL
        (b'{"a":"\\u00001"}', b'{"a":"\\ufffd1"}'),
        (b'{"a":"plain"}', b'{"a":"plain"}'),
    ],
)
def test_nul_escapes_are_replaced_and_nothing_else(line: bytes, expected: bytes) -> None:
    assert replace_nul(line) == expected
    assert json.loads(replace_nul(line)) == json.loads(expected)


# ----------------------------------------------------------------- with the emulator


def test_every_record_fits_its_schema_and_keeps_what_the_vendor_added(emulator) -> None:
    run = awkward_run(emulator)
    schemas = {m["stream"]: m["schema"] for m in run.messages if m["type"] == "SCHEMA"}
    streams = {p.stream_class.name for p in all_providers()} | {UNIFIED}
    assert set(schemas) == streams
    for message in run.messages:
        if message["type"] == "RECORD":
            errors = list(
                Draft7Validator(schemas[message["stream"]]).iter_errors(message["record"])
            )
            assert not errors, (message["stream"], errors[0].message[:300])
    for provider in all_providers():
        records = run.records(provider.stream_class.name)
        kept = [r[UNDECLARED_FIELDS] for r in records if UNDECLARED_FIELDS in r]
        assert any(ADDED_FIELD in fields for fields in kept), provider.key
        assert any(
            fields[ADDED_FIELD].get("long") == LONG_TEXT for fields in kept if ADDED_FIELD in fields
        ), provider.key
        assert any(UNICODE_TEXT in json.dumps(r, ensure_ascii=False) for r in records)
    nested = [
        r[UNDECLARED_FIELDS]["actor"]
        for r in run.records("nirvana_audit_log")
        if "actor" in r.get(UNDECLARED_FIELDS, {})
    ]
    assert nested, "a key added inside a declared object is kept too"
    assert all(set(found) == {ADDED_KEY} for found in nested)
    raws = [r["raw"] for r in run.records(UNIFIED)]
    assert sum(ADDED_FIELD in raw for raw in raws) == sum(
        ADDED_FIELD in r.get(UNDECLARED_FIELDS, {})
        for p in all_providers()
        for r in run.records(p.stream_class.name)
    ), "audit_events keeps the record as the API sent it, vendor fields included"


def texts(value: object) -> Iterator[str]:
    """Every string in a decoded JSON value, keys included, at any depth."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from texts(item)
    elif isinstance(value, list):
        for item in value:
            yield from texts(item)


def test_no_nul_reaches_the_output_unless_asked(emulator) -> None:
    replaced = awkward_run(emulator)
    found = list(texts(replaced.messages))
    assert not [text for text in found if "\x00" in text]
    assert "before\ufffdafter" in found, "replaced visibly"
    kept = awkward_run(emulator, keep_nul_characters=True)
    found = list(texts(kept.messages))
    assert "before\x00after" in found
    assert not [text for text in found if "\ufffd" in text]
    assert len(kept.records()) == len(replaced.records())


def test_the_connection_test_record_fits_its_schema_too(emulator) -> None:
    emu = emulator(seed=11, events_per_org=5, awkward_values=True)
    tap = TapAuditLogs(config=tap_config(emu))
    checks = [
        (stream, check)
        for stream in tap.streams.values()
        if isinstance(stream, AuditLogStream)
        for check in check_provider(stream)
    ]
    assert checks
    for stream, check in checks:
        assert check.problem is None
        for record in check.records:
            assert not list(Draft7Validator(stream.schema).iter_errors(record)), stream.name
