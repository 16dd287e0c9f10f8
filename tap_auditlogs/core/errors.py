"""User-facing errors: one clear line each, never a traceback, never a secret."""

from __future__ import annotations

#: Exit codes. 2: the configuration is wrong. 1: a provider refused or broke.
#: 3: a provider's quota ran out; the state is saved and the next run continues.
#: 4: everything was read, but a resumed partition's events older than the provider's
#: ``retention_days`` were gone before this run (a retention gap, coverage.py).
#: 141 (128 + SIGPIPE, as a shell reports a broken pipe): stdout was closed, the target died.
EXIT_CONFIG = 2
EXIT_PROVIDER = 1
EXIT_RESUME_LATER = 3
EXIT_RETENTION_GAP = 4
EXIT_OUTPUT_CLOSED = 141


class AuditLogsError(Exception):
    """An error the user can act on; its message is shown as is."""

    exit_code = EXIT_PROVIDER


class ConfigError(AuditLogsError):
    """The configuration or state given to the tap is wrong."""

    exit_code = EXIT_CONFIG


class ProviderError(AuditLogsError):
    """A provider answered with an error that retrying will not fix.

    ``whole_provider`` is True when every partition of the provider will fail the
    same way (bad credentials), so the tap stops asking that provider.
    """

    def __init__(
        self, message: str, *, whole_provider: bool = False, status: int | None = None
    ) -> None:
        """Create the error (``status``: the HTTP status that caused it, if any)."""
        super().__init__(message)
        self.whole_provider = whole_provider
        self.status = status

    @property
    def summary(self) -> str:
        """What happened, without the advice: messages read "what happened. what to do."."""
        return str(self).split(". ", 1)[0].rstrip(".")


class QuotaExhaustedError(ProviderError):
    """The provider asked us to wait longer than ``max_retry_wait``."""

    exit_code = EXIT_RESUME_LATER

    def __init__(self, message: str, *, wait_seconds: float) -> None:
        """Create the error."""
        super().__init__(message, whole_provider=True)
        self.wait_seconds = wait_seconds


class TransientError(Exception):
    """A failure worth retrying (429, 5xx, dropped connection, broken body)."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        """Create the error."""
        super().__init__(message)
        self.retry_after = retry_after


class SyncIncompleteError(AuditLogsError):
    """Some partitions could not be read; the others were, and their state is saved."""

    def __init__(self, failures: list[ProviderError]) -> None:
        """Summarise the failures of one run."""
        lines = [str(f) for f in failures]
        super().__init__("\n".join(lines))
        self.failures = failures
        self.exit_code = (
            EXIT_RESUME_LATER
            if all(isinstance(f, QuotaExhaustedError) for f in failures)
            else EXIT_PROVIDER
        )


class RetentionGapError(AuditLogsError):
    """Events expired at the provider before a resumed run could read them (coverage.py)."""

    exit_code = EXIT_RETENTION_GAP


class OutputClosedError(SystemExit):
    """stdout was closed (the target died or stopped reading): nothing more can go out.

    A ``SystemExit``, so nothing on the way out (the SDK's sync, click) reports it as its
    own failure or prints a traceback: the writer says it in one line (output/writer.py).
    """

    def __init__(self) -> None:
        """Exit with ``EXIT_OUTPUT_CLOSED``."""
        super().__init__(EXIT_OUTPUT_CLOSED)


class ReadCancelledError(Exception):
    """A read-ahead worker stops: its provider failed as a whole, or the run is ending."""
