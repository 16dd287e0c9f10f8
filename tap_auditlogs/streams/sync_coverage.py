"""``sync_coverage``: the stream that coverage.py's ``RunCoverage`` writes, as it is proven.

Opt-in (not selected by default); one record per partition and run: what the run proves
it read (coverage.py says how).
"""

from __future__ import annotations

import typing as t
from functools import cached_property

from singer_sdk import SchemaDirectory, StreamSchema

from tap_auditlogs import schemas
from tap_auditlogs.streams.sdk import StreamHooks

if t.TYPE_CHECKING:
    from collections.abc import Iterator

    from singer_sdk import Tap

    from tap_auditlogs.core.types import Context, Record

STREAM_NAME = "sync_coverage"


class SyncCoverageStream(StreamHooks):
    """``sync_coverage``: written by ``RunCoverage`` as the provider streams read, never synced."""

    name = STREAM_NAME
    primary_keys = ("run_id", "stream", "partition")
    replication_key = None
    #: Opt-in: select it in the catalog (``select: [sync_coverage.*]`` in Meltano).
    selected_by_default = False
    schema = StreamSchema(SchemaDirectory(schemas))

    def __init__(self, tap: Tap) -> None:
        """Create the stream; ``Tap.sync_all`` skips it (a child stream's own invocation)."""
        super().__init__(tap)
        self._schema_written = False
        self.parent_stream_type = StreamHooks

    @cached_property
    def selected_now(self) -> bool:
        """``selected``, looked up once: the catalog does not change during a run."""
        return self.selected

    def write_coverage(self, row: dict[str, t.Any]) -> None:
        """Write one coverage record (its SCHEMA first, once)."""
        if not self._schema_written:
            self.write_schema()
            self._schema_written = True
        self.write_record(row)

    def get_records(self, context: Context) -> Iterator[Record]:
        """Nothing: the records are written while the provider streams read theirs."""
        yield from ()

    def finalize_state_progress_markers(self, state: dict | None = None) -> None:
        """Nothing: ``sync_coverage`` keeps no state."""
