"""The command line: ``tap-auditlogs`` and the SDK's CLI callbacks that the tap changes.

* ``invoke`` (a sync): readable errors for bad ``--state``/``--catalog`` files, and a failure
  check after the sync (``Tap.sync_all`` is final in the SDK, so it lives here).
* ``cb_test`` (``--test``): the connection test with short retries, exit 0 only when every
  check passed; ``--test=schema`` stays the SDK's.
* SIGTERM/SIGINT: the state of what was emitted, then exit 128 + signal (the SDK exits 0).
* ``run``: user errors end as one clean line and the error's exit code, no traceback; any
  other exception's traceback is printed with secrets scrubbed.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import typing as t

import orjson
from singer_sdk import Tap
from singer_sdk.singerlib import StateMessage
from singer_sdk.tap_base import CliTestOptionValue

from tap_auditlogs.errors import EXIT_PROVIDER, AuditLogsError, ConfigError, SyncIncompleteError
from tap_auditlogs.redaction import Redactor, guard_uncaught_exceptions
from tap_auditlogs.sdk import TapHooks

if t.TYPE_CHECKING:
    from types import FrameType

    import click

#: The connection test (``--test``) answers within seconds: at most these retry settings.
#: After SIGTERM/SIGINT, the state and the last lines get this long to go out (on_signal).
SIGNAL_EXIT_DEADLINE_S = 10.0
PROBE_LIMITS = {"max_retries": 2, "backoff_base_seconds": 0.5, "max_retry_wait": 10}


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
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise ConfigError(f"The {option} file is not valid JSON ({exc}).") from None
    if not isinstance(value, dict):
        raise ConfigError(f"The {option} file must hold a JSON object.")
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
