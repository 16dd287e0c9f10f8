"""The five private singer-sdk names this tap relies on, all of them here, each with why.

singer-sdk 0.54 has no public hook for these; everything else the tap does with the SDK goes
through public names. A new SDK release may rename or change them: ``tests/test_sdk.py``
checks each one and says what to update, and CI runs the suite against the newest SDK.

1. ``Stream._write_record_message`` (override): records that go out unchanged (no stream map,
   no flattening, nothing deselected: the usual case) are written straight into the output
   buffer, without the SDK's message object, conformance walk and deep copies per record
   (measured: 14% less CPU). Anything else takes the SDK's own path.
2. ``Stream._increment_stream_state`` (override, does nothing): the SDK would move the
   bookmark record by record, before the page is emitted and in the order the API sends;
   the reading strategies (strategies.py) move it only past emitted pages.
3. ``PluginBase._env_var_config`` (override): the SDK reads top-level settings only from the
   environment; here ``TAP_AUDITLOGS_SOCKET_API_TOKEN`` sets ``socket.api_token``, as in Meltano.
4. ``PluginBase._validate_config`` (override): one clear line per problem, naming the
   setting and never quoting a value (the SDK's lists JSON-schema errors and values).
5. ``PluginBase._config`` (written in that override): the settings the SDK holds. The SDK's
   own check fills the schema's defaults into it as it validates (its validator is
   ``singer_sdk.typing.extend_validator_with_defaults``); the override does the same, so a
   default is stated once, in the settings schema, and read from ``config`` everywhere.

Not a private name, but the SDK's wording: ``QUIET_SDK_LINES``, lines the SDK logs that say
nothing to a user (``TapHooks`` filters them out of the tap's logger).
"""

from __future__ import annotations

import logging
import typing as t
from functools import cached_property

from jsonschema import Draft7Validator
from singer_sdk import Stream, Tap
from singer_sdk.mapper import RemoveRecordTransform, SameRecordTransform
from singer_sdk.singerlib import SchemaMessage
from singer_sdk.typing import extend_validator_with_defaults

if t.TYPE_CHECKING:
    from collections.abc import Callable, Mapping

ENV_PREFIX = "TAP_AUDITLOGS_"


class StreamHooks(Stream):
    """What the tap's streams change in the SDK's record writing and bookmarking."""

    def __init__(self, tap: Tap, *args: t.Any, **kwargs: t.Any) -> None:
        """The SDK's stream, which also knows its tap (``owner``)."""
        super().__init__(tap, *args, **kwargs)
        #: The tap this stream belongs to.
        self.owner = tap

    @cached_property
    def _everything_selected(self) -> bool:
        """True when the catalog deselects no property (the usual case)."""
        return all(self.mask.values())

    @cached_property
    def _records_as_they_are(self) -> bool:
        """True when every record goes out unchanged: nothing deselected, no stream map
        and no flattening (the SDK's pass-through map only)."""
        maps = self.stream_maps
        return (
            self._everything_selected
            and len(maps) == 1
            and type(maps[0]) is SameRecordTransform
            and maps[0].stream_alias == self.name
            and not maps[0].flattening_enabled
        )

    @cached_property
    def _direct_writer(self) -> Callable[[str, dict[str, t.Any]], None] | None:
        """The writer's ``write_record`` (output/writer.py) when records go out unchanged."""
        write_record = getattr(self.owner.message_writer, "write_record", None)
        return write_record if self._records_as_they_are else None

    def write_unchanged(self, record: dict[str, t.Any]) -> bool:
        """Write ``record`` straight into the writer's buffer and return True when records
        go out unchanged; else return False (the SDK's path: maps, flattening...)."""
        write = self._direct_writer
        if write is None:
            return False
        write(self.name, record)
        return True

    def write_record(self, record: dict[str, t.Any]) -> None:
        """Write one RECORD (through the stream maps, unless it goes out unchanged)."""
        self._write_record_message(record)

    def write_schema(self) -> None:
        """Write this stream's SCHEMA message(s), one per stream map, as the SDK does."""
        bookmark_keys = [self.replication_key] if self.replication_key else None
        for stream_map in self.stream_maps:
            if isinstance(stream_map, RemoveRecordTransform):
                continue
            self.owner.write_message(
                SchemaMessage(
                    stream_map.stream_alias,
                    stream_map.transformed_schema,
                    stream_map.transformed_key_properties,
                    bookmark_keys,
                )
            )

    def write_state(self) -> None:
        """Write a STATE message now (the SDK skips it when no record was written)."""
        _ = self.stream_state  # the stream's entry exists before it is written
        self.owner.state_writer.write_state(self.tap_state)
        self.state_manager.is_flushed = True

    # 1 ------------------------------------------------------------------------------------
    def _write_record_message(self, record: dict[str, t.Any]) -> None:
        if self.write_unchanged(record):
            self.state_manager.is_flushed = False
            return
        super()._write_record_message(record)

    # 2 ------------------------------------------------------------------------------------
    def _increment_stream_state(
        self, latest_record: dict[str, t.Any], *, context: Mapping[str, t.Any] | None = None
    ) -> None:
        return


#: INFO lines of the SDK that the tap's logger leaves out. "Skipping parse of env var
#: settings..." comes from every process started without ``--config ENV`` (Meltano starts
#: two per run, discovery and sync): it is about a feature not in use.
QUIET_SDK_LINES = frozenset({"Skipping parse of env var settings..."})


class QuietSdkLines(logging.Filter):
    """Leaves ``QUIET_SDK_LINES`` out of a logger."""

    def filter(self, record: logging.LogRecord) -> bool:
        """False for a quiet line."""
        return record.msg not in QUIET_SDK_LINES


class TapHooks(Tap):
    """What the tap changes in the SDK's reading and checking of settings."""

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        """The SDK's tap, its logger without ``QUIET_SDK_LINES``."""
        logger = type(self).logger
        if not any(isinstance(f, QuietSdkLines) for f in logger.filters):
            logger.addFilter(QuietSdkLines())
        super().__init__(*args, **kwargs)

    def settings_from_environment(self) -> dict[str, t.Any]:
        """Settings from ``TAP_AUDITLOGS_*`` environment variables."""
        raise NotImplementedError

    def validate(self, *, raise_errors: bool) -> list[str]:
        """Every problem of the settings, one line each; raise when ``raise_errors``."""
        raise NotImplementedError

    # 3 ------------------------------------------------------------------------------------
    @property
    def _env_var_config(self) -> dict[str, t.Any]:
        return self.settings_from_environment()

    # 4, 5 ---------------------------------------------------------------------------------
    def _validate_config(self, *, raise_errors: bool = True) -> list[str]:
        problems = self.validate(raise_errors=raise_errors)
        filler = extend_validator_with_defaults(Draft7Validator)(self.config_jsonschema)
        for _ in filler.iter_errors(self._config):  # fills the defaults as it walks
            pass
        return problems
