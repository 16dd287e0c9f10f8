"""Secrets never reach any output: ``Redactor`` scrubs them from every log line and message.

Secret settings (tokens, passwords, client secrets) are registered when the tap starts,
tokens obtained at run time (Torq's access token) the moment they arrive.
"""

from __future__ import annotations

import logging
import typing as t


class Redactor(logging.Filter):
    """Replaces every registered secret with ``***`` in log records and messages."""

    _secrets: t.ClassVar[set[str]] = set()

    @classmethod
    def register(cls, *values: object) -> None:
        """Remember secrets to scrub (config values, tokens obtained at run time)."""
        for value in values:
            if isinstance(value, str) and len(value) >= 4:
                cls._secrets.add(value)

    @classmethod
    def scrub(cls, text: str) -> str:
        """Return ``text`` with every known secret replaced."""
        for secret in sorted(cls._secrets, key=len, reverse=True):
            if secret in text:
                text = text.replace(secret, "***")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        """Scrub the formatted message and any traceback of a log record."""
        if not self._secrets:
            return True
        record.msg = self.scrub(record.getMessage())
        record.args = None
        if record.exc_info:
            formatter = logging.Formatter()
            record.exc_text = self.scrub(formatter.formatException(record.exc_info))
            record.exc_info = None
        if record.stack_info:
            record.stack_info = self.scrub(record.stack_info)
        return True

    @classmethod
    def install(cls) -> None:
        """Attach the filter to every handler there is now (idempotent)."""
        loggers: list[logging.Logger] = [logging.getLogger()]
        loggers += [
            logger
            for logger in logging.root.manager.loggerDict.values()
            if isinstance(logger, logging.Logger)
        ]
        for logger in loggers:
            for handler in logger.handlers:
                if not any(isinstance(f, cls) for f in handler.filters):
                    handler.addFilter(cls())
