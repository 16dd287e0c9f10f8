"""Reading a response body within a deadline (``ApiClient`` sends with ``stream=True``).

Hand-written, not ``response.content``: ``requests`` bounds each read of the socket
(``request_timeout``), never the whole body, so a body that trickles in a few bytes a second
holds the run for hours; and it reports a read timeout in mid-body as a ``ConnectionError``.
So the body is read here, one socket read at a time, each limited to what is left of the
deadline (``request_deadline_seconds``), and each failure is named for what it is.
"""

from __future__ import annotations

import time
import typing as t

from urllib3.exceptions import DecodeError, HTTPError, ProtocolError, ReadTimeoutError

from tap_auditlogs.core.errors import TransientError
from tap_auditlogs.core.text import plural
from tap_auditlogs.http.responses import exception_kind

if t.TYPE_CHECKING:
    from collections.abc import Callable

    import requests

#: The most one read of a body takes from the socket.
BODY_READ_BYTES = 64 * 1024
#: An answer still arriving after this long is said once: what the tap waits for.
SLOW_ANSWER_NOTICE_S = 15.0


class BodyLimits(t.NamedTuple):
    """How long one answer may take: each read, and in all from ``started`` (monotonic)."""

    read_timeout_s: float
    deadline_s: float
    started: float


def read_body(
    response: requests.Response,
    limits: BodyLimits,
    still_waiting: Callable[[float, int], None] = lambda _waited, _received: None,
) -> None:
    """Read the whole body into ``response.content``, or raise ``TransientError`` saying
    why not: past the deadline, a stall in mid-body, cut off, corrupt, connection lost.

    ``still_waiting(seconds, bytes)`` runs once when the answer takes longer than
    ``SLOW_ANSWER_NOTICE_S``.
    """
    raw = response.raw
    deadline = limits.started + limits.deadline_s
    chunks: list[bytes] = []
    received = 0
    noticed = False
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TransientError(_too_slow(limits, received))
            _limit_next_read(raw, min(limits.read_timeout_s, left))
            chunk = raw.read1(BODY_READ_BYTES, decode_content=True)
            if not chunk:
                break
            chunks.append(chunk)
            received += len(chunk)
            waited = time.monotonic() - limits.started
            if not noticed and waited >= SLOW_ANSWER_NOTICE_S:
                noticed = True
                still_waiting(waited, received)
    except ReadTimeoutError:
        if time.monotonic() >= deadline:
            raise TransientError(_too_slow(limits, received)) from None
        raise TransientError(
            f"timed out in the middle of the body: no data for {limits.read_timeout_s:.0f} s "
            f"after {plural(received, 'byte')} (request_timeout)"
        ) from None
    except ProtocolError as exc:
        problem = f"the response body was cut off (truncated: {exception_kind(exc)})"
        raise TransientError(problem) from None
    except DecodeError:
        raise TransientError(
            "the compressed response body is corrupt: it could not be decompressed"
        ) from None
    except (HTTPError, OSError) as exc:
        raise TransientError(f"connection failed ({exception_kind(exc)})") from None
    # What ``response.content`` would have read, so every reader of it works as usual.
    response._content = b"".join(chunks)
    response._content_consumed = True  # type: ignore[attr-defined]


def _too_slow(limits: BodyLimits, received: int) -> str:
    return (
        f"the answer did not arrive in full within {limits.deadline_s:.0f} s "
        f"(request_deadline_seconds): {plural(received, 'byte')} came, the rest was still "
        "trickling in"
    )


def _limit_next_read(raw: t.Any, seconds: float) -> None:
    """The next socket read of ``raw`` (a urllib3 response) waits at most ``seconds``.

    urllib3 sets the socket's timeout again for the connection's next request.
    """
    sock = getattr(getattr(raw, "connection", None), "sock", None)
    if sock is not None:
        sock.settimeout(max(seconds, 0.001))
