"""One API client for every provider: a GET with the tap's retry policy, a decoded answer.

``ApiClient.get`` sends one logical request and returns an ``ApiResponse`` (the decoded JSON,
its parsed page, headers, status, time taken). On the way it:

* retries 408/425/429/5xx, dropped connections, timeouts, cut-off and undecodable bodies with
  ``backoff`` (``call_with_retries``): exponential waits with half jitter, at most 60 s, or
  exactly what ``Retry-After`` asks (``ApiOwner.rate_limit_wait`` reads other headers);
* stops a provider cleanly when the API asks to wait longer than ``max_retry_wait``
  (``QuotaExhaustedError``: the state is saved, the next run continues);
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
import dataclasses
import email.utils
import logging
import random
import threading
import time
import typing as t
from datetime import timedelta
from importlib import metadata
from urllib.parse import urlsplit

import backoff
import orjson
import requests

from tap_auditlogs.errors import ProviderError, QuotaExhaustedError, TransientError
from tap_auditlogs.redaction import Redactor

if t.TYPE_CHECKING:
    from collections.abc import Callable, Generator, Mapping

    from tap_auditlogs.parallel import RateLimiter, Worker

try:
    VERSION = metadata.version("tap-auditlogs")
except metadata.PackageNotFoundError:  # pragma: no cover - running from a source tree
    VERSION = "0.0.0"

USER_AGENT = f"tap-auditlogs/{VERSION} (+https://github.com/tap-auditlogs/tap-auditlogs)"
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
#: Characters of an unreadable body quoted in its error message.
BODY_EXCERPT_CHARS = 80
#: Keys of the providers' error bodies that hold the message, in order of preference.
ERROR_MESSAGE_KEYS = ("error", "message", "error_description", "detail", "title")


# ------------------------------------------------------------------ the answer


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
    text = " ".join(response.content[:400].decode("utf-8", "replace").split())
    start = Redactor.scrub(text)[:BODY_EXCERPT_CHARS] if quote else ""
    size = len(response.content)
    if start:
        shown = f"{size} bytes, starting {start!r}"
    else:
        shown = f"{size} bytes" if size else "an empty body"
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
        text = response.text.strip().replace("\n", " ")
        return Redactor.scrub(text[:200]) if text and "<html" not in text.lower() else ""
    return Redactor.scrub(_message_from_body(body, keys)[:300])


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


# ------------------------------------------------------------------ retries


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry one request."""

    tries: int  # attempts in all, the first included
    base_wait_s: float  # first backoff wait: doubled each time, half jitter
    cap_s: float = 60.0  # longest backoff wait
    #: A longer Retry-After stops the provider (``QuotaExhaustedError``); None: any
    #: Retry-After is waited out, at most ``clip_s``.
    max_retry_after_s: float | None = None
    clip_s: float | None = None  # longest wait of any kind (None: no limit)

    @classmethod
    def from_config(cls, config: Mapping[str, t.Any]) -> RetryPolicy:
        """The policy of API requests: ``max_retries``, ``backoff_base_seconds``,
        ``max_retry_wait``."""
        return cls(
            tries=1 + int(config.get("max_retries", 8)),
            base_wait_s=float(config.get("backoff_base_seconds", 1.0)),
            max_retry_after_s=float(config.get("max_retry_wait", 300)),
        )

    def gives_up_on(self, problem: TransientError) -> bool:
        """True when the API asks to wait longer than the policy waits."""
        limit = self.max_retry_after_s
        return limit is not None and problem.retry_after is not None and problem.retry_after > limit


def retry_waits(policy: RetryPolicy) -> Generator[float, TransientError, None]:
    """``backoff`` wait generator: what ``Retry-After`` asks, else exponential backoff.

    ``backoff`` sends each failure in, so the wait can follow the answer's own header.
    Jitter is ours (uniform over the upper half of the ceiling), so ``jitter=None``.
    """
    attempt = 0
    problem = yield 0.0  # priming: backoff starts the generator with send(None)
    while True:
        attempt += 1
        if problem.retry_after is not None:
            wait = problem.retry_after
        else:
            ceiling = min(policy.cap_s, policy.base_wait_s * 2 ** (attempt - 1))
            wait = random.uniform(ceiling / 2, ceiling)
        if policy.clip_s is not None:
            wait = min(wait, policy.clip_s)
        problem = yield wait


class RetriesExhaustedError(Exception):
    """``call_with_retries`` gave up: ``problem`` is the last failure, after ``tries``."""

    def __init__(self, problem: TransientError, tries: int) -> None:
        super().__init__(str(problem))
        self.problem = problem
        self.tries = tries


T = t.TypeVar("T")


def call_with_retries(
    call: Callable[[], T],
    policy: RetryPolicy,
    on_retry: Callable[[TransientError, float, int], None],
) -> T:
    """``call()`` until it returns, retrying its ``TransientError``s by ``policy``.

    ``on_retry(problem, wait, next_attempt)`` runs before each wait. When the policy gives
    up, ``RetriesExhaustedError`` says why and after how many tries. Anything else
    ``call`` raises goes through at once.
    """

    def log(details: t.Any) -> None:
        on_retry(details["exception"], details["wait"], details["tries"] + 1)

    tries = 0

    def counted() -> T:
        nonlocal tries
        tries += 1
        return call()

    retrying = backoff.on_exception(
        retry_waits,
        TransientError,
        max_tries=policy.tries,
        jitter=None,
        giveup=policy.gives_up_on,  # type: ignore[arg-type]
        on_backoff=log,
        policy=policy,
    )(counted)
    try:
        return retrying()
    except TransientError as problem:
        raise RetriesExhaustedError(problem, tries) from None


# ------------------------------------------------------------------ the client


class ApiOwner(t.Protocol):
    """What the client needs of the provider stream that owns it."""

    @property
    def logger(self) -> logging.Logger:
        """Where retries are logged."""

    @property
    def credentials_hint(self) -> str:
        """Shown with refused credentials."""

    @property
    def error_message_keys(self) -> tuple[str, ...]:
        """Keys of the API's error bodies that hold the message."""

    @property
    def http_headers(self) -> dict[str, str]:
        """Headers of every request."""

    @property
    def authenticator(self) -> t.Any:
        """Applied to every prepared request (``requests`` auth or an SDK authenticator)."""

    def handle_auth_failure(self, response: requests.Response) -> bool:
        """401 or a redirect: True after renewing credentials, to repeat the request once."""

    def rate_limit_wait(self, response: requests.Response) -> float | None:
        """Seconds a 429/503 asks to wait (``Retry-After`` unless the provider says else)."""

    def error_hint(self, status: int) -> str:
        """What the user can do about an HTTP error status."""

    def redirect_hint(self) -> str:
        """What the user can do about an unexpected redirect."""


class ApiClient:
    """GETs for one provider, from any thread: the retry policy, errors, rate limit."""

    def __init__(
        self,
        owner: ApiOwner,
        *,
        timeout_s: float,
        policy: RetryPolicy,
        rate_limiter: RateLimiter | None = None,
    ) -> None:
        """A client for ``owner``'s API."""
        self.owner = owner
        self.timeout_s = timeout_s
        self.policy = policy
        self.rate_limiter = rate_limiter
        self._sessions = threading.local()  # one HTTP session per thread
        self._send_cache: dict[str, dict[str, t.Any]] = {}
        #: Set by the first answer that is not an error: from then on read-ahead workers
        #: send requests side by side. Until then they take turns (``_proving``), so bad
        #: credentials or an exhausted quota cost one request, not one per worker.
        self.answered = threading.Event()
        self._proving = threading.Lock()

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
    ) -> ApiResponse:
        """GET ``url`` with the retry policy; ``where`` names it in messages.

        ``worker``: the read-ahead worker sending it (its request slots and cancel flag),
        None on the main thread. A provider-wide failure cancels the worker's provider.
        """
        if worker is None:
            return self._get(where, url, params, parse, worker)
        try:
            if self.answered.is_set():
                return self._get(where, url, params, parse, worker)
            with self._proving:
                return self._get(where, url, params, parse, worker)
        except ProviderError as error:
            if error.whole_provider:
                worker.cancelled.set()  # before the next worker takes its turn
            raise

    def _get(
        self,
        where: str,
        url: str,
        params: Mapping[str, t.Any],
        parse: Callable[[t.Any], t.Any] | None,
        worker: Worker | None,
    ) -> ApiResponse:
        def one_try() -> ApiResponse:
            if worker is not None and worker.cancelled.is_set():
                from tap_auditlogs.parallel import ReadCancelledError  # noqa: PLC0415

                raise ReadCancelledError
            with contextlib.nullcontext() if worker is None else worker.slots:
                return self._send_renewing(where, url, params, parse, worker)

        def warn(problem: TransientError, wait: float, attempt: int) -> None:
            how = "as Retry-After asks" if problem.retry_after is not None else "backoff"
            self.owner.logger.warning(
                "%s: %s; retrying in %.1f s (%s, attempt %d of %d).",
                where,
                problem,
                wait,
                how,
                attempt,
                self.policy.tries,
            )

        try:
            response = call_with_retries(one_try, self.policy, warn)
        except RetriesExhaustedError as exhausted:
            raise self._gave_up(where, exhausted) from None
        self.answered.set()
        return response

    def _gave_up(self, where: str, exhausted: RetriesExhaustedError) -> ProviderError:
        problem = exhausted.problem
        if self.policy.gives_up_on(problem):
            wait = t.cast("float", problem.retry_after)
            return QuotaExhaustedError(
                f"{where}: {problem}; the API asks to wait {wait:.0f} s (Retry-After), longer "
                f"than max_retry_wait ({self.policy.max_retry_after_s:.0f} s). Stopped this "
                "provider cleanly: the state is saved and the next run continues where this "
                "one stopped.",
                wait_seconds=wait,
            )
        return ProviderError(
            f"{where}: gave up after {exhausted.tries} attempts; last error: {problem}. "
            "The state up to the last page is saved; run again later, or raise max_retries."
        )

    def _send_renewing(
        self,
        where: str,
        url: str,
        params: Mapping[str, t.Any],
        parse: Callable[[t.Any], t.Any] | None,
        worker: Worker | None,
    ) -> ApiResponse:
        """One attempt; refused credentials are renewed and the request repeated once.

        A transient failure ends the attempt: credentials renewed before it may expire
        again while we wait to retry, so only two refusals in a row mean refused for good.
        """
        renewed = False
        while True:
            try:
                return self._send_limited(where, url, params, parse, worker)
            except _AuthRenewedError as refused:
                if renewed:
                    raise self._auth_error(where, refused.response, renewed=True) from None
                renewed = True

    def _send_limited(
        self,
        where: str,
        url: str,
        params: Mapping[str, t.Any],
        parse: Callable[[t.Any], t.Any] | None,
        worker: Worker | None,
    ) -> ApiResponse:
        limiter = self.rate_limiter
        if limiter is None:
            return self._send(where, url, params, parse)
        place = limiter.acquire(worker.cancelled.is_set if worker is not None else lambda: False)
        try:
            return self._send(where, url, params, parse)
        finally:
            if place is not None:
                limiter.release(place)

    def _send(
        self,
        where: str,
        url: str,
        params: Mapping[str, t.Any],
        parse: Callable[[t.Any], t.Any] | None,
    ) -> ApiResponse:
        """One HTTP request: a decoded answer, or the exception that says what to do next."""
        session = self.session
        request = requests.Request("GET", url, params=dict(params), headers=self.owner.http_headers)
        prepared = self.owner.authenticator(session.prepare_request(request))
        try:
            response = session.send(
                prepared, timeout=self.timeout_s, allow_redirects=False, **self._settings(url)
            )
        except requests.Timeout:
            raise TransientError(f"no answer within {self.timeout_s:.0f} s") from None
        except requests.exceptions.ChunkedEncodingError as exc:
            problem = f"the response body was cut off (truncated: {exception_kind(exc)})"
            raise TransientError(problem) from None
        except requests.ConnectionError as exc:
            raise TransientError(f"connection failed ({exception_kind(exc)})") from None
        except requests.exceptions.ContentDecodingError:
            raise TransientError(
                "the compressed response body is corrupt: it could not be decompressed"
            ) from None
        self._check_status(where, response)
        try:
            payload = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            raise TransientError(undecodable_body(response)) from None
        if parse is None:
            return ApiResponse(response, payload)
        try:
            page = parse(payload)
        except (KeyError, TypeError, ValueError, AttributeError):
            raise TransientError("the response body does not have the documented shape") from None
        return ApiResponse(response, payload, page)

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


class _AuthRenewedError(Exception):
    """Credentials were renewed after ``response`` refused them; repeat the request once."""

    def __init__(self, response: requests.Response) -> None:
        super().__init__()
        self.response = response
