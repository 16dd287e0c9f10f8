"""What an API answered: the decoded answer, and the words for what went wrong with one.

Error texts name the status, the Content-Type and the API's own message, never headers, full
URLs or secrets (``Redactor``).
"""

from __future__ import annotations

import contextlib
import email.utils
import socket
import time
import typing as t
from datetime import datetime, timedelta, timezone

import orjson
import requests

from tap_auditlogs.core.errors import ProviderError, TransientError
from tap_auditlogs.core.redaction import Redactor
from tap_auditlogs.core.text import plural

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterator

#: Characters of an unreadable body quoted in its error message.
BODY_EXCERPT_CHARS = 80
#: Characters (bytes) of a body that are scrubbed, before the excerpt quoted is cut from them.
SCRUBBED_BODY_CHARS = 16384
#: Keys of the providers' error bodies that hold the message, in order of preference.
ERROR_MESSAGE_KEYS = ("error", "message", "error_description", "detail", "title")


class ApiResponse:
    """A decoded answer. SDK paginators read it as they read a response: ``json()``,
    ``headers``, ``status_code``, ``elapsed``."""

    __slots__ = ("elapsed", "headers", "page", "payload", "status_code")

    def __init__(self, response: requests.Response, payload: t.Any, page: t.Any = None) -> None:
        """Keep what the tap reads of ``response``; the body is decoded already."""
        self.payload = payload
        #: ``parse(payload)`` when the caller gave a parser (e.g. records and total).
        self.page = page
        self.headers = response.headers
        self.status_code = response.status_code
        self.elapsed: timedelta = response.elapsed

    def json(self) -> t.Any:
        """The decoded body (decoded once, when it arrived)."""
        return self.payload

    @property
    def links(self) -> dict[str, dict[str, str]]:
        """The ``Link`` header by ``rel``, as ``requests.Response.links`` gives it."""
        header = self.headers.get("Link")
        if not header:
            return {}
        links = requests.utils.parse_header_links(header)
        return {link.get("rel") or link.get("url", ""): link for link in links}


def retry_after_seconds(response: requests.Response | None) -> float | None:
    """Seconds the server asks us to wait (``Retry-After`` in seconds or as an HTTP date)."""
    if response is None:
        return None
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def undecodable_body(response: requests.Response, *, quote: bool = True) -> str:
    """Why a successful answer's body could not be read, naming what came instead.

    The Content-Type and the first 80 characters of the body (secrets scrubbed) tell a
    maintenance page or a proxy's login page from a cut-off answer. ``quote=False`` leaves
    the body out (a token endpoint's answer may hold a secret not known yet).
    """
    kind = response.headers.get("Content-Type") or "no Content-Type"
    encoding = (response.headers.get("Content-Encoding") or "").strip().lower()
    text = response.content[:SCRUBBED_BODY_CHARS].decode("utf-8", "replace")
    start = " ".join(Redactor.scrub(text).split())[:BODY_EXCERPT_CHARS] if quote else ""
    size = len(response.content)
    if start:
        shown = f"{plural(size, 'byte')}, starting {start!r}"
    else:
        shown = plural(size, "byte") if size else "an empty body"
    if encoding not in ("", "identity"):
        return (
            f"the {encoding}-compressed response body is corrupt or cut off: it decompressed "
            f"to text that is not JSON ({kind}; {shown})"
        )
    if "json" in kind.lower():
        return f"the response body is not valid JSON, cut off or malformed ({kind}; {shown})"
    page = " (an HTML page: maintenance, or a proxy's or login page?)" if "html" in kind else ""
    return f"the API answered with {kind} instead of JSON{page} ({shown})"


def api_error_message(
    response: requests.Response, keys: tuple[str, ...] = ERROR_MESSAGE_KEYS
) -> str:
    """The API's own error text from a response body, short and scrubbed."""
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        text = " ".join(Redactor.scrub(response.text[:SCRUBBED_BODY_CHARS]).split())
        return text[:200] if text and "<html" not in text.lower() else ""
    return Redactor.scrub(_message_from_body(body, keys)[:SCRUBBED_BODY_CHARS])[:300]


def _message_from_body(body: object, keys: tuple[str, ...]) -> str:
    """Find the message in the error bodies the providers use."""
    if isinstance(body, dict):
        for key in keys:
            value = body.get(key)
            if isinstance(value, str) and value:
                return value
            if isinstance(value, dict):
                return _message_from_body(value, keys)
        # Validation errors (ConfigCat): {"field": ["message", ...]}
        parts = [
            f"{key}: {'; '.join(str(m) for m in value)}"
            for key, value in body.items()
            if isinstance(value, list) and value
        ]
        if parts:
            return ", ".join(parts)
    if isinstance(body, str):
        return body
    return ""


def exception_kind(exc: Exception) -> str:
    """Name a connection failure without quoting its text (which holds the URL)."""
    reason = exc
    while reason.__context__ is not None and reason.__context__ is not reason:
        reason = t.cast("Exception", reason.__context__)
    return type(exc).__name__ if reason is exc else f"{type(exc).__name__}: {type(reason).__name__}"


@contextlib.contextmanager
def transport_errors(
    read_timeout: float,
    unsendable: Callable[[str], str],
    on_connection_error: Callable[[Exception], None] = lambda _: None,
) -> Iterator[None]:
    """What ``requests`` raises while a request is sent, as the tap's errors (the one
    mapping, for the API client and Torq's token requests): no answer in time or a broken
    connection is a ``TransientError`` (retried); a request that cannot be sent at all is a
    ``ProviderError`` that stops the provider, worded by ``unsendable`` from the kind of
    failure (never the exception's text: it may quote a URL or a secret).
    ``on_connection_error`` may raise its own error first (an unreachable host).
    """
    try:
        yield
    except requests.Timeout:
        raise TransientError(f"no answer within {read_timeout:.0f} s") from None
    except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
        on_connection_error(exc)
        raise TransientError(f"connection failed ({exception_kind(exc)})") from None
    except requests.exceptions.ContentDecodingError:
        problem = "the compressed response body is corrupt: it could not be decompressed"
        raise TransientError(problem) from None
    except (requests.RequestException, ValueError, TypeError) as exc:
        raise ProviderError(unsendable(exception_kind(exc)), whole_provider=True) from None


#: Connection failures that say the host cannot be reached at all, in the words for them.
UNREACHABLE = (
    (ConnectionRefusedError, "refused the connection (nothing listens on that port)"),
    (socket.gaierror, "does not resolve (no such host name, or no DNS from here)"),
)


def unreachable_reason(exc: Exception) -> str | None:
    """Why a connection failure means the host cannot be reached: refused, or a name that
    does not resolve; None for any other failure (a timeout, a dropped connection, a
    proxy's: those may pass)."""
    if isinstance(exc, requests.exceptions.ProxyError):
        return None  # the proxy, not the API's host: its own settings
    reason: BaseException | None = exc
    seen: set[int] = set()
    while reason is not None and id(reason) not in seen:
        seen.add(id(reason))
        for kind, words in UNREACHABLE:
            if isinstance(reason, kind):
                return words
        reason = reason.__context__
    return None


# ------------------------------------------------ answers that retrying will not change

#: Attempts of a request whose answer has the wrong shape: one retry, in case a proxy or a
#: cache served something else once; the same shape twice means the API changed.
SHAPE_TRIES = 2


class UnexpectedShapeError(ValueError):
    """A decoded answer lacks a documented field, or has it as another type.

    Raised by the providers' ``parse_page`` with the field named (``data``, ``paging``,
    ``results``...). Unlike a ``TransientError`` it is retried once only (``SHAPE_TRIES``):
    the same API answers the same shape again.
    """

    def __init__(self, field: str, problem: str = "is missing") -> None:
        """``field`` (as the API names it) ``problem`` (``is missing``, ``is null``...)."""
        super().__init__(f"`{field}` {problem}")
        self.field = field


def shape_problem(detail: str) -> str:
    """The words for an answer without the documented shape: ``detail`` names the field."""
    return f"the response body does not have the documented shape: {detail}"


def shape_changed(where: str, detail: str, tries: int) -> str:
    """The error after the same wrong shape came ``tries`` times: the API changed."""
    return (
        f"{where}: {shape_problem(detail)} (the same in {tries} attempts). The API changed "
        "what it sends, so retrying will not help; the state up to the last page is saved. "
        "Upgrade tap-auditlogs, or report the field named here."
    )


def type_name(value: object) -> str:
    """A JSON value's type in the API's terms (``null``, ``a string``, ``an object``...)."""
    names = {type(None): "null", bool: "a boolean", str: "a string", dict: "an object"}
    names.update({list: "a list", int: "a number", float: "a number"})
    return names.get(type(value), type(value).__name__)


def list_field(payload: object, key: str, *, absent_when_empty: bool = False) -> list:
    """``payload[key]``, the page's list of events, or ``UnexpectedShapeError`` naming it.

    ``absent_when_empty``: the API documents that it leaves the key out of an empty page
    (missing reads as an empty list; null does not).
    """
    if not isinstance(payload, dict):
        raise UnexpectedShapeError("the body", f"is {type_name(payload)}, not an object")
    if key not in payload:
        if absent_when_empty:
            return []
        raise UnexpectedShapeError(key)
    value = payload[key]
    if not isinstance(value, list):
        raise UnexpectedShapeError(key, f"is {type_name(value)}, not a list")
    for entry in value:
        if not isinstance(entry, dict):
            raise UnexpectedShapeError(f"{key}[]", f"holds {type_name(entry)}, not an object")
    return value


# ------------------------------------------------------------------ JSON bodies

UTF8_BOM = b"\xef\xbb\xbf"


def json_body(content: bytes) -> t.Any:
    """The decoded JSON of a body; a UTF-8 byte order mark before it is skipped."""
    return orjson.loads(content[len(UTF8_BOM) :] if content.startswith(UTF8_BOM) else content)


# ------------------------------------------------------------------ rate limits


def reset_header_seconds(response: requests.Response, header: str) -> float | None:
    """Seconds until the instant a rate-limit reset header names, or None without one.

    Read in every form APIs use: epoch seconds (``1767225600``), seconds to wait (``30``),
    ISO 8601 (``2026-01-01T00:00:00Z``) or an HTTP date.
    """
    value = (response.headers.get(header) or "").strip()
    if not value:
        return None
    now = time.time()
    try:
        number = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, number - now if number > EPOCH_SECONDS_FROM else number)
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, when.timestamp() - now)


#: A reset header's number above this (2001-09-09) is an instant, below it a wait.
EPOCH_SECONDS_FROM = 1_000_000_000
