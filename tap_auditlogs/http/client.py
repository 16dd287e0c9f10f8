"""One API client for every provider: a request with the tap's retry policy, a decoded answer.

``ApiClient.get`` sends one logical request (a GET, or the provider's ``http_method`` with a
JSON body) and returns an ``ApiResponse`` (the decoded JSON, its parsed page, headers,
status, time taken). On the way it:

* retries 408/425/429/5xx, dropped connections, timeouts, cut-off and undecodable bodies with
  ``backoff`` (``call_with_retries``): exponential waits with half jitter, at most 60 s, or
  exactly what ``Retry-After`` asks (``ApiOwner.rate_limit_wait`` reads other headers);
* fails at once, naming the host and ``<provider>.base_url``, when a host that has not
  answered in this run refuses the connection or its name does not resolve (a wrong
  setting, not worth minutes of retries); once it answered, that host is retried as above;
* stops a provider cleanly when the API asks to wait longer than ``max_retry_wait``
  (``QuotaExhaustedError``: the state is saved, the next run continues);
* bounds each attempt twice: ``request_timeout`` for the connection and each read, and
  ``request_deadline_seconds`` for the whole answer (a body that trickles in is cut off and
  retried like any other failure);
* fails after ``SHAPE_TRIES`` attempts when the answer lacks a documented field (the API
  changed: more retries would get the same answer), naming the field;
* renews credentials once on 401 or a redirect when the provider can (``handle_auth_failure``),
  and never follows a redirect;
* words every error with status, path and the API's own message, never with headers, full
  URLs or secrets.

Where the SDK falls short (why this is not ``RESTStream.request_decorator``): it ignores
``Retry-After``, cannot stop cleanly when a quota wait is too long, and does not retry a 200
whose body is broken.
"""

from __future__ import annotations

import contextlib
import threading
import time
import typing as t
from importlib import metadata
from urllib.parse import urlsplit

import orjson
import requests

from tap_auditlogs.core.errors import (
    ProviderError,
    QuotaExhaustedError,
    ReadCancelledError,
    TransientError,
)
from tap_auditlogs.core.redaction import Redactor
from tap_auditlogs.core.text import plural
from tap_auditlogs.http.body import BodyLimits, read_body
from tap_auditlogs.http.responses import (
    SHAPE_TRIES,
    ApiResponse,
    UnexpectedShapeError,
    api_error_message,
    json_body,
    shape_changed,
    shape_problem,
    transport_errors,
    undecodable_body,
    unreachable_reason,
)
from tap_auditlogs.http.retry import RetriesExhaustedError, RetryPolicy, call_with_retries

if t.TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from tap_auditlogs.http.owner import ApiOwner, Worker
    from tap_auditlogs.http.ratelimit import RateLimiter

try:
    VERSION = metadata.version("tap-auditlogs")
except metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree
    VERSION = "0.0.0"

USER_AGENT = f"tap-auditlogs/{VERSION} (+https://github.com/tap-auditlogs/tap-auditlogs)"
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


# ------------------------------------------------------------------ the client


class ApiClient:
    """Requests for one provider, from any thread: the retry policy, errors, rate limit."""

    def __init__(
        self,
        owner: ApiOwner,
        *,
        timeout_s: float,
        policy: RetryPolicy,
        rate_limiter: RateLimiter | None = None,
        deadline_s: float | None = None,
    ) -> None:
        """A client for ``owner``'s API: ``timeout_s`` for the connection and each read,
        ``deadline_s`` for a whole answer (default: five reads)."""
        self.owner = owner
        self.timeout_s = timeout_s
        self.deadline_s = deadline_s if deadline_s is not None else 5 * timeout_s
        self.policy = policy
        self.rate_limiter = rate_limiter
        self._sessions = threading.local()  # one HTTP session per thread
        self._send_cache: dict[str, dict[str, t.Any]] = {}
        #: Set by the first answer that is not an error: from then on read-ahead workers
        #: send requests side by side. Until then they take turns (``_proving``), so bad
        #: credentials or an exhausted quota cost one request, not one per worker.
        self.answered = threading.Event()
        self._proving = threading.Lock()
        #: Hosts (``host:port``) that answered anything in this run: only a host not in it
        #: fails at once when it refuses the connection or does not resolve.
        self._reached: set[str] = set()

    @property
    def session(self) -> requests.Session:
        """This thread's HTTP session."""
        session = getattr(self._sessions, "session", None)
        if session is None:
            session = self._sessions.session = requests.Session()
        return t.cast("requests.Session", session)

    def get(
        self,
        where: str,
        url: str,
        params: Mapping[str, t.Any],
        *,
        parse: Callable[[t.Any], t.Any] | None = None,
        worker: Worker | None = None,
        method: str = "GET",
        body: t.Any = None,
    ) -> ApiResponse:
        """Send ``method`` to ``url`` (``body``: JSON, None: none) with the retry policy;
        ``where`` names it in messages (never the body: it may hold a secret).

        ``worker``: the read-ahead worker sending it (its request slots and cancel flag),
        None on the main thread. A provider-wide failure cancels the worker's provider.
        """
        get = _Get(where, url, params, parse, worker, method, body)
        if worker is None:
            return self._get(get)
        try:
            if self.answered.is_set():
                return self._get(get)
            with self._proving:
                return self._get(get)
        except ProviderError as error:
            if error.whole_provider:
                worker.cancelled.set()  # before the next worker takes its turn
            raise

    def _get(self, get: _Get) -> ApiResponse:
        worker = get.worker
        wrong_shapes = 0

        def one_try() -> ApiResponse:
            nonlocal wrong_shapes
            if worker is not None and worker.cancelled.is_set():
                raise ReadCancelledError
            try:
                with contextlib.nullcontext() if worker is None else worker.slots:
                    return self._send_renewing(get)
            except _WrongShapeError as shape:
                # The same API answers the same shape again: one retry (a proxy or cache may
                # have answered once), then an error that names the field, not "retry later".
                wrong_shapes += 1
                if wrong_shapes >= min(SHAPE_TRIES, self.policy.tries):
                    raise ProviderError(
                        shape_changed(get.where, shape.detail, wrong_shapes)
                    ) from None
                raise TransientError(shape_problem(shape.detail)) from None

        def warn(problem: TransientError, wait: float, attempt: int) -> None:
            asked = problem.retry_after
            if asked is None:
                how = "backoff"
            elif wait > asked:  # Retry-After: 0 and the like (retry.py)
                how = f"backoff; the API asked for {asked:.0f} s"
            else:
                how = "as Retry-After asks"
            self.owner.logger.warning(
                "%s: %s; retrying in %.1f s (%s, attempt %d of %d).",
                get.where,
                problem,
                wait,
                how,
                attempt,
                self.policy.tries,
            )

        try:
            response = call_with_retries(one_try, self.policy, warn)
        except RetriesExhaustedError as exhausted:
            raise self._gave_up(get.where, exhausted) from None
        self.answered.set()
        return response

    def _gave_up(self, where: str, exhausted: RetriesExhaustedError) -> ProviderError:
        problem = exhausted.problem
        if self.policy.gives_up_on(problem):
            wait = t.cast("float", problem.retry_after)
            return QuotaExhaustedError(
                f"{where}: {problem}; the API asks to wait {wait:.0f} s (Retry-After or its "
                "rate-limit reset), longer "
                f"than max_retry_wait ({self.policy.max_retry_after_s:.0f} s). Stopped this "
                "provider cleanly: the state is saved and the next run continues where this "
                "one stopped.",
                wait_seconds=wait,
            )
        return ProviderError(
            f"{where}: gave up after {plural(exhausted.tries, 'attempt')}; last error: {problem}. "
            "The state up to the last page is saved; run again later, or raise max_retries."
        )

    def _send_renewing(self, get: _Get) -> ApiResponse:
        """One attempt; refused credentials are renewed and the request repeated once.

        A transient failure ends the attempt: credentials renewed before it may expire
        again while we wait to retry, so only two refusals in a row mean refused for good.
        """
        renewed = False
        while True:
            try:
                return self._send_limited(get)
            except _AuthRenewedError as refused:
                if renewed:
                    raise self._auth_error(get.where, refused.response, renewed=True) from None
                renewed = True

    def _send_limited(self, get: _Get) -> ApiResponse:
        limiter, worker = self.rate_limiter, get.worker
        if limiter is None:
            return self._send(get)
        place = limiter.acquire(worker.cancelled.is_set if worker is not None else lambda: False)
        try:
            return self._send(get)
        finally:
            if place is not None:
                limiter.release(place)

    def _send(self, get: _Get) -> ApiResponse:
        """One HTTP request: a decoded answer, or the exception that says what to do next."""
        where, url, params, parse = get.where, get.url, get.params, get.parse
        session = self.session
        request = requests.Request(
            get.method, url, params=dict(params), headers=self.owner.http_headers, json=get.body
        )
        started = time.monotonic()
        read_timeout = min(self.timeout_s, self.deadline_s)
        with transport_errors(
            read_timeout,
            # An invalid URL, header value or body (TypeError: a body that is not JSON).
            lambda kind: (
                f"{where}: the request could not be sent ({kind}): a URL, header "
                "value or body is not valid HTTP. Check this provider's settings (base_url, "
                "credentials) for stray characters."
            ),
            lambda exc: self._fail_if_unreachable(where, url, exc),
        ):
            prepared = self.owner.authenticator(session.prepare_request(request))
            response = session.send(
                prepared,
                timeout=(self.timeout_s, read_timeout),
                allow_redirects=False,
                **{**self._settings(url), "stream": True},  # the body: read_body
            )
        self._reached.add(_host(url))
        try:
            read_body(
                response,
                BodyLimits(self.timeout_s, self.deadline_s, started),
                lambda waited, received: self.owner.logger.info(
                    "%s: still waiting for the rest of the answer (%s in %.0f s); this "
                    "attempt ends after request_deadline_seconds (%.0f s).",
                    where,
                    plural(received, "byte"),
                    waited,
                    self.deadline_s,
                ),
            )
        finally:
            response.close()  # after a full read the connection is back in the pool already
        self._check_status(where, response)
        try:
            payload = json_body(response.content)
        except orjson.JSONDecodeError:
            raise TransientError(undecodable_body(response)) from None
        if parse is None:
            return ApiResponse(response, payload)
        try:
            page = parse(payload)
        except UnexpectedShapeError as shape:
            raise _WrongShapeError(str(shape)) from None
        except KeyError as missing:
            raise _WrongShapeError(
                f"`{missing.args[0] if missing.args else '?'}` is missing"
            ) from None
        except (TypeError, ValueError, AttributeError) as exc:
            raise _WrongShapeError(Redactor.scrub(str(exc)) or type(exc).__name__) from None
        return ApiResponse(response, payload, page)

    def _fail_if_unreachable(self, where: str, url: str, exc: Exception) -> None:
        """A host that never answered in this run refuses the connection or does not
        resolve: the setting is wrong (or the network), retrying for minutes will not help."""
        host = _host(url)
        reason = unreachable_reason(exc)
        if reason is None or host in self._reached:
            return
        provider = self.owner.provider
        raise ProviderError(
            f"{where}: connection failed: {host} {reason}; it has not answered in this run, "
            f"so this is not retried. Check {provider}.base_url (the host must be reachable "
            "from here), or try again later.",
            whole_provider=True,
        ) from None

    def _check_status(self, where: str, response: requests.Response) -> None:
        status = response.status_code
        owner = self.owner
        if status in REDIRECT_STATUSES or status == 401:
            if owner.handle_auth_failure(response):
                raise _AuthRenewedError(response)
            if status == 401:
                raise self._auth_error(where, response)
            target = urlsplit(response.headers.get("Location", ""))
            location = target.netloc or target.path or "an unnamed location"
            raise ProviderError(
                f"{where}: HTTP {status} redirect to {location}; API calls never follow "
                f"redirects. {owner.redirect_hint()}"
            )
        if status in RETRY_STATUSES:
            raise TransientError(
                f"HTTP {status} {response.reason or ''}".strip(),
                retry_after=owner.rate_limit_wait(response),
            )
        if status >= 400:
            message = api_error_message(response, owner.error_message_keys)
            raise ProviderError(
                f"{where}: HTTP {status} {response.reason or ''}: "
                f"{message or 'no message'}. {owner.error_hint(status)}",
                status=status,
            )

    def _auth_error(
        self, where: str, response: requests.Response, *, renewed: bool = False
    ) -> ProviderError:
        detail = ""
        if response.status_code == 401:
            detail = api_error_message(response, self.owner.error_message_keys)
        detail = f": {detail}" if detail else ""
        again = ", also after renewing them once" if renewed else ""
        return ProviderError(
            f"{where}: the credentials were refused (HTTP {response.status_code}{detail}"
            f"{again}). {self.owner.credentials_hint}.",
            whole_provider=True,
        )

    def _settings(self, url: str) -> dict[str, t.Any]:
        """Proxies, CA bundle and the like from the environment, for ``url``'s host.

        ``Session.send`` alone ignores ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE`` (only
        ``Session.request`` merges them) and looks the proxy variables up again for every
        request (measured: nearly half the tap's CPU time on a 20k-event read); once per
        host is enough.
        """
        parts = urlsplit(url)
        host = f"{parts.scheme}://{parts.netloc}/"
        if host not in self._send_cache:
            merged = self.session.merge_environment_settings(host, {}, None, None, None)
            self._send_cache[host] = dict(merged)
        return self._send_cache[host]


def _host(url: str) -> str:
    """``host[:port]`` of ``url``, without any user or password in it."""
    return urlsplit(url).netloc.rpartition("@")[2]


class _Get(t.NamedTuple):
    """One logical request: what it is called in messages, where it goes, how its page is
    read, the read-ahead worker sending it (None: the main thread), its method and body."""

    where: str
    url: str
    params: Mapping[str, t.Any]
    parse: Callable[[t.Any], t.Any] | None
    worker: Worker | None
    method: str = "GET"
    body: t.Any = None  # JSON; None: no body


class _WrongShapeError(Exception):
    """The answer lacks a documented field (``detail`` names it): see ``_get``."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class _AuthRenewedError(Exception):
    """Credentials were renewed after ``response`` refused them; repeat the request once."""

    def __init__(self, response: requests.Response) -> None:
        super().__init__()
        self.response = response
