"""The command line: ``tap-auditlogs`` and the SDK's CLI callbacks that the tap changes.

* ``cb_config`` and ``invoke``: one line naming the file (and where in it) for a bad
  ``--config``, ``--state`` or ``--catalog`` file; a failure check after the sync
  (``Tap.sync_all`` is final in the SDK, so it lives here).
* ``cb_test`` (``--test``): the connection test with short retries, exit 0 only when every
  check passed; ``--test=schema`` stays the SDK's. ``--help`` describes it.
* SIGTERM/SIGINT: the state of what was emitted, then exit 128 + signal (the SDK exits 0).
* ``run``: user errors end as one clean line and the error's exit code, no traceback; any
  other exception's traceback is printed with secrets scrubbed.
"""

from __future__ import annotations

import decimal
import json
import logging
import os
import signal
import sys
import threading
import typing as t

import click
import orjson
from singer_sdk import Tap
from singer_sdk.singerlib import StateMessage
from singer_sdk.tap_base import CliTestOptionValue

from tap_auditlogs.core.errors import (
    EXIT_PROVIDER,
    AuditLogsError,
    ConfigError,
    SyncIncompleteError,
)
from tap_auditlogs.core.redaction import Redactor, guard_uncaught_exceptions
from tap_auditlogs.streams.sdk import TapHooks

if t.TYPE_CHECKING:
    from types import FrameType

#: The connection test (``--test``) answers within seconds: at most these retry settings.
#: After SIGTERM/SIGINT, the state and the last lines get this long to go out (on_signal).
SIGNAL_EXIT_DEADLINE_S = 10.0
PROBE_LIMITS = {"max_retries": 2, "backoff_base_seconds": 0.5, "max_retry_wait": 10}
#: What a JSON file that is not an object holds, in JSON's words.
JSON_KINDS = {
    list: "an array",
    str: "a string",
    int: "a number",
    float: "a number",
    decimal.Decimal: "a number",
    bool: "true or false",
    type(None): "null",
}
#: ``--help`` of ``--test``: the SDK's text describes its own test (sync one record).
TEST_OPTION_HELP = (
    "Use --test to test the connection to every configured provider (one cheap request per "
    "provider and organization, a verdict for each; exit 0 only when all passed). Use "
    "--test=schema to write the SCHEMA messages only, with no request."
)


class CommandLineTap(TapHooks):
    """A ``Tap`` whose sync fails when a partition failed, with the tap's CLI callbacks."""

    def sync_all_or_fail(self) -> None:
        """Sync every selected stream, then fail if any partition could not be read."""
        raise NotImplementedError

    def check_connections(self) -> bool:
        """The connection test: True when every check passed."""
        raise NotImplementedError

    def flush_messages(self) -> None:
        """Write out buffered messages."""

    @classmethod
    def get_singer_command(cls) -> click.Command:
        """The SDK's command, with ``--help`` describing this tap's ``--test``."""
        command = super().get_singer_command()
        for option in command.params:
            if option.name == "test" and isinstance(option, click.Option):
                option.help = TEST_OPTION_HELP
        return command

    @classmethod
    def cb_config(cls, ctx: click.Context, param: click.Option, value: tuple[str, ...]) -> t.Any:
        """``--config``: the SDK's, with one line naming a file that is missing, unreadable,
        not JSON (line and column) or not an object, instead of a traceback."""
        for path in value:
            if path != "ENV":
                _read_config_file(path)
        return super().cb_config(ctx, param, value)

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
        settings, parse_env = _config_option(ctx.params.get("config"))
        for name, limit in PROBE_LIMITS.items():
            value_set = settings.get(name, limit)
            if isinstance(value_set, (int, float)) and not isinstance(value_set, bool):
                settings[name] = min(value_set, limit)
        tap = cls(config=settings, parse_env_config=parse_env, validate_config=True)
        ctx.exit(0 if tap.check_connections() else EXIT_PROVIDER)

    @classmethod
    def invoke(  # type: ignore[override]
        cls,
        *,
        about: bool = False,
        about_format: str | None = None,
        config: t.Any = None,
        state: t.IO[str] | None = None,
        catalog: t.IO[str] | None = None,
    ) -> None:
        """Run a sync: the SDK's ``Tap.invoke``, with readable errors for bad input files.

        ``Tap.sync_all`` is final in the SDK, so the failure check lives here.
        """
        super(Tap, cls).invoke(about=about, about_format=about_format)  # --about, as Tap does
        cls.print_version(print_fn=cls.logger.info)
        settings, parse_env = _config_option(config)
        tap = cls(
            config=settings,
            state=_load_json_file(state, "--state"),
            catalog=_load_json_file(catalog, "--catalog"),
            parse_env_config=parse_env,
            validate_config=True,
        )
        tap.sync_all_or_fail()

    def stop_on_signals(self) -> None:
        """SIGTERM and SIGINT end a run with its state saved (``on_signal``), not as the
        SDK's handlers do (exit 0, which tells an orchestrator the run succeeded)."""
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGTERM, signal.SIGINT):
                signal.signal(signum, self.on_signal)

    def on_signal(self, signum: int, frame: FrameType | None) -> None:
        """SIGTERM/SIGINT: write the state of what was emitted, then exit 128 + signal.

        The SDK exits 0, which tells an orchestrator the run succeeded. The workers stop
        before their next request (``sync_all_or_fail``'s ``finally``). A caller that
        stopped reading our output (``meltano config test`` stops at the first RECORD,
        then waits for the exit) would block these writes forever: the process ends
        ``SIGNAL_EXIT_DEADLINE_S`` after the signal whatever is still being written.
        """
        deadline = threading.Timer(SIGNAL_EXIT_DEADLINE_S, os._exit, args=(128 + signum,))
        deadline.daemon = True
        deadline.start()
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


def _load_json_file(handle: t.IO[str] | None, option: str) -> dict | None:
    """Read a --state or --catalog file; a broken one is a ConfigError, not a traceback."""
    if handle is None:
        return None
    text = handle.read()
    if not text.strip():
        return {}
    return _json_object(text, option, getattr(handle, "name", "?"), orjson.loads)


def _read_config_file(path: str) -> dict:
    """A ``--config`` file's settings, read as the SDK reads them (decimals exact); a file
    that is missing, unreadable, not JSON or not an object is a ConfigError naming it."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        raise ConfigError(
            f"The --config file {path} does not exist (run from {os.getcwd()}); give the path "
            "of a JSON settings file, or ENV to read the settings from the environment."
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ConfigError(f"The --config file {path} cannot be read ({reason}).") from None
    return _json_object(
        text, "--config", path, lambda data: json.loads(data, parse_float=decimal.Decimal)
    )


def _json_object(
    text: str, option: str, path: str, loads: t.Callable[[str], t.Any]
) -> dict[str, t.Any]:
    """``text`` of an ``option`` file as a JSON object, else a ConfigError naming the file."""
    try:
        value = loads(text)
    except json.JSONDecodeError as exc:  # orjson's error is one too
        raise ConfigError(
            f"The {option} file is not valid JSON ({path}, line {exc.lineno} column "
            f"{exc.colno}: {exc.msg.split(': line ')[0]})."
        ) from None
    if not isinstance(value, dict):
        holds = JSON_KINDS.get(type(value), type(value).__name__)
        raise ConfigError(f"The {option} file must hold a JSON object ({path} holds {holds}).")
    return value


def _config_option(option: t.Any) -> tuple[dict[str, t.Any], bool]:
    """The settings and the "from the environment" flag of the SDK's ``--config`` option."""
    return dict(getattr(option, "config", None) or {}), bool(getattr(option, "parse_env", False))


def run(tap_class: type[Tap]) -> None:
    """Run the SDK's CLI of ``tap_class``, turning user errors into one clean line."""
    guard_uncaught_exceptions()
    try:
        tap_class.cli()
    except AuditLogsError as error:
        message = Redactor.scrub(str(error))
        if not isinstance(error, SyncIncompleteError):  # that one was reported by the tap
            logging.getLogger(tap_class.name).error("%s", message)
        sys.exit(error.exit_code)
