"""TapAuditLogs: which providers are configured, discovery, the sync and the connection test.

Settings live in ``cli/settings.py``, the command line in ``cli/command.py``, message output in
``output/writer.py``.
"""

from __future__ import annotations

import difflib
import typing as t

from singer_sdk.helpers.capabilities import CapabilitiesEnum, PluginCapabilities, TapCapabilities

from tap_auditlogs.cli.command import CommandLineTap, run
from tap_auditlogs.cli.connection_check import check_provider
from tap_auditlogs.cli.environment import settings_from_environment
from tap_auditlogs.cli.settings import (
    config_schema,
    configured_providers,
    register_secrets,
    settings_warnings,
    validate_settings,
)
from tap_auditlogs.core.errors import ConfigError, ProviderError, SyncIncompleteError
from tap_auditlogs.core.redaction import Redactor
from tap_auditlogs.core.text import plural
from tap_auditlogs.engine.read_ahead import ReadAhead
from tap_auditlogs.engine.state import state_problems
from tap_auditlogs.output.writer import FlushBeforeStateWriter
from tap_auditlogs.providers import all_providers, provider_names
from tap_auditlogs.streams.audit_events import STREAM_NAME as UNIFIED_STREAM
from tap_auditlogs.streams.audit_events import AuditEventsStream
from tap_auditlogs.streams.audit_log import AuditLogStream, stream_class
from tap_auditlogs.streams.coverage import RunCoverage
from tap_auditlogs.streams.sdk import ENV_PREFIX
from tap_auditlogs.streams.sync_coverage import STREAM_NAME as COVERAGE_STREAM
from tap_auditlogs.streams.sync_coverage import SyncCoverageStream

if t.TYPE_CHECKING:
    from singer_sdk import Stream


class TapAuditLogs(CommandLineTap):
    """Audit logs of SaaS organizations, one stream per provider (``providers/``).

    ``--about`` shows the description set below the class: it names every provider.
    """

    name = "tap-auditlogs"
    package_name = "tap-auditlogs"
    config_jsonschema = config_schema()
    message_writer_class = FlushBeforeStateWriter
    #: Not BATCH: batch files are announced after the STATE that covers them, which would
    #: let a killed run skip events. Not ACTIVATE_VERSION: the streams are incremental.
    capabilities: t.ClassVar[list[CapabilitiesEnum]] = [
        TapCapabilities.CATALOG,
        TapCapabilities.STATE,
        TapCapabilities.DISCOVER,
        PluginCapabilities.ABOUT,
        PluginCapabilities.STREAM_MAPS,
        PluginCapabilities.FLATTENING,
        PluginCapabilities.STRUCTURED_LOGGING,
        TapCapabilities.TEST,  # --test: one cheap call per provider and organization
    ]

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        """Create the tap; secrets are registered for redaction before anything logs."""
        self.failures: list[ProviderError] = []
        #: Workers reading the partitions of a sync (None outside one).
        self.read_ahead: ReadAhead | None = None
        #: What this run proves it read, per partition (coverage.py).
        self.coverage = RunCoverage(self)
        config = kwargs.get("config")
        if isinstance(config, dict):
            register_secrets(config)
        super().__init__(*args, **kwargs)
        if isinstance(self.message_writer, FlushBeforeStateWriter):
            self.message_writer.keep_nul = bool(self.config.get("keep_nul_characters"))
        register_secrets(self.config)
        Redactor.install()
        self.stop_on_signals()

    def settings_from_environment(self) -> dict[str, t.Any]:
        """Settings from ``TAP_AUDITLOGS_*`` variables, provider blocks included (settings.py)."""
        schema = type(self).config_jsonschema
        self.append_builtin_config(schema)
        return settings_from_environment(schema, ENV_PREFIX)

    def validate(self, *, raise_errors: bool) -> list[str]:
        """Validate the settings; every problem becomes one line naming the setting, and
        what is read on an assumption (a date-time without a timezone) one WARNING."""
        problems = validate_settings(self.config)
        for warning in settings_warnings(self.config):
            self.logger.warning("%s", warning)
        if problems and raise_errors:
            raise ConfigError("Invalid configuration: " + " | ".join(problems))
        if not problems and raise_errors:  # not for --discover (SDK: validate_config=False)
            configured_providers(self.config)
        return problems

    def load_state(self, state: dict[str, t.Any]) -> None:
        """Check the incoming state first: anything broken is one clear line (exit 2).

        The bookmarks of the configured providers are checked key by key; the state of a
        provider not configured now is only checked for its shape, and kept as it is.
        Meltano's ``meltano state get`` output (``{"singer_state": {...}}``) is read as the
        state it wraps. Bookmarks of a stream this tap does not have are kept, with a warning.
        """
        wrapped = state.get("singer_state")
        if isinstance(wrapped, dict) and "bookmarks" not in state:
            state = wrapped
        providers = configured_providers(self.config) if state.get("bookmarks") else []
        names = [p.source_class.name for p in providers]
        problems = state_problems(state, names)
        if problems:
            raise ConfigError(
                "Invalid state: " + " | ".join(problems) + ". Fix the state, or remove that "
                "stream's state to read it again from start_date."
            )
        self.warn_unknown_streams(state)
        super().load_state(state)

    def warn_unknown_streams(self, state: dict[str, t.Any]) -> None:
        """One WARNING per stream in the state's bookmarks that this tap does not have."""
        bookmarks = state.get("bookmarks")
        known = [p.source_class.name for p in all_providers()]
        known += [UNIFIED_STREAM, COVERAGE_STREAM]
        for name in bookmarks if isinstance(bookmarks, dict) else ():
            if name not in known:
                close = difflib.get_close_matches(name, known, n=1)
                hint = f" (a typo of `{close[0]}`?)" if close else ""
                self.logger.warning(
                    "The state has bookmarks for stream `%s`, which this tap does not have%s: "
                    "kept in the state as they are, and unused.",
                    name,
                    hint,
                )

    def discover_streams(self) -> list[Stream]:
        """One stream per configured provider, then ``audit_events``, fed by them.

        With no provider configured (a new Meltano project, ``meltano select --list``), the
        catalog lists every provider's stream; a sync or ``--test`` still refuses such a
        config (``validate``) before any stream is read.
        """
        providers = configured_providers(self.config, allow_none=True)
        if not providers:
            self.logger.info(
                "No provider is configured yet: the catalog lists every stream. A sync needs "
                "the credentials of at least one provider."
            )
            providers = list(all_providers())
        streams = [stream_class(p.source_class)(tap=self) for p in providers]
        unified = AuditEventsStream(self, list(zip(providers, streams, strict=True)))
        return [*streams, unified, SyncCoverageStream(self)]

    @property
    def streams(self) -> dict[str, Stream]:
        """The SDK's streams (sorted by name), with ``audit_events`` and ``sync_coverage``
        moved after the provider streams that feed them."""
        streams = super().streams
        if list(streams)[-2:] != [UNIFIED_STREAM, COVERAGE_STREAM]:
            for name in (UNIFIED_STREAM, COVERAGE_STREAM):
                if name in streams:
                    streams[name] = streams.pop(name)
        return streams

    def record_failure(self, error: ProviderError) -> None:
        """Note a failure now (one short line); it is reported in full when the run ends."""
        self.logger.warning(
            "%s; going on with the rest (reported in full at the end).",
            Redactor.scrub(error.summary),
        )
        self.failures.append(error)

    def flush_messages(self) -> None:
        """Write out buffered messages (the streams call it before every API request)."""
        flush = getattr(self.message_writer, "flush", None)
        if flush is not None:
            flush()

    def sync_all_or_fail(self) -> None:
        """Sync every selected stream, then fail if any partition could not be read."""
        Redactor.install()
        if not any(stream.selected for stream in self.streams.values()):
            self.logger.warning(
                "No stream is selected in the catalog (streams: %s); nothing to sync. Select "
                'one (`meltano select tap-auditlogs <stream>`, or `"selected": true` in '
                "the stream's metadata).",
                ", ".join(self.streams),
            )
        try:
            self.start_read_ahead()
            self.sync_all()
            self.coverage.unread(s for s in self.streams.values() if isinstance(s, AuditLogStream))
        finally:
            if self.read_ahead is not None:
                self.read_ahead.close()
                self.read_ahead = None
            self.flush_messages()
        self.coverage.log_summary(self.logger)
        if self.failures:
            # Each problem in full, last: the last line is all Meltano shows of a failure.
            self.logger.error(
                "Sync incomplete: %s. Everything else was read, emitted and its state saved:",
                plural(len(self.failures), "problem"),
            )
            for failure in self.failures:
                self.logger.error("%s", Redactor.scrub(str(failure)))
            raise SyncIncompleteError(self.failures)
        retention_gap = self.coverage.retention_error(self.config)
        if retention_gap is not None:
            raise retention_gap

    def reading(self) -> ReadAhead:
        """The sync's read-ahead (one is started for a sync the SDK drives on its own)."""
        if self.read_ahead is None:
            self.read_ahead = ReadAhead(self.concurrency)
        return self.read_ahead

    @property
    def concurrency(self) -> int:
        """Partitions and requests read side by side (1: one after another, the same path)."""
        return max(1, int(self.config["concurrency"]))

    def start_read_ahead(self) -> None:
        """Start reading the partitions of every stream to sync."""
        streams = [
            stream
            for stream in self.streams.values()
            if isinstance(stream, AuditLogStream)
            and (stream.selected or stream.has_selected_descendents)
        ]
        self.read_ahead = ReadAhead(self.concurrency)
        self.read_ahead.plan(stream.to_read for stream in streams)

    def check_connections(self) -> bool:
        """The connection test: a verdict per provider and organization; True if all pass.

        One cheap call each (plus the organization listing where it is needed), an INFO
        line per check that passed, and the verdict as the last line, naming every failed
        check (Meltano shows a failing plugin's last line only). Only when everything
        passed does it write, per stream, a SCHEMA and one
        RECORD from the probed page, as the SDK's test does: a caller that counts
        records (Meltano) cannot then mistake a partial failure for success.
        """
        Redactor.install()
        results = [
            (stream, check_provider(stream.source, stream.as_written))
            for stream in self.streams.values()
            if isinstance(stream, AuditLogStream)
        ]
        checks = [check for _, stream_checks in results for check in stream_checks]
        problems = [check.problem for check in checks if check.problem]
        for check in checks:
            if check.problem is None:
                self.logger.info("Connection test: %s: OK.", check.what)
        if problems:  # one line for all of them, the last one
            self.logger.error(
                "Connection test failed (%d of %s): %s",
                len(problems),
                plural(len(checks), "check"),
                " | ".join(problems),
            )
            return False
        emitted = 0
        for stream, stream_checks in results:
            sample = next((check.records[0] for check in stream_checks if check.records), None)
            if sample is not None:
                stream.selected = True
                stream.write_schema()  # as the SDK's own test does
                stream.write_record(sample)
                emitted += 1
        none = "" if emitted else " No event on the probed pages, so no RECORD was written."
        self.logger.info(
            "Connection test passed: %s OK (%s).%s",
            plural(len(checks), "check"),
            ", ".join(stream.source.provider_label for stream, _ in results),
            none,
        )
        return True


#: The SDK's ``--about`` prints the class docstring as the tap's description.
TapAuditLogs.__doc__ = f"Audit logs of {provider_names()} organizations, one stream each."


def main() -> None:
    """Console entry point (``tap-auditlogs``)."""
    run(TapAuditLogs)
