"""Writing Singer messages to stdout: buffered, never behind a STATE, NUL-safe.

Two guarantees live here, for every stream and every record:

* **Order.** RECORD lines collect in memory; every other message (STATE, SCHEMA) first writes
  out everything before it. A STATE never reaches stdout before the records it covers.
* **No U+0000.** PostgreSQL text and ``jsonb`` cannot hold the NUL character: one NUL in one
  field fails a whole load in some targets (meltanolabs-target-postgres by default,
  pipelinewise-target-postgres for ``jsonb`` columns). JSON writes it as the escape ``\\u0000``,
  so each RECORD line is checked for that escape (one byte search, the usual case) and each one
  is replaced with ``\\ufffd``, the visible replacement character U+FFFD, in strings and keys
  at any depth. The setting ``keep_nul_characters`` keeps them for targets that store them.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime
import logging
import os
import re
import sys
import time
import typing as t

from singer_sdk.contrib.msgspec import MsgSpecWriter, serialize_jsonl
from singer_sdk.contrib.msgspec import encoder as msgspec_encoder
from singer_sdk.singerlib import RecordMessage, StateMessage

from tap_auditlogs.core.errors import EXIT_OUTPUT_CLOSED, OutputClosedError

if t.TYPE_CHECKING:
    from collections.abc import Mapping

    from singer_sdk.singerlib.encoding.simple import Message

NUL_ESCAPE = b"\\u0000"
REPLACEMENT_ESCAPE = b"\\ufffd"
#: ``\u0000`` as an escape: preceded by an even number of backslashes (an odd one would make
#: it the text ``\u0000``, an escaped backslash followed by ``u0000``).
_NUL_ESCAPES = re.compile(rb"(?<!\\)((?:\\\\)*)\\u0000")


def replace_nul(line: bytes) -> bytes:
    """A JSON line with every U+0000 in its strings replaced by U+FFFD."""
    if NUL_ESCAPE not in line:
        return line
    return _NUL_ESCAPES.sub(lambda found: found[1] + REPLACEMENT_ESCAPE, line)


class FlushBeforeStateWriter(MsgSpecWriter):
    """The SDK's msgspec writer without a write and a flush per message.

    RECORD lines collect in memory and go out in chunks of ``CHUNK`` bytes. Every other
    message (STATE, SCHEMA) first writes out everything before it, then itself, then
    flushes: a STATE never reaches stdout before the records it covers, and a kill at any
    point loses only records that no STATE covers yet (the next run reads them again).
    ``flush()`` also runs before every API request (``AuditLogStream.request_json``), so
    records never wait for the network, and at exit. The buffer is our own, not
    ``sys.stdout``'s: PYTHONUNBUFFERED (set by some runners) makes that one unbuffered.
    """

    CHUNK = 64 * 1024

    def __init__(self) -> None:
        """Start with an empty buffer; whatever is left goes out when the process exits."""
        super().__init__()
        #: False: U+0000 in RECORDs is replaced (the default; setting ``keep_nul_characters``).
        self.keep_nul = False
        self._pending = bytearray()
        self._prefixes: dict[str, bytes] = {}
        self._extracted_ms = -1
        self._extracted = b""
        atexit.register(self.flush)

    def serialize_message(self, message: Message) -> bytearray:
        """A STATE without ``dataclasses.asdict``, which deep-copies the whole state.

        Same bytes as the SDK's (``asdict`` drops only the message's own None fields; a
        STATE has one field, ``value``), about 100 times faster for a state of 100
        partitions, which is written after every page.
        """
        if isinstance(message, StateMessage):
            return serialize_jsonl({"type": "STATE", "value": message.value})
        return super().serialize_message(message)

    def write_message(self, message: Message) -> None:
        """Buffer a RECORD; write out the buffer with any other message."""
        if isinstance(message, RecordMessage):
            line = bytes(self.format_message(message))
            self._pending += line if self.keep_nul else replace_nul(line)
            if len(self._pending) < self.CHUNK:
                return
        else:
            self._pending += self.format_message(message)
        self.flush()

    def write_record(self, stream: str, record: Mapping[str, t.Any]) -> None:
        """Buffer a RECORD line for a record that goes out as it is (no map, no flattening).

        The same bytes as the SDK's path (``RecordMessage`` -> ``to_dict`` -> msgspec) without
        a message object, a dict and a timestamp per record; ``time_extracted`` is taken
        once per millisecond.
        """
        prefix = self._prefixes.get(stream)
        if prefix is None:
            prefix = self._prefixes[stream] = b'{"type":"RECORD","stream":%s,"record":' % (
                msgspec_encoder.encode(stream)
            )
        now_ms = time.time_ns() // 1_000_000
        if now_ms != self._extracted_ms:
            self._extracted_ms = now_ms
            extracted = datetime.datetime.now(datetime.timezone.utc)
            self._extracted = b',"time_extracted":%s}\n' % msgspec_encoder.encode(extracted)
        encoded = msgspec_encoder.encode(record)
        if NUL_ESCAPE in encoded and not self.keep_nul:  # rare: one byte search per record
            encoded = replace_nul(encoded)
        # One append: a signal handler that writes a STATE (SIGTERM) never splits a line.
        self._pending += b"".join((prefix, encoded, self._extracted))
        if len(self._pending) >= self.CHUNK:
            self.flush()

    def flush(self) -> None:
        """Write out every buffered message, then flush stdout.

        A closed stdout (the target died: ``BrokenPipeError``) ends the run with one ERROR
        line and ``EXIT_OUTPUT_CLOSED``; what is still buffered goes to /dev/null, so the
        exit flushes raise nothing more.
        """
        try:
            if self._pending:
                sys.stdout.buffer.write(self._pending)
                self._pending.clear()
            sys.stdout.flush()
        except BrokenPipeError:
            self._pending.clear()
            with contextlib.suppress(OSError, ValueError):  # no file descriptor: in tests
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            logging.getLogger("tap-auditlogs").error(
                "The target stopped reading (stdout closed: broken pipe), so nothing more can "
                "be delivered; stopped (exit code %d). The next run continues from the last "
                "STATE the target saved.",
                EXIT_OUTPUT_CLOSED,
            )
            raise OutputClosedError from None
