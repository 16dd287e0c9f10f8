"""Every RECORD fits its SCHEMA and carries no U+0000, whatever the vendor sends.

Loaders drop or choke on what a SCHEMA does not declare, and PostgreSQL cannot store NUL: the
tap moves undeclared fields into ``undeclared_fields`` (conform.py) and replaces U+0000 with
U+FFFD (output/writer.py) unless ``keep_nul_characters`` is set; a declared value whose type drifted
is nulled and kept in ``undeclared_fields`` too. Checked on the emulator's awkward data
(``awkward_values=True``: NULs, vendor-added fields at the top level and inside declared
objects, emoji/RTL, 70,000-character strings) and type drift (``type_drift=True``) for every
provider, with and without ``audit_events``, with a JSON Schema validator that checks
``date-time`` (``schema_errors``, also used by the chaos runs).
"""

from __future__ import annotations

import copy
import json
import logging
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft7Validator, FormatChecker

from tap_auditlogs import schemas as schema_files
from tap_auditlogs.cli.connection_check import check_provider
from tap_auditlogs.output.conform import UNDECLARED_FIELDS, FieldSorter, closed_schema
from tap_auditlogs.output.writer import replace_nul
from tap_auditlogs.providers import all_providers
from tap_auditlogs.streams.audit_events import STREAM_NAME as UNIFIED
from tap_auditlogs.streams.audit_log import AuditLogStream
from tap_auditlogs.streams.coverage import STREAM_NAME as COVERAGE
from tap_auditlogs.tap import TapAuditLogs
from tests.conftest import TapRun, run_tap, tap_config
from tests.emulator.awkward import ADDED_FIELD, ADDED_KEY, LONG_TEXT, UNICODE_TEXT
from tests.emulator.odd import ODD_KINDS

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


def awkward_run(emulator, *, type_drift: bool = False, **settings: object) -> TapRun:
    emu = emulator(seed=11, events_per_org=40, awkward_values=not type_drift, type_drift=type_drift)
    config = tap_config(emu, start_date="2000-01-01T00:00:00Z", **settings)
    run = run_tap(config, catalog=everything(config))
    assert run.exit_code == 0
    return run


# ------------------------------------------------------- the validator of every output

_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?P<fraction>\.\d+)?(?P<offset>[Zz]|[+-]\d{2}:\d{2})"
)
#: JSON Schema format checks, ``date-time`` as RFC 3339 (jsonschema checks it only with the
#: optional rfc3339-validator installed; this one is written here, apart from conform.py).
FORMATS = FormatChecker(formats=())


@FORMATS.checks("date-time")
def is_rfc3339(value: object) -> bool:
    """RFC 3339 date-time with a real calendar date and time (non-strings are not checked)."""
    if not isinstance(value, str):
        return True
    match = _RFC3339.fullmatch(value)
    if match is None:
        return False
    offset = match["offset"].upper().replace("Z", "+00:00")
    try:
        datetime.fromisoformat(f"{value[:19]}{offset}")
    except ValueError:
        return False
    return True


def validator(schema: dict) -> Draft7Validator:
    """Draft 7, with the ``date-time`` format checked."""
    return Draft7Validator(schema, format_checker=FORMATS)


def schema_errors(messages: Iterable[dict]) -> list[str]:
    """Every way a RECORD breaks the SCHEMA message its stream last sent (or has none)."""
    validators: dict[str, Draft7Validator] = {}
    errors: list[str] = []
    for message in messages:
        stream = message.get("stream", "")
        if message["type"] == "SCHEMA":
            validators[stream] = validator(message["schema"])
        elif message["type"] == "RECORD":
            if stream not in validators:
                errors.append(f"{stream}: a RECORD before its SCHEMA")
                continue
            errors += [
                f"{stream} {'.'.join(map(str, error.absolute_path))}: {error.message[:200]}"
                for error in validators[stream].iter_errors(message["record"])
            ]
    return errors


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
    streams = {p.source_class.name for p in all_providers()} | {UNIFIED, COVERAGE}
    assert set(schemas) == streams
    errors = schema_errors(run.messages)
    assert not errors, errors[:5]
    for provider in all_providers():
        records = run.records(provider.source_class.name)
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
        for r in run.records(p.source_class.name)
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
        for check in check_provider(stream.source, stream.as_written)
    ]
    assert checks
    for stream, check in checks:
        assert check.problem is None
        for record in check.records:
            assert not list(Draft7Validator(stream.schema).iter_errors(record)), stream.name


# ---------------------------------------------------------------- types that drifted

DRIFT_SCHEMA = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "actor": {
            "type": ["object", "null"],
            "properties": {"id": {"type": ["string", "null"]}, "n": {"type": ["integer", "null"]}},
        },
        "tags": {
            "type": ["array", "null"],
            "items": {"type": "object", "properties": {"k": {"type": "string"}}},
        },
        "required_text": {"type": "string"},
    },
    "required": ["id"],
}
#: declared schema of field ``f`` -> (values that fit, values that do not)
TYPES: dict[str, tuple[dict, list, list]] = {
    "string": ({"type": ["string", "null"]}, ["", "x", None], [1, 1.5, True, {}, {"a": 1}, ["x"]]),
    "integer": ({"type": ["integer", "null"]}, [0, -3, 2**70], [3.0, 2.5, "3", True, {}, [1]]),
    "number": ({"type": ["number", "null"]}, [0, 3, 2.5], ["3", True, False, {}, [1.5]]),
    "boolean": ({"type": ["boolean", "null"]}, [True, False], ["true", 1, 0, 1.0, {}, []]),
    "object": ({"type": ["object", "null"]}, [{}, {"a": [1, {"b": None}]}], ["x", 1, True, []]),
    "array": ({"type": ["array", "null"]}, [[], [1, "a", {}]], ["x", 1, {}, True]),
    "string list": (
        {"type": ["array", "null"], "items": {"type": "string"}},
        [[], ["a", "b"]],
        [["a", 1], [None], "a", {}],
    ),
    "date-time": (
        {"type": ["string", "null"], "format": "date-time"},
        [
            "2026-01-02T03:04:05Z",
            "2026-01-02T03:04:05.1234567+00:00",
            "2026-01-02T03:04:05.123456789Z",
            "2024-02-29t23:59:59-05:30",
        ],
        [
            "",
            "yesterday",
            "2026-02-30T10:00:00Z",
            "2026-01-02 03:04:05Z",
            "2026-01-02T03:04:05",
            "2026-01-02",
            "2026-13-02T03:04:05Z",
            "2026-01-02T24:00:00Z",
            1700000000,
            {"at": "2026-01-02T03:04:05Z"},
        ],
    ),
}


def _sorter(schema: dict, found: list) -> FieldSorter:
    return FieldSorter(
        closed_schema(schema), protected={"id"}, on_drift=lambda *args: found.append(args[:3])
    )


@pytest.mark.parametrize("kind", sorted(TYPES))
def test_a_value_that_does_not_fit_its_type_is_nulled_and_kept_as_sent(kind: str) -> None:
    declared, fitting, drifted = TYPES[kind]
    schema = {"type": "object", "properties": {"id": {"type": "string"}, "f": declared}}
    found: list = []
    sort = _sorter(schema, found)
    check = validator(closed_schema(schema))
    for value in fitting:
        record = {"id": "1", "f": copy.deepcopy(value)}
        assert sort(record) == {"id": "1", "f": value}, "fits: unchanged, no new key"
        assert not list(check.iter_errors(record))
    assert found == []
    for value in drifted:
        record = sort({"id": "1", "f": copy.deepcopy(value)})
        assert record == {"id": "1", "f": None, UNDECLARED_FIELDS: {"f": value}}, value
        assert not list(check.iter_errors(record)), value
        if kind == "date-time" and isinstance(value, str):
            assert not is_rfc3339(value), "the independent check agrees"
    assert [path for path, _, _ in found] == ["f"] * len(drifted)
    declared_text = found[0][1]
    assert declared_text.split(" or ")[-1] == "null"
    assert all(seen for _, _, seen in found)


def test_the_warning_names_the_declared_type_and_the_type_seen() -> None:
    found: list = []
    sort = _sorter(TYPES["date-time"][0] and {"properties": {"f": TYPES["date-time"][0]}}, found)
    sort({"f": ""})
    sort({"f": {"x": 1}})
    assert found == [
        ("f", "string (date-time) or null", "string '', not a date-time"),
        ("f", "string (date-time) or null", "object"),
    ]


def test_inside_declared_objects_and_arrays_what_does_not_fit_is_kept_at_its_place() -> None:
    found: list = []
    sort = _sorter(DRIFT_SCHEMA, found)
    record = sort(
        {
            "id": "1",
            "actor": {"id": 5, "n": 2, "email": "a@example.com"},
            "tags": [{"k": "v"}, {"k": 1}],
            "required_text": ["not", "text"],
        }
    )
    assert record == {
        "id": "1",
        "actor": {"id": None, "n": 2},
        "tags": None,
        UNDECLARED_FIELDS: {
            "actor": {"id": 5, "email": "a@example.com"},
            "tags": [{"k": "v"}, {"k": 1}],
            "required_text": ["not", "text"],  # not nullable: left out of the record instead
        },
    }
    assert [path for path, _, _ in found] == ["actor.id", "tags", "required_text"]
    assert (
        found[1][2] == "array with an item that does not fit: object with a field that does not fit"
    )
    assert not list(validator(closed_schema(DRIFT_SCHEMA)).iter_errors(record))
    assert sort({"id": "2", "actor": "bob"}) == {
        "id": "2",
        "actor": None,
        UNDECLARED_FIELDS: {"actor": "bob"},
    }
    extra = sort({"id": "3", "tags": [{"k": "v", "new": 1}]})
    assert extra[UNDECLARED_FIELDS] == {"tags": [{"k": "v", "new": 1}]}, "items are closed too"
    plain = {"id": "4", "actor": {"id": None, "n": None}, "tags": [{"k": "v"}], "required_text": ""}
    assert sort(copy.deepcopy(plain)) == plain


def test_protected_fields_are_never_changed() -> None:
    found: list = []
    sort = _sorter(DRIFT_SCHEMA, found)
    assert sort({"id": 7, "actor": None}) == {"id": 7, "actor": None}
    assert sort({"actor": None}) == {"actor": None}, "absent is not drift"
    assert found == []


def restore(record: dict[str, Any]) -> dict[str, Any]:
    """The record as the vendor sent it: ``undeclared_fields`` merged back at its places."""
    restored = copy.deepcopy(record)
    kept = restored.pop(UNDECLARED_FIELDS, {})

    def merge(node: dict[str, Any], below: dict[str, Any]) -> None:
        for key, value in below.items():
            if isinstance(node.get(key), dict) and isinstance(value, dict):
                merge(node[key], value)
            else:
                node[key] = value  # undeclared, or drifted (then the field is null or absent)

    merge(restored, kept)
    return restored


def stream_schema(name: str) -> dict[str, Any]:
    """A provider stream's schema as the tap emits it (closed, ``undeclared_fields``)."""
    path = Path(schema_files.__file__).parent / f"{name}.json"
    return closed_schema(json.loads(path.read_text()))


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
    | st.sampled_from(["", "2026-01-02T03:04:05Z", "2026-02-30T03:04:05Z", "0"]),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=6,
)
STREAMS = {p.source_class.name: p.source_class for p in all_providers()}


@pytest.mark.parametrize("stream", sorted(STREAMS))
def test_any_values_of_any_declared_field_fit_the_schema_and_nothing_is_lost(stream: str) -> None:
    cls = STREAMS[stream]
    schema = stream_schema(stream)
    keys = set(cls.primary_keys)  # the replication key is checked like any other field
    sort = FieldSorter(schema, protected=keys)
    check = validator(schema)
    # the partition field is the tap's (from the partition), required where declared
    tap_set = {cls.partition_field} & set(schema.get("required", ()))
    names = sorted(set(schema["properties"]) - keys - tap_set - {UNDECLARED_FIELDS})
    nested = {
        name: sorted(child["properties"])
        for name, child in schema["properties"].items()
        if child.get("properties")
    }
    key_values = {
        key: ("2026-01-02T03:04:05Z" if key == cls.replication_key else 1) for key in keys
    }
    key_values.update(dict.fromkeys(tap_set, "org"))
    for key in keys:  # a value of the declared type
        declared = schema["properties"][key]["type"]
        if "string" in declared and key != cls.replication_key:
            key_values[key] = "k"

    @settings(max_examples=150, deadline=None)
    @given(
        st.dictionaries(st.sampled_from(names), JSON_VALUES, max_size=6),
        st.dictionaries(
            st.sampled_from(sorted(nested) or ["-"]),
            st.dictionaries(
                st.text(max_size=4) | st.sampled_from(["id", "name", "type"]),
                JSON_VALUES,
                max_size=3,
            ),
            max_size=2,
        ),
    )
    def check_one(fields: dict[str, Any], objects: dict[str, Any]) -> None:
        sent = {**key_values, **fields, **{k: v for k, v in objects.items() if k in nested}}
        record = sort(copy.deepcopy(sent))
        errors = [error.message for error in check.iter_errors(record)]
        assert not errors, (sent, record, errors)
        assert restore(record) == sent

    check_one()


def test_types_that_drift_are_nulled_kept_and_warned_once_for_every_provider(
    emulator, caplog
) -> None:
    caplog.set_level(logging.WARNING)
    emu = emulator(seed=11, events_per_org=40, type_drift=True)
    config = tap_config(emu, start_date="2000-01-01T00:00:00Z")
    run = run_tap(config, catalog=everything(config))
    assert run.exit_code == 0
    errors = schema_errors(run.messages)
    assert not errors, errors[:5]
    warned = Counter(
        tuple(re.findall(r"(\w+_audit_log): .* sent field (\S+) as ", record.getMessage())[0])
        for record in caplog.records
        if " sent field " in record.getMessage()
    )
    assert warned, "drift is warned"
    assert set(warned.values()) == {1}, "one warning per stream and field"
    for provider in all_providers():
        stream = provider.source_class.name
        fields = {path for (name, path) in warned if name == stream}
        assert len(fields) >= 3, (stream, fields)
        truth = {ev.id: ev.item for ev in emu.truth(provider.key)}
        keys = provider.source_class.primary_keys
        records = run.records(stream)
        assert len(records) == len(truth)
        for record in records:
            sent = truth[str(record[keys[-1]])]
            restored = restore(record)
            added = set(restored) - set(sent)
            assert added <= {provider.source_class.partition_field}, added
            assert {k: v for k, v in restored.items() if k not in added} == sent, "nothing lost"
        for path in fields:
            top = path.split(".")[0]
            assert any(top in r.get(UNDECLARED_FIELDS, {}) for r in records), (stream, path)
    unified = run.records(UNIFIED)
    assert len(unified) == sum(len(emu.truth(p.key)) for p in all_providers())
    for provider in all_providers():
        truth = {ev.id: ev.item for ev in emu.truth(provider.key)}
        raws = [r["raw"] for r in unified if r["provider"] == provider.key]
        key = provider.source_class.primary_keys[-1]
        assert all(truth[str(raw[key])] == raw for raw in raws), "raw: as the API sent it"


# ------------------------------------------------- declared types against the documentation

S, N = "string", "null"
#: stream -> field -> (documented JSON types, documented format or "") of every documented
#: response field: Socket's and ConfigCat's published OpenAPI schemas (checked against them
#: below, tests/data/specs), Torq's and Nirvana's endpoint pages and SDKs.
DOCUMENTED: dict[str, dict[str, tuple[set[str], str]]] = {
    "socket_audit_log": {
        **{name: ({S}, "") for name in ("event_id", "created_at", "updated_at", "type")},
        **{name: ({S}, "") for name in ("user_email", "user_image", "organization_name")},
        **{
            name: ({S, N}, "")
            for name in ("country_code", "organization_id", "ip_address", "user_agent", "user_id")
        },
        "payload": ({"object", N}, ""),
        "status_code": ({"integer", N}, ""),
    },
    "configcat_audit_log": {
        "auditLogId": ({"integer"}, ""),
        "auditLogDateTime": ({S}, "date-time"),
        "truncated": ({"boolean"}, ""),
        "modelVersion": ({"integer"}, ""),
        **{name: ({S}, "") for name in ("auditLogTypeEnum", "auditLogType", "userName")},
        **{name: ({S}, "") for name in ("where", "actionTarget", "details")},
        **{name: ({S, N}, "") for name in ("userEmail", "why")},
    },
    "torq_audit_log": {
        "id": ({S}, ""),
        "timestamp": ({S}, "date-time"),
        **{
            name: ({S}, "")
            for name in ("email", "actor_name", "actor_type", "action", "resource_id")
        },
        **{name: ({S}, "") for name in ("resource_name", "ip", "user_agent")},
        **{name: ({S}, "") for name in ("account_id", "account_name")},
        "extra_data": ({"object"}, ""),
    },
    "nirvana_audit_log": {
        "id": ({S}, ""),
        "created_at": ({S}, "date-time"),
        **{name: ({S}, "") for name in ("action", "client_ip", "method", "path", "user_agent")},
        "status_code": ({"number"}, ""),  # TypeScript SDK: `status_code: number`
        "actor": ({"object"}, ""),
        "target": ({"object", N}, ""),
    },
}
#: Formats declared beyond the documentation, and why that is safe.
EXTRA_FORMATS = {
    # The replication key, an ISO 8601 time in every response seen: conform nulls (and
    # keeps) what is not an RFC 3339 date-time, after the strategies have read it.
    ("socket_audit_log", "created_at"): "date-time",
    # Documented as a string defaulting to "": conform nulls what is not a date-time and
    # keeps it in undeclared_fields, so targets can cast the column.
    ("socket_audit_log", "updated_at"): "date-time",
}
SPECS = Path(__file__).resolve().parent / "data" / "specs"
#: Where the published item schemas are in tests/data/specs.
PUBLISHED = {
    "socket_audit_log": ("socket.json", ("audit_log_200", "properties", "results", "items")),
    "configcat_audit_log": ("configcat.json", ("v2_200", "properties", "data", "items")),
}


@pytest.mark.parametrize("stream", sorted(DOCUMENTED))
def test_every_declared_type_is_the_documented_one(stream: str) -> None:
    declared = stream_schema(stream)["properties"]
    for name, (types, documented_format) in DOCUMENTED[stream].items():
        assert name in declared, f"{stream}.{name} is documented but not declared"
        field = declared[name]
        names = {field["type"]} if isinstance(field["type"], str) else set(field["type"])
        assert names - {N} == types - {N}, f"{stream}.{name}: {names} but documented {types}"
        assert N in names or N not in types, f"{stream}.{name} is documented as nullable"
        expected = documented_format or EXTRA_FORMATS.get((stream, name), "")
        assert field.get("format", "") == expected, f"{stream}.{name}: format"


@pytest.mark.parametrize("stream", sorted(PUBLISHED))
def test_the_documented_types_are_those_of_the_published_schema(stream: str) -> None:
    spec_file, where = PUBLISHED[stream]
    path = SPECS / spec_file
    item: Any = json.loads(path.read_text())
    for key in where:
        item = item[key]
    published = {
        name: ({field["type"], *([N] if field.get("nullable") else [])}, field.get("format", ""))
        for name, field in item["properties"].items()
    }
    # int32/int64 only size an integer: JSON Schema has no such formats.
    published = {
        name: (types, "" if found.startswith("int") else found)
        for name, (types, found) in published.items()
    }
    assert published == DOCUMENTED[stream]


def test_socket_updated_at_documented_as_a_string_defaulting_to_empty_is_null_when_empty() -> None:
    found: list = []
    schema = stream_schema("socket_audit_log")
    sort = FieldSorter(schema, protected={"event_id"}, on_drift=lambda *a: found.append(a[:3]))
    stamp = "2025-04-02T01:47:26.914Z"
    base = {"event_id": "1", "created_at": stamp, "org_slug": "acme"}
    record = sort({**base, "updated_at": ""})
    assert record == {**base, "updated_at": None, UNDECLARED_FIELDS: {"updated_at": ""}}
    assert not list(validator(schema).iter_errors(record))
    assert found == [("updated_at", "string (date-time) or null", "string '', not a date-time")]
    assert sort({**base, "updated_at": stamp}) == {**base, "updated_at": stamp}


def test_odd_times_and_ids_fit_the_schema_too_and_the_time_is_kept(emulator) -> None:
    kinds = tuple(sorted(ODD_KINDS))
    emu = emulator(
        seed=12,
        events_per_org=60,
        **{f"{p.key}_odd_values": kinds for p in all_providers()},
    )
    config = tap_config(emu, start_date="2000-01-01T00:00:00Z")
    run = run_tap(config, catalog=everything(config))
    assert run.exit_code == 0
    errors = schema_errors(run.messages)
    assert not errors, errors[:5]
    for provider in all_providers():
        key = provider.source_class.replication_key
        odd = [r for r in run.records(provider.source_class.name) if r.get(key) is None]
        kept = [r[UNDECLARED_FIELDS][key] for r in odd if key in r.get(UNDECLARED_FIELDS, {})]
        assert odd, provider.key
        assert len(kept) >= len(odd) // 2, "null, epoch and garbage times are kept as sent"
