"""The buffered writer: RECORDs wait in memory, but never behind the STATE that covers them."""

from __future__ import annotations

import contextlib
import io
import json

from singer_sdk.singerlib import RecordMessage, SchemaMessage, StateMessage

from tap_auditlogs.tap import FlushBeforeStateWriter


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
