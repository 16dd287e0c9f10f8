"""One fault injector for every provider: which request fails, and how.

A `FaultRule` picks requests (exact 1-based numbers per provider, or a probability drawn from
a seeded RNG); `FAULT_KINDS` says what each kind does to the answer.  The core asks
`FaultInjector.decide()` once per API request and applies the kind's table row.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import random
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from email.utils import formatdate
from time import time
from typing import Any
from urllib.parse import quote

_DATE_RETRY = re.compile(r"^date:(\d+)$")


@dataclass(frozen=True)
class FaultKind:
    """What one kind of fault does to a request."""

    status: int | None = None  # replace the answer with this status (None: the real answer)
    body: str = "provider"  # replacement: "provider" error body, "html" gateway page, "badjson",
    # "echo" (provider error body) or "echotext" (text/plain) echoing the request's credentials
    drop: bool = False  # close the connection without any response
    truncate: bool = False  # send full headers but only half of the body, then close
    delay: bool = False  # sleep `delay_s` before answering
    #: The real answer, changed: "bom" (a UTF-8 byte order mark before the JSON), "null_list"
    #: / "no_list" (the list of events null / left out), "no_envelope" (the provider's
    #: `optional_envelope` field left out). Answers without that field are left as they are.
    change: str = ""
    trickle: bool = False  # the real answer, its body TRICKLE_BYTES every TRICKLE_EVERY_S
    stall: bool = False  # the real answer: half the body, a pause of `delay_s`, the rest
    reset_only: bool = False  # 429 with only the provider's documented reset header
    #: With `drop`: then nothing listens for `delay_s` (connections are refused, as while a
    #: server restarts), then the emulator serves again on the same port.
    outage: bool = False
    fails: bool = True  # counts toward `max_consecutive_faults`
    doc: str = ""


FAULT_KINDS: dict[str, FaultKind] = {
    "429": FaultKind(status=429, doc="Too Many Requests with Retry-After"),
    "500": FaultKind(status=500, doc="Internal Server Error, provider error body"),
    "502": FaultKind(status=502, body="html", doc="Bad Gateway, HTML page from a proxy"),
    "503": FaultKind(status=503, body="html", doc="Service Unavailable, HTML page from a proxy"),
    "drop": FaultKind(drop=True, doc="connection closed, no response at all"),
    "outage": FaultKind(
        drop=True,
        outage=True,
        doc="connection closed, then connections refused for delay_s, then served again",
    ),
    "slow": FaultKind(delay=True, fails=False, doc="sleep delay_s, then the normal answer"),
    "truncate": FaultKind(truncate=True, doc="full Content-Length, half the body, then close"),
    "badjson": FaultKind(status=200, body="badjson", doc="200 with broken JSON, exact length"),
    "redirect": FaultKind(status=302, body="redirect", doc="302 to a login page that serves HTML"),
    "maintenance": FaultKind(
        status=200, body="maintenance", doc="200 with an HTML maintenance page"
    ),
    "badgzip": FaultKind(status=200, body="badgzip", doc="200, gzip body with corrupt bytes"),
    "cutgzip": FaultKind(
        status=200, body="cutgzip", doc="200, gzip body cut in half (exact length)"
    ),
    "429_reset": FaultKind(
        status=429,
        reset_only=True,
        doc="Too Many Requests without Retry-After: only the provider's documented reset "
        "header (`Provider.reset_headers`), `retry_after` seconds ahead",
    ),
    "trickle": FaultKind(trickle=True, doc="the real answer, its body a few bytes at a time"),
    "stall": FaultKind(
        stall=True, doc="the real answer: half the body, delay_s of nothing, the rest"
    ),
    "bom": FaultKind(change="bom", fails=False, doc="the real answer after a UTF-8 BOM"),
    "null_list": FaultKind(change="null_list", doc="the real answer, its list of events null"),
    "no_list": FaultKind(change="no_list", doc="the real answer without its list of events"),
    "no_envelope": FaultKind(
        change="no_envelope",
        fails=False,
        doc="the real answer without the envelope field the provider may leave out "
        "(`Provider.optional_envelope`, e.g. ConfigCat's paging)",
    ),
    # A careless server (or proxy) that quotes the request's credentials back: whole, decoded,
    # truncated and URL-encoded (`echoed_credentials`), after `echo_pad` filler characters.
    "echo401": FaultKind(status=401, body="echo", doc="401, error body echoing the credentials"),
    "echo500": FaultKind(status=500, body="echo", doc="500, error body echoing the credentials"),
    "echo400": FaultKind(status=400, body="echotext", doc="400, plain text echoing them"),
    "echo200": FaultKind(status=200, body="echotext", doc="200, plain text (no JSON) echoing them"),
}
#: How a trickling body goes out.
TRICKLE_BYTES = 8
TRICKLE_EVERY_S = 0.05

GATEWAY_PAGE = "<html><head><title>{status}</title></head><body><h1>{status}</h1></body></html>\n"
MAINTENANCE_PAGE = (
    b"<!DOCTYPE html>\n<html><head><title>Down for maintenance</title></head>"
    b"<body><h1>We'll be back soon</h1><p>Scheduled maintenance.</p></body></html>\n"
)
_GZIPPED = gzip.compress(b'{"results": [], "nextPage": null, "padding": "' + b"x" * 400 + b'"}')
#: A gzip stream whose deflate data is damaged (decompressing it fails).
BAD_GZIP = _GZIPPED[:12] + bytes(b ^ 0x5A for b in _GZIPPED[12:40]) + _GZIPPED[40:]
#: A gzip stream cut in half: it decompresses to the start of the JSON, then ends.
CUT_GZIP = _GZIPPED[: len(_GZIPPED) // 2]
BROKEN_JSON = b'{"results": [{"event_id": "1", "created_at": "2026-01-01T00:00:00.000Z", "type": '


@dataclass(frozen=True)
class FaultRule:
    """Fault `kind` on request numbers `nth` and/or with `probability`, for `provider` (None: all).

    `retry_after` (429 only): int seconds, or "date:N" for an HTTP-date N seconds from now.
    `delay_s`: "slow" and "stall" wait this long; "trickle" pauses this long between pieces
    (default `TRICKLE_EVERY_S`); "outage" refuses connections this long.
    """

    kind: str
    probability: float = 0.0
    nth: tuple[int, ...] = field(default=())
    provider: str | None = None
    retry_after: int | str | None = None
    delay_s: float = 0.0
    echo_pad: int = 0  # echo kinds: filler characters before the echoed credentials

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; known: {sorted(FAULT_KINDS)}")
        nth: Any = self.nth
        object.__setattr__(self, "nth", (nth,) if isinstance(nth, int) else tuple(nth))
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError("probability must be within 0..1")
        if isinstance(self.retry_after, str) and not _DATE_RETRY.match(self.retry_after):
            raise ValueError('retry_after must be int seconds or "date:N"')

    @property
    def spec(self) -> FaultKind:
        """The kind's table row."""
        return FAULT_KINDS[self.kind]

    def retry_after_header(self) -> str:
        """The Retry-After value: seconds, or an HTTP-date."""
        value = 1 if self.retry_after is None else self.retry_after
        if isinstance(value, str):
            match = _DATE_RETRY.match(value)
            assert match is not None
            return formatdate(time() + int(match.group(1)), usegmt=True)
        return str(int(value))


def echoed_credentials(headers: Mapping[str, str], body: bytes, pad: int = 0) -> str:
    """What a server that echoes credentials says: the Authorization header, its value, the
    decoded Basic pair, their first two thirds and last two thirds, URL-encoded, and the
    request body, after `pad` filler characters (to place a cut inside a credential)."""
    header = headers.get("authorization", "")
    value = header.partition(" ")[2]
    try:
        decoded = base64.b64decode(value, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        decoded = ""
    pieces = [header]
    for secret in (value, decoded):
        third = len(secret) // 3
        pieces += [secret, secret[: len(secret) - third], secret[third:], quote(secret, safe="")]
    pieces.append(body.decode("utf-8", "replace"))
    return "-" * pad + "invalid credentials: " + " | ".join(p for p in pieces if p)


class FaultInjector:
    """Decides, per provider and request number, which rule (if any) fires."""

    def __init__(self, rules: Iterable[FaultRule], seed: int, max_consecutive: int | None) -> None:
        self.rules = list(rules)
        self.seed = seed
        self.max_consecutive = max_consecutive
        self._count: dict[str, int] = {}
        self._streak: dict[str, int] = {}
        self._rng: dict[str, random.Random] = {}

    def reset(self) -> None:
        """Restart request numbering and the random draws."""
        self._count.clear()
        self._streak.clear()
        self._rng.clear()

    def decide(self, provider: str) -> FaultRule | None:
        """Count one request to `provider`; return the rule that faults it, or None.

        Rules with `nth` always fire on their numbers; random faults are suppressed once
        `max_consecutive` failing faults happened in a row, so a storm stays retryable.
        """
        n = self._count[provider] = self._count.get(provider, 0) + 1
        rng = self._rng.setdefault(provider, random.Random(f"{self.seed}:faults:{provider}"))
        rules = [r for r in self.rules if r.provider in (None, provider)]
        chosen = next((r for r in rules if n in r.nth), None)
        draws = [r for r in rules if r.probability > 0 and rng.random() < r.probability]
        streak = self._streak.get(provider, 0)
        guard_open = self.max_consecutive is None or streak < self.max_consecutive
        if chosen is None and draws and guard_open:
            chosen = draws[0]
        failing = chosen is not None and chosen.spec.fails
        self._streak[provider] = streak + 1 if failing else 0
        return chosen
