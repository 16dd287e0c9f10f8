"""The emulator core: a threaded HTTP/1.1 server that routes `/<provider>/...` to provider plug-ins.

Per API request, in this order: fault injection, route match, auth, quota, the provider's
handler; then arrivals and the request log.  Every response goes out in one `sendall`.
"""

from __future__ import annotations

import bisect
import contextlib
import math
import random
import socket
import threading
import time
import traceback
from collections import deque
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from email.utils import formatdate
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import orjson

from .faults import (
    BAD_GZIP,
    BROKEN_JSON,
    CUT_GZIP,
    GATEWAY_PAGE,
    MAINTENANCE_PAGE,
    TRICKLE_BYTES,
    TRICKLE_EVERY_S,
    FaultInjector,
    FaultRule,
    echoed_credentials,
)
from .provider import ApiRequest, Provider, QuotaStatus, Response, TruthEvent, utcnow
from .registry import available_providers
from .scenario import QuotaRule, Scenario

IDLE_TIMEOUT_S = 60.0  # keep-alive connections idle longer than this are closed
UNMETERED_LIMIT = 1000  # what the quota route reports for a provider without a QuotaRule


@dataclass(frozen=True)
class RequestRecord:
    """One API call as the emulator saw and answered it."""

    provider: str | None  # None: the path named no provider
    method: str
    path: str
    query: dict[str, str]
    status: int  # 0: dropped without a response
    fault: str | None  # the injected fault kind, if any
    org: str | None
    headers: dict[str, str] = field(default_factory=dict)
    at: float = 0.0  # time.monotonic() when the emulator took the request
    #: The request body: decoded JSON when it is JSON, else the bytes (None: no body).
    body: Any = None


@dataclass
class _Outcome:
    """What the handler writes: `raw` bytes (None: drop), then close or keep the connection."""

    raw: bytes | None
    close: bool = False
    delay_s: float = 0.0
    #: Instead of `raw` in one write: (pause before, bytes) pieces (faults "trickle", "stall").
    pieces: list[tuple[float, bytes]] | None = None


class _QuotaWindow:
    """A fixed window of `calls_per_window` billable calls."""

    def __init__(self, rule: QuotaRule) -> None:
        self.rule = rule
        self.start = time.monotonic()
        self.used = 0

    def _left_s(self) -> float:
        now = time.monotonic()
        if now - self.start >= self.rule.window_s:
            self.start, self.used = now, 0
        return self.start + self.rule.window_s - now

    def take(self) -> int | None:
        """Spend one call; None if allowed, else the Retry-After seconds."""
        left = self._left_s()
        if self.used < self.rule.calls_per_window:
            self.used += 1
            return None
        return max(1, math.ceil(left))

    def status(self) -> QuotaStatus:
        """Remaining calls and when the window resets."""
        left = self._left_s()
        return QuotaStatus(
            remaining=self.rule.calls_per_window - self.used,
            limit=self.rule.calls_per_window,
            resets_at=utcnow() + timedelta(seconds=left),
        )


class _RateWindow:
    """A sliding window: at most `calls` accepted requests in any `window_s` seconds."""

    def __init__(self, calls: int, window_s: float) -> None:
        self.calls = calls
        self.window_s = window_s
        self.accepted: deque[float] = deque()

    def take(self, now: float) -> int | None:
        """Accept one request at `now`: None, else the Retry-After seconds (nothing counted)."""
        while self.accepted and self.accepted[0] <= now - self.window_s:
            self.accepted.popleft()
        if len(self.accepted) < self.calls:
            self.accepted.append(now)
            return None
        frees_at = self.accepted[len(self.accepted) - self.calls] + self.window_s
        return max(1, math.ceil(frees_at - now))


class _Server(ThreadingHTTPServer):
    """ThreadingHTTPServer that tracks open connections so `stop()` can cut them."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], emulator: Emulator) -> None:
        self.emulator = emulator
        self.connections: set[socket.socket] = set()
        self.conn_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.conn_lock:
            self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.conn_lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Quiet: client disconnects are routine here."""

    def cut_connections(self) -> None:
        """Shut down every open connection (wakes handler threads blocked on reads)."""
        with self.conn_lock:
            conns = list(self.connections)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    """Reads a request, asks the emulator, writes the answer in one write."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    timeout = IDLE_TIMEOUT_S
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: no per-request lines on stderr."""

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        out = self.server.emulator._dispatch(
            self.command, self.path, headers, body, keep_alive=not self.close_connection
        )
        if out.delay_s > 0:
            time.sleep(out.delay_s)
        if out.pieces is not None:
            try:
                for pause, piece in out.pieces:
                    time.sleep(pause)
                    self.wfile.write(piece)
                    self.wfile.flush()
            except OSError:  # the client gave up waiting
                pass
        elif out.raw is not None:
            try:
                self.wfile.write(out.raw)
            except OSError:
                out.close = True
        if out.raw is None or out.close:
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve  # noqa: N815


class Emulator:
    """The providers' audit-log APIs on 127.0.0.1, with scenarios, faults and ground truth."""

    def __init__(self, scenario: Scenario | None = None, port: int = 0) -> None:
        self.scenario = replace(scenario) if scenario is not None else Scenario()  # own copy
        self.port = port
        self.errors: list[str] = []  # tracebacks of emulator bugs (answered with 500)
        self._lock = threading.RLock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._back: threading.Timer | None = None  # the end of an outage (fault ``outage``)
        self._log: list[RequestRecord] = []
        self._calls: dict[str, int] = {}
        registry = available_providers()
        names = self.scenario.providers or tuple(registry)
        unknown = set(names) - set(registry)
        if unknown:
            raise ValueError(f"unknown providers {sorted(unknown)}; known: {sorted(registry)}")
        self._providers: dict[str, Provider] = {n: registry[n](self.scenario, self) for n in names}
        seed = self.scenario.seed
        self._arrival_rng = {n: random.Random(f"{seed}:arrivals:{n}") for n in names}
        self._injector = self._new_injector()
        self._quota: dict[str, _QuotaWindow] = {}
        self.reset_quota()
        self._rate: dict[str, _RateWindow] = {}
        self._reset_rate_limits()

    # ---- lifecycle ------------------------------------------------------------------------
    def start(self) -> Emulator:
        """Bind 127.0.0.1:`port` and serve in a daemon thread."""
        if self._server is not None:
            return self
        self._server = _Server(("127.0.0.1", self.port), self)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.01},
            name=f"auditlogs-emulator:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, cut open connections and close the socket."""
        back, self._back = self._back, None
        if back is not None:
            back.cancel()  # stopped during an outage: stays stopped
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.cut_connections()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=2)

    def _outage(self, seconds: float) -> None:
        """Fault ``outage``: stop listening now (connections are refused), serve again on the
        same port after ``seconds``."""
        self.stop()
        self._back = threading.Timer(seconds, self.start)
        self._back.daemon = True
        self._back.start()

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """`http://127.0.0.1:PORT` (after `start()`)."""
        if self._server is None:
            raise RuntimeError("the emulator is not running; call start()")
        return f"http://127.0.0.1:{self.port}"

    # ---- configuration --------------------------------------------------------------------
    @property
    def providers(self) -> list[str]:
        """The provider keys this emulator plays."""
        return list(self._providers)

    def provider(self, name: str) -> Provider:
        """The provider plug-in instance (for advanced tests)."""
        return self._providers[name]

    def base_url(self, provider: str) -> str:
        """The base URL a tap uses for `provider`."""
        return self._providers[provider].base_url(self.url)

    @staticmethod
    def credentials(provider: str) -> dict[str, str]:
        """The credentials the emulator accepts for `provider`, as tap settings."""
        return available_providers()[provider].credentials()

    def tap_config(self) -> dict[str, Any]:
        """A tap config block per played provider."""
        return {n: p.tap_config(p.base_url(self.url)) for n, p in self._providers.items()}

    def configure(self, **changes: Any) -> None:
        """Change runtime switches and fields (faults, quota, `socket_order`, ...) at once."""
        fixed = [key for key in changes if not Scenario.is_runtime(key)]
        if fixed:
            raise ValueError(f"{fixed} shape the generated data; build a new Emulator instead")
        trial = replace(self.scenario)
        for key, value in changes.items():
            setattr(trial, key, value)  # validate everything before changing anything
        with self._lock:
            for key, value in changes.items():
                setattr(self.scenario, key, value)
            if "faults" in changes:
                self._injector = self._new_injector()
            self._injector.max_consecutive = self.scenario.max_consecutive_faults
            if "quota" in changes:
                self.reset_quota()
            if "rate_limits" in changes:
                self._reset_rate_limits()
            if set(changes) - Scenario.RUNTIME_FIELDS:  # a provider switch: it may shape views
                for provider in self._providers.values():
                    provider.clear_views()

    def reset_quota(self, provider: str | None = None) -> None:
        """Start a new quota window now (for `provider`, or all)."""
        with self._lock:
            for name, rule in self.scenario.quota.items():
                if provider in (None, name):
                    self._quota[name] = _QuotaWindow(rule)
            for name in set(self._quota) - set(self.scenario.quota):
                del self._quota[name]

    def _reset_rate_limits(self) -> None:
        """Fresh sliding windows for `scenario.rate_limits` (under the lock or in __init__)."""
        self._rate = {
            name: _RateWindow(calls, window_s)
            for name, (calls, window_s) in self.scenario.rate_limits.items()
        }

    def quota_status(self, provider: str) -> QuotaStatus:
        """The provider's quota window (a fixed, unmetered shape when it has no rule)."""
        with self._lock:
            window = self._quota.get(provider)
            if window is None:
                resets_at = utcnow() + timedelta(hours=1)
                return QuotaStatus(UNMETERED_LIMIT, UNMETERED_LIMIT, resets_at)
            return window.status()

    # ---- ground truth ---------------------------------------------------------------------
    def truth(self, provider: str) -> list[TruthEvent]:
        """Every event that currently exists at `provider`."""
        with self._lock:
            return self._providers[provider].truth()

    def add_events(
        self, provider: str, org: str, n: int = 1, ts: datetime | None = None
    ) -> list[TruthEvent]:
        """Add `n` events to `org` at `ts` (default now; a past `ts` plays late events)."""
        with self._lock:
            return self._providers[provider].add_events(org, n, ts)

    # ---- request log ----------------------------------------------------------------------
    def requests(self, provider: str | None = None) -> list[RequestRecord]:
        """API calls seen (to `provider`, or all), oldest first."""
        with self._lock:
            return [r for r in self._log if provider is None or r.provider == provider]

    def peak_requests(self, provider: str, window_s: float) -> int:
        """The most requests to `provider` (answered: status != 0, any route) whose `at` lie
        within one window of `window_s` seconds (`last.at - first.at < window_s`).

        Counts every answer, 429s of `rate_limits` and injected faults included.
        """
        with self._lock:
            times = sorted(r.at for r in self._log if r.provider == provider and r.status != 0)
        peak = 0
        for i, start in enumerate(times):
            end = bisect.bisect_left(times, start + window_s, lo=i)
            peak = max(peak, end - i)
        return peak

    def reset_requests(self) -> None:
        """Clear the log and restart request numbering (fault `nth`, arrivals)."""
        with self._lock:
            self._log.clear()
            self._calls.clear()
            self._injector.reset()

    # ---- serving --------------------------------------------------------------------------
    def _new_injector(self) -> FaultInjector:
        scn = self.scenario
        return FaultInjector(scn.faults, scn.seed, scn.max_consecutive_faults)

    def _dispatch(
        self, method: str, target: str, headers: dict[str, str], body: bytes, keep_alive: bool
    ) -> _Outcome:
        parts = urlsplit(target)
        path = unquote(parts.path)
        query: dict[str, str] = {}
        for key, value in parse_qsl(parts.query, keep_blank_values=True):
            query.setdefault(key, value)
        name = path.split("/")[1] if path.count("/") >= 1 else ""
        provider = self._providers.get(name)
        resp: Response | None
        with self._lock:
            now = time.monotonic()
            rule: FaultRule | None = None
            fault: str | None = None
            if provider is None:
                resp, org = _no_provider(path), None
            else:
                req = ApiRequest(method, path[len(provider.prefix) :] or "/", query, headers, body)
                limited = self._rate_limit(provider, now)
                if limited is None:
                    resp, rule, org = self._answer(provider, req)
                    fault = rule.kind if rule else None
                else:
                    found = provider.match(req)
                    resp, org = limited, found[1].get("org") if found else None
                    fault = "rate_limit"
            self._log.append(
                RequestRecord(
                    provider=provider.name if provider else None,
                    method=method,
                    path=path,
                    query=query,
                    status=resp.status if resp is not None else 0,
                    fault=fault,
                    org=org,
                    headers=headers,
                    at=now,
                    body=_logged_body(body),
                )
            )
            delay = self.scenario.latency_s
        if resp is None:
            if rule is not None and rule.spec.outage:
                self._outage(rule.delay_s)
            return _Outcome(raw=None, close=True)
        if rule is not None and rule.spec.change and provider is not None:
            resp = _changed(provider, resp, rule.spec.change)
        date = provider.date_header() if provider is not None else formatdate(usegmt=True)
        head, payload = _encode(resp, keep_alive and not (rule and rule.spec.truncate), date)
        if rule is not None and rule.spec.truncate:
            return _Outcome(head + payload[: len(payload) // 2], close=True, delay_s=delay)
        if rule is not None and rule.spec.trickle:
            steps = range(0, len(payload), TRICKLE_BYTES)
            every = rule.delay_s or TRICKLE_EVERY_S  # a small body trickles as slowly as asked
            pieces = [(every, payload[i : i + TRICKLE_BYTES]) for i in steps]
            return _Outcome(None, close=True, delay_s=delay, pieces=[(0.0, head), *pieces])
        if rule is not None and rule.spec.stall:
            half = len(payload) // 2
            pieces = [(0.0, head + payload[:half]), (rule.delay_s, payload[half:])]
            return _Outcome(None, close=True, delay_s=delay, pieces=pieces)
        if rule is not None and rule.spec.delay:
            delay += rule.delay_s
        return _Outcome(head + payload, close=not keep_alive, delay_s=delay)

    def _rate_limit(self, provider: Provider, now: float) -> Response | None:
        """The 429 if `scenario.rate_limits` rejects this request, else None (under the lock).

        Checked first, for every route: a rejected request reaches neither the fault injector
        nor the handler, and counts neither toward the window nor toward arrivals.
        """
        window = self._rate.get(provider.name)
        retry_after = window.take(now) if window is not None else None
        if window is None or retry_after is None:
            return None
        message = f"Rate limit exceeded: {window.calls} requests per {window.window_s:g} s"
        resp = provider.error(429, message)
        resp.headers["Retry-After"] = str(retry_after)
        return resp

    def _answer(
        self, provider: Provider, req: ApiRequest
    ) -> tuple[Response | None, FaultRule | None, str | None]:
        """(response or None for a drop, the fault rule, the org) -- under the lock."""
        name = provider.name
        found = provider.match(req)
        org = found[1].get("org") if found else None
        rule = self._injector.decide(name)
        resp: Response | None
        try:
            if rule is not None and (rule.spec.status is not None or rule.spec.drop):
                resp = _fault_response(provider, rule, req)
            else:
                resp = self._serve(provider, req, found)
        except Exception:  # an emulator bug: answer 500 and keep the traceback for tests
            self.errors.append(traceback.format_exc())
            resp = provider.error(500, "emulator error (see Emulator.errors)")
        self._calls[name] = calls = self._calls.get(name, 0) + 1
        every = self.scenario.arrivals_every
        if every and calls % every == 0:
            arrival_org = self._arrival_rng[name].choice(provider.orgs)
            provider.add_events(arrival_org, 1)
        return resp, rule, org

    def _serve(
        self, provider: Provider, req: ApiRequest, found: tuple[Any, dict[str, str]] | None
    ) -> Response:
        if found is None:
            return provider.authenticate(req) or provider.error(404, f"Not found: {req.path}")
        route, params = found
        denied = provider.authenticate(req) if route.auth else None
        if denied is not None:
            return denied
        window = self._quota.get(provider.name)
        retry_after = window.take() if window is not None and route.billable else None
        if retry_after is not None:
            resp = provider.error(429, "Insufficient quota for API route")
            resp.headers["Retry-After"] = str(retry_after)
            return resp
        return provider.dispatch(route, params, req)


def _fault_response(provider: Provider, rule: FaultRule, req: ApiRequest) -> Response | None:
    """The replacement answer of a fault kind (None: drop the connection)."""
    spec = rule.spec
    if spec.drop or spec.status is None:
        return None
    if spec.body in ("echo", "echotext"):
        echo = echoed_credentials(req.headers, req.body, rule.echo_pad)
        if spec.body == "echo":
            return provider.error(spec.status, echo)
        return Response(spec.status, echo.encode(), content_type="text/plain; charset=utf-8")
    if spec.body == "badjson":
        return Response(spec.status, BROKEN_JSON)
    if spec.body == "maintenance":
        return Response(spec.status, MAINTENANCE_PAGE, content_type="text/html; charset=utf-8")
    if spec.body in ("badgzip", "cutgzip"):
        body = BAD_GZIP if spec.body == "badgzip" else CUT_GZIP
        return Response(spec.status, body, headers={"Content-Encoding": "gzip"})
    if spec.body == "redirect":
        resp = Response(spec.status, b"", content_type="text/html")
        resp.headers["Location"] = "/login?next=expired"
        return resp
    if spec.body == "html":
        page = GATEWAY_PAGE.format(status=f"{spec.status} {HTTPStatus(spec.status).phrase}")
        return Response(spec.status, page.encode(), content_type="text/html")
    resp = provider.error(spec.status, f"injected fault: {HTTPStatus(spec.status).phrase}")
    if spec.status == 429 and spec.reset_only:
        seconds = 1 if not isinstance(rule.retry_after, int) else rule.retry_after
        resp.headers.pop("Retry-After", None)
        resp.headers.update(provider.reset_headers(seconds) or {})
    elif spec.status == 429:
        resp.headers["Retry-After"] = rule.retry_after_header()
    return resp


def _changed(provider: Provider, resp: Response, change: str) -> Response:
    """The real answer with fault `change` applied (answers it does not fit: unchanged)."""
    body = resp.body
    if resp.status != 200 or not isinstance(body, (dict, list)):
        return resp
    if change == "bom":
        return replace(resp, body=b"\xef\xbb\xbf" + orjson.dumps(body))
    key = provider.optional_envelope if change == "no_envelope" else provider.list_key
    if not isinstance(body, dict) or key is None or key not in body:
        return resp
    body = dict(body)
    if change == "null_list":
        body[key] = None
    else:
        del body[key]
    return replace(resp, body=body)


def _logged_body(body: bytes) -> Any:
    """A request body for the log: its JSON decoded, else its bytes; None when empty."""
    if not body:
        return None
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return body


def _no_provider(path: str) -> Response:
    return Response(404, {"error": {"message": f"no emulated provider at {path}", "details": None}})


def _encode(resp: Response, keep_alive: bool, date: str | None) -> tuple[bytes, bytes]:
    """Status line + headers (`date`: the Date header, None: none), and the body bytes."""
    body = resp.body if isinstance(resp.body, bytes) else orjson.dumps(resp.body)
    lines = [
        f"HTTP/1.1 {resp.status} {HTTPStatus(resp.status).phrase}",
        f"Content-Type: {resp.content_type}",
        f"Content-Length: {len(body)}",
        *([f"Date: {date}"] if date else []),
        "Server: auditlogs-emulator",
        f"Connection: {'keep-alive' if keep_alive else 'close'}",
        *(f"{key}: {value}" for key, value in resp.headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"), body
