"""The buffered writer: RECORDs wait in memory, but never behind the STATE that covers them."""

from __future__ import annotations

import contextlib
import io
import json

from singer_sdk.helpers._util import utc_now
from singer_sdk.singerlib import RecordMessage, SchemaMessage, StateMessage

from tap_auditlogs.output.writer import FlushBeforeStateWriter
from tests.conftest import run_tap, tap_config


def test_records_are_held_back_and_flushed_before_every_state() -> None:
    raw = io.BytesIO()
    stdout = io.TextIOWrapper(raw, encoding="utf-8")
    with contextlib.redirect_stdout(stdout):
        writer = FlushBeforeStateWriter()
        writer.write_message(
            SchemaMessage(stream="s", schema={"type": "object"}, key_properties=[])
        )
        schema_out = raw.getvalue()
        for i in range(3):
            writer.write_message(RecordMessage(stream="s", record={"id": i}))
        held = raw.getvalue()
        writer.write_message(StateMessage(value={"bookmarks": {"s": {"n": 3}}}))
        after_state = raw.getvalue()
        writer.flush()
    assert schema_out.count(b"\n") == 1, "SCHEMA goes out at once"
    assert held == schema_out, "RECORDs wait in the buffer"
    lines = [json.loads(line) for line in after_state.decode().splitlines()]
    assert [m["type"] for m in lines] == ["SCHEMA", "RECORD", "RECORD", "RECORD", "STATE"]
    assert lines[-1] == {"type": "STATE", "value": {"bookmarks": {"s": {"n": 3}}}}


def test_a_full_buffer_goes_out_without_waiting_for_a_state() -> None:
    raw = io.BytesIO()
    stdout = io.TextIOWrapper(raw, encoding="utf-8")
    with contextlib.redirect_stdout(stdout):
        writer = FlushBeforeStateWriter()
        record = RecordMessage(stream="s", record={"blob": "x" * 1000})
        for _ in range(FlushBeforeStateWriter.CHUNK // 1000 + 2):
            writer.write_message(record)
        written = raw.getvalue()
        writer.flush()  # the rest, as at exit
    assert written.count(b"\n") >= FlushBeforeStateWriter.CHUNK // 1100


def test_a_record_written_directly_is_the_sdks_record_line() -> None:
    """``write_record`` (records that go out unchanged) writes the SDK's bytes; only
    ``time_extracted`` differs, by the time between the two calls."""
    record = {"id": "1", "text": "é\u2028\"x\"", "list": [1.5, None, True], "nested": {"n": -0.0},
              "big": 12345678901234567, "exp": 1e300}  # fmt: skip
    writer = FlushBeforeStateWriter()
    writer.write_record("s", record)
    direct = bytes(writer._pending)
    writer._pending.clear()
    writer.write_message(RecordMessage(stream="s", record=record, time_extracted=utc_now()))
    sdk = bytes(writer._pending)
    writer._pending.clear()
    cut = b',"time_extracted":"'
    assert direct.partition(cut)[0] == sdk.partition(cut)[0]
    assert direct.endswith(b'Z"}\n')
    assert sdk.endswith(b'Z"}\n')
    assert len(direct) == len(sdk)


def test_records_still_go_through_stream_maps_when_there_are_any(emulator) -> None:
    emu = emulator(providers=("socket",), seed=41, socket_orgs=("acme",), events_per_org=20)
    maps = {"socket_audit_log": {"org_upper": "org_slug.upper()", "user_agent": None}}
    run = run_tap(tap_config(emu, stream_maps=maps))
    assert run.exit_code == 0
    records = run.records("socket_audit_log")
    assert len(records) == 20
    assert all(r["org_upper"] == "ACME" and "user_agent" not in r for r in records)
    plain = run_tap(tap_config(emu)).records("socket_audit_log")
    objects = sum(isinstance(r.get("payload"), dict) for r in plain)
    assert objects, "Socket records have objects to flatten"
    flat = run_tap(tap_config(emu, flattening_enabled=True, flattening_max_depth=1))
    flat_records = flat.records("socket_audit_log")
    assert len(flat_records) == 20
    # An object without declared properties is flattened to its JSON text.
    assert sum(isinstance(r.get("payload"), str) for r in flat_records) == objects
