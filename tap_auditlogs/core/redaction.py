"""Secrets never reach any output: ``Redactor`` scrubs them from every log line and message.

Secret settings (tokens, passwords, client secrets) are registered when the tap starts,
tokens obtained at run time (Torq's access token) the moment they arrive, the Basic
``base64(id:secret)`` of every Basic authentication when its authenticator is made.

Each secret is registered in every form it can take in text (``wire_forms``: raw, JSON-,
repr-, URL- and HTML-escaped), and any ``FRAGMENT_CHARS`` characters of any form are scrubbed
too: a server that echoes a truncated token, or a message cut inside one, shows nothing of
it. Scrub first, cut after: ``scrub`` works on whole texts. Uncaught exceptions are printed
scrubbed as well (``guard_uncaught_exceptions``).
"""

from __future__ import annotations

import base64
import html
import json
import logging
import sys
import threading
import typing as t
import urllib.parse

if t.TYPE_CHECKING:
    from types import TracebackType

#: Shortest secret that is registered (shorter ones would scrub ordinary words).
MIN_SECRET_CHARS = 4
#: Any run of this many characters of a secret is scrubbed wherever it appears.
FRAGMENT_CHARS = 8
#: What a scrubbed secret or piece of one is replaced with.
MASK = "***"


def wire_forms(secret: str) -> set[str]:
    """``secret`` as it may appear in text: raw, and JSON-, repr-, URL- and HTML-escaped."""
    json_form = json.dumps(secret, ensure_ascii=False)[1:-1]
    return {
        secret,
        json_form,
        json_form.replace("/", "\\/"),
        json.dumps(secret)[1:-1],
        repr(secret)[1:-1],
        repr(secret.encode())[2:-1],
        urllib.parse.quote(secret, safe=""),
        urllib.parse.quote(secret),
        urllib.parse.quote_plus(secret),
        html.escape(secret),
    }


def basic_credentials(user: str, password: str) -> str:
    """The value of ``Authorization: Basic <value>`` for ``user`` and ``password``."""
    return base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


class Redactor(logging.Filter):
    """Replaces every registered secret, and any piece of one, with ``***``."""

    #: Whole forms shorter than ``FRAGMENT_CHARS`` (longer ones are covered by fragments).
    _short: t.ClassVar[frozenset[str]] = frozenset()
    #: Every ``FRAGMENT_CHARS``-character slice of every form of every secret (only ever
    #: grown, in one C-level ``update``: threads that look pieces up meanwhile need no lock).
    _fragments: t.ClassVar[set[str]] = set()
    _lock: t.ClassVar[threading.Lock] = threading.Lock()

    @classmethod
    def register(cls, *values: object) -> None:
        """Remember secrets to scrub (config values, tokens obtained at run time)."""
        forms = {
            form
            for value in values
            if isinstance(value, str) and len(value) >= MIN_SECRET_CHARS
            for form in wire_forms(value)
        }
        if not forms:
            return
        n = FRAGMENT_CHARS
        with cls._lock:
            cls._short = cls._short | {form for form in forms if len(form) < n}  # iterated
            cls._fragments.update(
                {form[i : i + n] for form in forms for i in range(len(form) - n + 1)}
            )

    @classmethod
    def register_basic(cls, user: str, password: str) -> None:
        """Remember ``password`` and the Basic credentials it is sent as."""
        cls.register(password, basic_credentials(user, password))

    @classmethod
    def scrub(cls, text: str) -> str:
        """Return ``text`` with every known secret, and any piece of one, replaced."""
        short, fragments, n = cls._short, cls._fragments, FRAGMENT_CHARS
        spans = [(i, i + n) for i in range(len(text) - n + 1) if text[i : i + n] in fragments]
        for form in short:
            start = text.find(form)
            while start != -1:
                spans.append((start, start + len(form)))
                start = text.find(form, start + 1)
        if not spans:
            return text
        parts: list[str] = []
        shown = 0  # text[:shown] is in parts
        for start, end in sorted(spans):
            if start > shown or not parts:
                parts += [text[shown:start], MASK]
            shown = max(shown, end)
        parts.append(text[shown:])
        return "".join(parts)

    def filter(self, record: logging.LogRecord) -> bool:
        """Scrub the formatted message and any traceback of a log record."""
        if not (self._fragments or self._short):
            return True
        record.msg = self.scrub(record.getMessage())
        record.args = None
        if record.exc_info:
            formatter = logging.Formatter()
            record.exc_text = self.scrub(formatter.formatException(record.exc_info))
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = self.scrub(record.exc_text)
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


def print_scrubbed_exception(
    exc_type: type[BaseException],
    exc_value: BaseException,
    exc_traceback: TracebackType | None,
) -> None:
    """Print an uncaught exception's traceback to stderr, secrets scrubbed."""
    text = logging.Formatter().formatException((exc_type, exc_value, exc_traceback))
    sys.stderr.write(Redactor.scrub(text) + "\n")


def _print_scrubbed_thread_exception(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit or args.exc_value is None:
        return
    sys.stderr.write(f"Exception in thread {args.thread.name if args.thread else '?'}:\n")
    print_scrubbed_exception(args.exc_type, args.exc_value, args.exc_traceback)


def guard_uncaught_exceptions() -> None:
    """Print uncaught exceptions (main thread and others) scrubbed, not as Python does.

    The SDK sets its own hook once its command runs (it logs, through ``Redactor``);
    this one covers what happens before, e.g. ``--test``, which runs while the command
    line is parsed.
    """
    sys.excepthook = print_scrubbed_exception
    threading.excepthook = _print_scrubbed_thread_exception
