"""``audit_events``: one table for every provider, and the taxonomy that classifies it.

What lives where, and why:

* Here: the ``audit_events`` stream and its one setting (``unified_ocsf``).
* In output/unified.py: the unified record's fields, the taxonomy and ``UnifiedMapping``
  (what a provider fills in); in output/ocsf.py: the optional OCSF view.
* In each provider's ``events`` module: its table of event types and the function that
  picks actor, target, source and organization out of one record.

One pass feeds both tables. ``audit_events`` never calls an API. Every provider stream
hands each record it reads, exactly as the API sent it, to ``AuditEventsStream.write_event``
(from ``AuditLogStream.post_process``), which writes the unified record through this
stream's own record writing, so its stream maps and field selection apply; its
SCHEMA goes out once, before its first record. ``post_process`` runs for every record
whether or not the provider stream itself is selected, so:

* both selected: one request per page, two RECORDs per event;
* only ``audit_events`` selected: the provider stream still runs (see below) and writes
  its STATE, but none of its own SCHEMA or RECORD messages;
* only the provider stream selected: ``write_event`` returns at once.

Why the provider stream runs when only ``audit_events`` is selected: ``Tap.sync_all``
syncs a stream when ``stream.selected or stream.has_selected_descendents``, and
``has_selected_descendents`` is ``@t.final``: it reads ``child_streams``. The SDK fills
that list in ``load_streams`` (also final) only for a child class with one
``parent_stream_type``, which cannot name four provider classes, so this stream appends
itself to each provider stream's ``child_streams``. The SDK then syncs the provider
stream for its selected descendant, as for any parent; the provider streams yield no child
contexts (``AuditLogStream.generate_child_contexts``), so the SDK never syncs this stream
per record. ``parent_stream_type`` is set on the instance (not the class, which
``load_streams`` would try to wire), so ``sync_all`` skips this stream's own invocation
like any child's ("expected to be called by parent stream").

State: ``audit_events`` keeps no bookmark. The provider streams' bookmarks cover it: the
SDK writes the unified record inside its loop over ``get_records``, before it asks the
strategy for the next record, and the strategies checkpoint only after the last record of
a page came back from that loop. So every STATE that covers an event follows that event's
unified RECORD, and a run killed anywhere resumes (from the provider's state) without
losing a unified record, exactly as for the provider tables. The consequence: a provider
stream's state is shared by both tables, so selecting ``audit_events`` later does not
backfill it; run once with a fresh state (or a fresh Meltano state id) to fill it.
"""

from __future__ import annotations

import typing as t
from functools import cached_property

from singer_sdk import SchemaDirectory, StreamSchema
from singer_sdk import typing as th

from tap_auditlogs import schemas
from tap_auditlogs.output.ocsf import OCSF_VERSION, ocsf_event
from tap_auditlogs.streams.audit_log import AuditLogStream
from tap_auditlogs.streams.sdk import StreamHooks

if t.TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from singer_sdk import Tap

    from tap_auditlogs.core.types import Context, Record
    from tap_auditlogs.output.unified import UnifiedMapping
    from tap_auditlogs.providers import Provider

STREAM_NAME = "audit_events"

# ---------------------------------------------------------------------------------- OCSF

UNIFIED_SETTINGS = (
    th.Property(
        "unified_ocsf",
        th.BooleanType,
        default=False,
        description=(
            "Add an `ocsf` object to every audit_events record: the event as OCSF "
            f"{OCSF_VERSION}, in the class its event type maps to (docs/ocsf.md)."
        ),
    ),
)


# -------------------------------------------------------------------------------- stream


class AuditEventsStream(StreamHooks):
    """Every event of every configured provider in one shape (fed by the provider streams)."""

    name = STREAM_NAME
    primary_keys = ("provider", "organization_id", "event_id")
    replication_key = "occurred_at"
    is_sorted = False
    check_sorted = False
    #: Opt-in: it repeats every event of the provider tables. Select it in the catalog
    #: (``select: [audit_events.*]`` in Meltano).
    selected_by_default = False
    schema = StreamSchema(SchemaDirectory(schemas))

    def __init__(self, tap: Tap, feeders: Sequence[tuple[Provider, AuditLogStream]]) -> None:
        """Create the stream and register it with the provider streams that feed it."""
        super().__init__(tap)
        self._mappings: dict[str, tuple[UnifiedMapping, str]] = {}
        self._schema_written = False
        self._ocsf = bool(self.config.get("unified_ocsf"))
        for provider, stream in feeders:
            if provider.unified is None:
                continue
            self._mappings[provider.key] = (provider.unified, provider.label)
            stream.child_streams.append(self)  # so that has_selected_descendents sees us
            stream.event_sinks.append(self)
        # On the instance: Tap.sync_all skips a child stream's own invocation.
        self.parent_stream_type = AuditLogStream

    def write_event(self, stream: AuditLogStream, record: Record, context: Context) -> None:
        """Write the unified record of ``record``, read by ``stream`` (when selected)."""
        if not self._selected:
            return
        source = stream.source
        found = self._mappings.get(source.provider)
        if found is None:
            return
        mapping, label = found
        row = mapping.unify(source.provider, record, context)
        if not row["event_id"]:  # sent without one: the provider table's substitute id
            row["event_id"] = source.id_of(record)
        row["organization_name"] = row["organization_name"] or source.organization_name(context)
        if self._ocsf:
            row["ocsf"] = ocsf_event(row, label, mapping.ocsf_class(row["action"]))
        if not self._schema_written:
            self.write_schema()
            self._schema_written = True
        self.write_record(row)

    @cached_property
    def _selected(self) -> bool:
        """``selected``, looked up once: the catalog does not change during a run."""
        return self.selected

    def get_records(self, context: Context) -> Iterator[Record]:
        """Nothing: the records are written while the provider streams read theirs."""
        yield from ()

    def finalize_state_progress_markers(self, state: dict | None = None) -> None:
        """Nothing: ``audit_events`` keeps no state; the provider streams' state covers it."""
