"""TapAuditLogs: settings, which providers are configured, discovery, and the CLI."""

from __future__ import annotations

import contextlib
import difflib
import logging
import signal
import sys
import typing as t
from urllib.parse import urlsplit

import orjson
from jsonschema import Draft7Validator
from singer_sdk import Tap
from singer_sdk import typing as th
from singer_sdk.configuration._dict_config import parse_environment_config
from singer_sdk.helpers._classproperty import classproperty
from singer_sdk.helpers.capabilities import CapabilitiesEnum, PluginCapabilities, TapCapabilities
from singer_sdk.plugin_base import PluginBase, _ConfigInput
from singer_sdk.singerlib import StateMessage
from singer_sdk.tap_base import CliTestOptionValue

from tap_auditlogs.client import AuditLogStream, Redactor
from tap_auditlogs.errors import (
    EXIT_PROVIDER,
    AuditLogsError,
    ConfigError,
    ProviderError,
    SyncIncompleteError,
)
from tap_auditlogs.instants import now_instant, parse_instant
from tap_auditlogs.output import FlushBeforeStateWriter
from tap_auditlogs.parallel import ReadAhead
from tap_auditlogs.providers import Provider, all_providers, rate_limit_setting
from tap_auditlogs.strategies import state_problems
from tap_auditlogs.unified import STREAM_NAME as UNIFIED_STREAM
from tap_auditlogs.unified import UNIFIED_SETTINGS, AuditEventsStream

if t.TYPE_CHECKING:
    from collections.abc import Mapping
    from types import FrameType

    import click
    from jsonschema.exceptions import ValidationError
    from singer_sdk import Stream

COMMON_SETTINGS = (
    th.Property(
        "start_date",
        th.DateTimeType,
        description=(
            "Read events at or after this instant (ISO 8601 with a timezone, e.g. "
            "2024-01-01T00:00:00Z; a bare date means midnight UTC). Default: each "
            "provider's own default (Socket and Nirvana: everything; ConfigCat: 7 days; "
            "Torq: 24 hours)."
        ),
    ),
    th.Property(
        "request_timeout",
        th.IntegerType,
        default=60,
        description="Seconds to wait for a connection or for data before retrying.",
    ),
    th.Property(
        "max_retries",
        th.IntegerType,
        default=8,
        description="Retries of one request after 429, 5xx, timeouts or broken responses.",
    ),
    th.Property(
        "backoff_base_seconds",
        th.NumberType,
        default=1.0,
        description="First wait between retries (doubled each time, with jitter, at most 60 s).",
    ),
    th.Property(
        "concurrency",
        th.IntegerType,
        default=8,
        description=(
            "Organizations (partitions) read at the same time, across all providers. The "
            "output keeps the order of a one-at-a-time run, so resuming works the same; 1 "
            "reads one partition after another."
        ),
    ),
    th.Property(
        "keep_nul_characters",
        th.BooleanType,
        default=False,
        description=(
            "Keep the NUL character (U+0000) in text as the API sent it. By default each one "
            "is replaced with U+FFFD, the replacement character, because PostgreSQL cannot "
            "store it and target-postgres then fails the whole load; set true only for "
            "targets that store it."
        ),
    ),
    th.Property(
        "max_retry_wait",
        th.IntegerType,
        default=300,
        description=(
            "Longest Retry-After (seconds) the tap waits out. A longer one stops that "
            "provider cleanly with its state saved, so the next run continues."
        ),
    ),
)

#: Numeric settings that must be positive (name -> minimum).
MINIMUMS = {
    "request_timeout": 1,
    "max_retries": 0,
    "backoff_base_seconds": 0,
    "max_retry_wait": 0,
    "concurrency": 1,
}

#: The connection test (``--test``) answers within seconds: at most these retry settings.
PROBE_LIMITS = {"max_retries": 2, "backoff_base_seconds": 0.5, "max_retry_wait": 10}


def config_schema() -> dict:
    """The settings schema: common settings plus one object per provider."""
    blocks = [
        th.Property(
            provider.key,
            th.ObjectType(
                *provider.settings,
                rate_limit_setting(provider.stream_class),
                additional_properties=False,
            ),
            description=f"{provider.description} Set {', '.join(provider.required)} to enable.",
        )
        for provider in all_providers()
    ]
    return th.PropertiesList(*COMMON_SETTINGS, *UNIFIED_SETTINGS, *blocks).to_dict()


def configured_providers(
    config: Mapping[str, t.Any], *, allow_none: bool = False
) -> list[Provider]:
    """Providers whose block is present; raises ConfigError when one is half configured,
    or when none is (unless ``allow_none``: then the list is empty)."""
    enabled = []
    for provider in all_providers():
        block = config.get(provider.key)
        if not block:
            continue
        missing = [name for name in provider.required if not block.get(name)]
        if missing:
            names = ", ".join(f"`{provider.key}.{name}`" for name in missing)
            raise ConfigError(
                f"Setting {names} is missing: the {provider.label} provider is configured "
                f"({', '.join(sorted(block))} set) but cannot authenticate without it."
            )
        enabled.append(provider)
    if not enabled and not allow_none:
        keys = ", ".join(f"`{p.key}.{p.required[0]}`" for p in all_providers())
        raise ConfigError(
            f"No provider is configured: set the credentials of at least one ({keys})."
        )
    return enabled


class TapAuditLogs(Tap):
    """Audit logs of Socket, ConfigCat, Torq and Nirvana Labs organizations, one stream each."""

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
        #: Workers reading partitions ahead during a sync (None: one partition at a time).
        self.read_ahead: ReadAhead | None = None
        config = kwargs.get("config")
        if isinstance(config, dict):
            _register_secrets(config)
        super().__init__(*args, **kwargs)
        if isinstance(self.message_writer, FlushBeforeStateWriter):
            self.message_writer.keep_nul = bool(self.config.get("keep_nul_characters"))
        _register_secrets(self.config)
        Redactor.install()

    @classproperty
    def _env_var_config(cls) -> dict[str, t.Any]:  # noqa: N805
        """Settings from ``TAP_AUDITLOGS_*`` variables (``--config ENV``), blocks included.

        The SDK reads top-level settings only, so a provider block would have to be one JSON
        variable; here ``TAP_AUDITLOGS_SOCKET_API_TOKEN`` sets ``socket.api_token``, as in
        Meltano. A block's JSON variable still works; single variables win over it.
        """
        schema = cls.config_jsonschema
        cls.append_builtin_config(schema)
        prefix = cls._env_var_prefix
        try:
            config = parse_environment_config(schema, prefix)
            for provider in all_providers():
                block_schema = schema["properties"][provider.key]
                nested = parse_environment_config(block_schema, f"{prefix}{provider.key.upper()}_")
                if nested:
                    config[provider.key] = {**(config.get(provider.key) or {}), **nested}
        except ValueError as exc:
            raise ConfigError(
                f"An environment variable {prefix}* has a value of the wrong type ({exc})."
            ) from None
        _coerce_numbers(config, schema)
        return config

    def _validate_config(self, *, raise_errors: bool = True) -> list[str]:
        """Validate the settings; every problem becomes one line naming the setting."""
        problems = validate_settings(self.config)
        if problems and raise_errors:
            raise ConfigError("Invalid configuration: " + " | ".join(problems))
        if not problems and raise_errors:  # not for --discover (SDK: validate_config=False)
            configured_providers(self.config)
        return problems

    def load_state(self, state: dict[str, t.Any]) -> None:
        """Check the incoming state first: anything broken is one clear line (exit 2).

        The bookmarks of the configured providers are checked key by key; the state of a
        provider not configured now is only checked for its shape, and kept as it is.
        """
        providers = configured_providers(self.config) if state.get("bookmarks") else []
        names = [p.stream_class.name for p in providers]  # type: ignore[misc]
        problems = state_problems(state, names)
        if problems:
            raise ConfigError(
                "Invalid state: " + " | ".join(problems) + ". Fix the state, or remove that "
                "stream's state to read it again from start_date."
            )
        super().load_state(state)

    def discover_streams(self) -> list[Stream]:
        """One stream per configured provider, then ``audit_events``, fed by them.

        With no provider configured (a new Meltano project, ``meltano select --list``), the
        catalog lists every provider's stream; a sync or ``--test`` still refuses such a
        config (``_validate_config``) before any stream is read.
        """
        providers = configured_providers(self.config, allow_none=True)
        if not providers:
            self.logger.info(
                "No provider is configured yet: the catalog lists every stream. A sync needs "
                "the credentials of at least one provider."
            )
            providers = list(all_providers())
        streams = [p.stream_class(tap=self) for p in providers]
        unified = AuditEventsStream(self, list(zip(providers, streams, strict=True)))
        return [*streams, unified]

    @property
    def streams(self) -> dict[str, Stream]:
        """The SDK's streams (sorted by name), with ``audit_events`` moved after its feeders."""
        streams = super().streams
        if UNIFIED_STREAM in streams and next(reversed(streams)) != UNIFIED_STREAM:
            streams[UNIFIED_STREAM] = streams.pop(UNIFIED_STREAM)
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
        try:
            self.start_read_ahead()
            self.sync_all()
        finally:
            if self.read_ahead is not None:
                self.read_ahead.close()
                self.read_ahead = None
            self.flush_messages()
        if self.failures:
            # Each problem in full, last: the last line is all Meltano shows of a failure.
            self.logger.error(
                "Sync incomplete: %d problem(s). Everything else was read, emitted and its "
                "state saved:",
                len(self.failures),
            )
            for failure in self.failures:
                self.logger.error("%s", Redactor.scrub(str(failure)))
            raise SyncIncompleteError(self.failures)

    def _handle_termination(self, signum: int, frame: FrameType | None) -> None:
        """SIGTERM/SIGINT: write the state of what was emitted, then exit 128 + signal.

        The SDK exits 0, which tells an orchestrator the run succeeded. The workers stop
        before their next request (``sync_all_or_fail``'s ``finally``).
        """
        try:
            self.write_message(StateMessage(value=self.state))
            self.flush_messages()
        finally:
            name = signal.Signals(signum).name
            self.logger.warning(
                "Stopped by %s: the state of everything emitted is saved; the next run "
                "continues from it.",
                name,
            )
            sys.exit(128 + signum)

    def start_read_ahead(self) -> None:
        """With ``concurrency`` > 1, start reading the partitions of every stream to sync."""
        concurrency = int(self.config.get("concurrency", 8))
        if concurrency <= 1:
            return
        streams = [
            stream
            for stream in self.streams.values()
            if isinstance(stream, AuditLogStream)
            and (stream.selected or stream.has_selected_descendents)
        ]
        if streams:
            self.read_ahead = ReadAhead(concurrency)
            self.read_ahead.plan(streams)

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
            (stream, stream.check_connections())
            for stream in self.streams.values()
            if hasattr(stream, "check_connections")
        ]
        checks = [check for _, stream_checks in results for check in stream_checks]
        problems = [check.problem for check in checks if check.problem]
        for check in checks:
            if check.problem is None:
                self.logger.info("Connection test: %s: OK.", check.what)
        if problems:  # one line for all of them, the last one
            self.logger.error(
                "Connection test failed (%d of %d checks): %s",
                len(problems),
                len(checks),
                " | ".join(problems),
            )
            return False
        emitted = 0
        for stream, stream_checks in results:
            sample = next((check.records[0] for check in stream_checks if check.records), None)
            if sample is not None:
                stream.selected = True
                stream._write_schema_message()  # as the SDK's own test does
                stream._write_record_message(sample)
                emitted += 1
        none = "" if emitted else " No event on the probed pages, so no RECORD was written."
        self.logger.info(
            "Connection test passed: %d checks OK (%s).%s",
            len(checks),
            ", ".join(getattr(stream, "provider_label", stream.name) for stream, _ in results),
            none,
        )
        return True

    @classmethod
    def cb_test(
        cls,
        ctx: click.Context,
        param: click.Option,
        value: str,
    ) -> None:
        """``--test``: the connection test, exit 0 only when every check passed.

        ``--test=schema`` stays the SDK's (SCHEMA messages only, no request).
        """
        if value in (CliTestOptionValue.Disabled.value, CliTestOptionValue.Schema.value):
            super().cb_test(ctx, param, value)
            return
        config: _ConfigInput = ctx.params.get("config", _ConfigInput())
        settings = dict(config.config)
        for name, limit in PROBE_LIMITS.items():
            value_set = settings.get(name, limit)
            if isinstance(value_set, (int, float)) and not isinstance(value_set, bool):
                settings[name] = min(value_set, limit)
        tap = cls(config=settings, parse_env_config=config.parse_env, validate_config=True)
        ctx.exit(0 if tap.check_connections() else EXIT_PROVIDER)

    @classmethod
    def invoke(  # type: ignore[override]
        cls,
        *,
        about: bool = False,
        about_format: str | None = None,
        config: _ConfigInput | None = None,
        state: t.IO[str] | None = None,
        catalog: t.IO[str] | None = None,
    ) -> None:
        """Run a sync: the SDK's ``Tap.invoke``, with readable errors for bad input files.

        ``Tap.sync_all`` is final in the SDK, so the failure check lives here.
        """
        PluginBase.invoke.__func__(cls, about=about, about_format=about_format)  # type: ignore[attr-defined]
        cls.print_version(print_fn=cls.logger.info)
        config = config or _ConfigInput()
        tap = cls(
            config=config.config,
            state=_load_json_file(state, "--state"),
            catalog=_load_json_file(catalog, "--catalog"),
            parse_env_config=config.parse_env,
            validate_config=True,
        )
        tap.sync_all_or_fail()


def _load_json_file(handle: t.IO[str] | None, option: str) -> dict | None:
    """Read a --state or --catalog file; a broken one is a ConfigError, not a traceback."""
    if handle is None:
        return None
    text = handle.read()
    if not text.strip():
        return {}
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise ConfigError(f"The {option} file is not valid JSON ({exc}).") from None
    if not isinstance(value, dict):
        raise ConfigError(f"The {option} file must hold a JSON object.")
    return value


def _coerce_numbers(config: dict[str, t.Any], schema: Mapping[str, t.Any]) -> None:
    """Turn number settings read from the environment (strings) into floats, in place."""
    for key, value in list(config.items()):
        prop = schema.get("properties", {}).get(key, {})
        kinds = prop.get("type", [])
        if isinstance(value, dict):
            _coerce_numbers(value, prop)
        elif isinstance(value, str) and "number" in (kinds if isinstance(kinds, list) else [kinds]):
            with contextlib.suppress(ValueError):  # else validation names the setting
                config[key] = float(value)


def _register_secrets(config: Mapping[str, t.Any]) -> None:
    for provider in all_providers():
        block = config.get(provider.key)
        if not isinstance(block, dict):
            continue
        for prop in provider.settings:
            if prop.to_dict()[prop.name].get("secret"):
                Redactor.register(block.get(prop.name))


def validate_settings(config: Mapping[str, t.Any]) -> list[str]:
    """All problems with the settings, each one line that names the setting."""
    schema = TapAuditLogs.config_jsonschema
    problems = [
        _describe(error)
        for error in sorted(Draft7Validator(schema).iter_errors(dict(config)), key=str)
    ]
    problems += _check_values(config)
    return problems


def _describe(error: ValidationError) -> str:
    """One line for a JSON-schema error; never quotes a value (it could be a secret)."""
    path = ".".join(str(p) for p in error.absolute_path)
    expected = error.validator_value
    if error.validator == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        where = f"in `{path}`" if path else "at the top level"
        known = ", ".join(sorted(error.schema.get("properties", {})))
        return f"unknown setting(s) {', '.join(extra)} {where} (known: {known})"
    if error.validator == "type":
        kinds = expected if isinstance(expected, list) else [expected]
        kinds = [k for k in kinds if k != "null"]
        return f"setting `{path}` must be of type {' or '.join(kinds)}"
    if error.validator == "required":
        return f"setting `{path}` is missing a required value: {error.message}"
    return f"setting `{path}` is invalid ({error.validator} {expected!r})"


#: Settings the SDK adds for its capabilities (stream maps, flattening...).
_SDK_SETTINGS = (
    "stream_maps",
    "stream_map_config",
    "faker_config",
    "flattening_enabled",
    "flattening_max_depth",
    "flattening_max_key_length",
    "flattening_separator",
    "batch_config",
)


def _check_values(config: Mapping[str, t.Any]) -> list[str]:
    """Checks JSON schema does not do: date-times, URLs, ranges, lists."""
    problems = []
    known = set(TapAuditLogs.config_jsonschema["properties"]) | set(_SDK_SETTINGS)
    for name in sorted(set(config) - known):
        if name.startswith("_"):
            continue  # private keys some orchestrators add
        close = difflib.get_close_matches(name, sorted(known), n=1)
        hint = f"; did you mean `{close[0]}`?" if close else ""
        problems.append(f"unknown setting `{name}` at the top level{hint}")
    if config.get("batch_config"):
        problems.append(
            "setting `batch_config` is not supported: BATCH files would be announced after "
            "the STATE that covers them, so a killed run could skip events; remove it"
        )
    start = config.get("start_date")
    if isinstance(start, str):
        try:
            start_ns = parse_instant(start)
        except ValueError as exc:
            problems.append(f"setting `start_date`: {exc}")
        else:
            if start_ns > now_instant():
                problems.append(f"setting `start_date` is in the future ({start}); nothing to read")
    for name, minimum in MINIMUMS.items():
        value = config.get(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value < minimum:
            problems.append(f"setting `{name}` must be at least {minimum}")
    for provider in all_providers():
        block = config.get(provider.key)
        if not isinstance(block, dict):
            continue
        for name, value in block.items():
            if name.endswith("_url") and isinstance(value, str) and not _is_http_url(value):
                problems.append(
                    f"setting `{provider.key}.{name}` must be an http(s) URL, got {value!r}"
                )
        rate = block.get("max_requests_per_second")
        if isinstance(rate, (int, float)) and rate <= 0:
            problems.append(f"setting `{provider.key}.max_requests_per_second` must be more than 0")
        lookback = block.get("lookback_seconds")
        if isinstance(lookback, int) and lookback < 0:
            problems.append(f"setting `{provider.key}.lookback_seconds` must be 0 or more")
        for name, value in block.items():
            if isinstance(value, list) and not [v for v in value if str(v).strip()]:
                problems.append(
                    f"setting `{provider.key}.{name}` is an empty list; remove it to mean 'all'"
                )
    return problems


def _is_http_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def main() -> None:
    """Console entry point: run the SDK's CLI, turning user errors into one clean line."""
    try:
        TapAuditLogs.cli()
    except AuditLogsError as error:
        message = Redactor.scrub(str(error))
        if not isinstance(error, SyncIncompleteError):  # that one was reported by the tap
            logging.getLogger(TapAuditLogs.name).error("%s", message)
        sys.exit(error.exit_code)
