"""Torq's client-credentials OAuth: a token from the API key, renewed before it expires and
once after a refusal; retried like any request (retry.py), within the token's own limits."""

from __future__ import annotations

import logging
import math
import threading
import time
from datetime import datetime, timezone
from urllib.parse import urlsplit

import orjson
import requests
from singer_sdk.authenticators import OAuthAuthenticator

from tap_auditlogs.core.errors import ProviderError, TransientError
from tap_auditlogs.core.redaction import Redactor
from tap_auditlogs.http.body import BodyLimits, read_body
from tap_auditlogs.http.client import RETRY_STATUSES
from tap_auditlogs.http.responses import (
    api_error_message,
    json_body,
    retry_after_seconds,
    transport_errors,
    undecodable_body,
)
from tap_auditlogs.http.retry import RetriesExhaustedError, RetryPolicy, call_with_retries

#: Renew this long before ``expires_in`` ends (at most a tenth of the token's lifetime).
RENEW_MARGIN_SECONDS = 60.0
#: Token requests: a short timeout and a couple of retries (5xx, 429, connection errors).
TOKEN_TIMEOUT_SECONDS = 15
TOKEN_ATTEMPTS = 3
TOKEN_MAX_WAIT_SECONDS = 10.0
#: Statuses of the token endpoint that mean "these credentials are not accepted here".
REFUSED_STATUSES = frozenset({400, 401, 403})

CREDENTIALS_HINT = (
    "Check torq.client_id and torq.client_secret (a Torq API key, which only a workspace "
    "Owner can create) and torq.region (us or eu: a key works only in its own region)"
)


class TorqAuthenticator(OAuthAuthenticator):
    """Client-credentials OAuth for Torq: the SDK's ``OAuthAuthenticator``, adapted.

    Kept from the SDK: the flow (token from ``expires_in``, ``Authorization: Bearer`` on
    every request, renewal when the token is no longer valid). Replaced, because they do
    not fit a tap that must never print a traceback or a secret:

    * ``is_token_valid``: the SDK has no safety margin; we renew ``RENEW_MARGIN_SECONDS``
      (at most a tenth of the lifetime) before the token runs out.
    * ``update_access_token``: the SDK's posts with a fixed 60 s timeout, retries only
      over https and only connection errors (urllib3, up to ~100 s), logs the endpoint's
      body at ERROR and raises ``RuntimeError``. Ours: Basic client credentials, a short
      timeout, ``TOKEN_ATTEMPTS`` tries on 5xx/429/connection errors, then one clear
      ``ProviderError``; the token is registered with the ``Redactor`` the moment it
      arrives.
    * ``renew_after_failure``: the SDK has no re-authentication after a refused call.

    No ``SingletonMeta``: the stream caches one instance (``functools.cached_property``).
    """

    def __init__(
        self,
        *,
        token_url: str,
        client_id: str,
        client_secret: str,
        timeout: float,
        backoff_base: float,
        logger: logging.Logger,
        deadline: float | None = None,
    ) -> None:
        """Create the authenticator; no request is made until the first API call.

        ``timeout`` bounds each read, ``deadline`` a whole answer (``request_deadline_seconds``,
        read as every API answer is: body.py; default: five reads)."""
        super().__init__(auth_endpoint=token_url, client_id=client_id, client_secret=client_secret)
        # Our own plain session: the SDK's mounts urllib3 retries that would multiply ours.
        self._session = requests.Session()
        self._timeout = timeout
        self._deadline = deadline if deadline is not None else 5 * timeout
        self._backoff_base = backoff_base
        self.logger = logger
        self._fetched_at: float | None = None  # time.monotonic() of the token request
        self._renewed_after_failure = False
        self._uses = 0  # API calls authenticated with the current token
        # Read-ahead workers share this authenticator: one of them fetches a token at a time.
        self._lock = threading.RLock()

    @property
    def oauth_request_body(self) -> dict:
        """The form body; the client credentials go in the Basic header."""
        return {"grant_type": "client_credentials"}

    def is_token_valid(self) -> bool:
        """True while the token has more than the renewal margin left."""
        if self.access_token is None or self._fetched_at is None:
            return False
        if not self.expires_in:
            return True
        margin = min(RENEW_MARGIN_SECONDS, self.expires_in / 10)
        return time.monotonic() - self._fetched_at < self.expires_in - margin

    def authenticate_request(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        """Add the Bearer token, fetching a new one first when needed."""
        with self._lock:
            request = super().authenticate_request(request)
            self._uses += 1
        return request

    def may_renew(self) -> bool:
        """False when the token was fetched because the last one was refused, and was
        refused again on its first use: a third will not help, the caller reports it."""
        return not (self._renewed_after_failure and self._uses <= 1)

    def renew_after_failure(self) -> None:
        """Replace the refused token with a new one now."""
        with self._lock:
            self.update_access_token()
            self._renewed_after_failure = True

    def update_access_token(self) -> None:
        """Get a new access token, or raise one clear ``ProviderError``.

        Retried like an API request (http/client.py, ``backoff``), within the token's own limits:
        ``TOKEN_ATTEMPTS`` tries, no wait longer than ``TOKEN_MAX_WAIT_SECONDS``.
        """
        url = str(self.auth_endpoint)
        parts = urlsplit(url)
        where = f"the token endpoint {parts.netloc}{parts.path}"
        started = time.monotonic()

        def one_try() -> dict:
            sent = time.monotonic()
            read_timeout = min(self._timeout, self._deadline)
            with transport_errors(
                read_timeout, lambda kind: f"Torq: torq.token_url is not a usable URL ({kind})."
            ):
                response = self._session.post(
                    url,
                    data=self.oauth_request_body,
                    auth=(str(self.client_id), str(self.client_secret)),
                    headers={"Accept": "application/json"},
                    timeout=(self._timeout, read_timeout),
                    allow_redirects=False,
                    stream=True,  # the body: read_body, within the deadline
                )
            try:
                read_body(response, BodyLimits(self._timeout, self._deadline, sent))
            finally:
                response.close()
            token = self._accept(response, where)
            if token is not None:
                return token
            if response.status_code == 200:
                raise TransientError(undecodable_body(response, quote=False))
            raise TransientError(
                f"HTTP {response.status_code} {response.reason or ''}".strip(),
                retry_after=retry_after_seconds(response),
            )

        def warn(problem: TransientError, wait: float, _attempt: int) -> None:
            self.logger.warning(
                "Torq: getting an access token from %s failed: %s; retrying in %.1f s.",
                where,
                problem,
                wait,
            )

        policy = RetryPolicy(
            tries=TOKEN_ATTEMPTS,
            base_wait_s=self._backoff_base,
            cap_s=math.inf,
            clip_s=TOKEN_MAX_WAIT_SECONDS,
        )
        try:
            token = call_with_retries(one_try, policy, warn)
        except RetriesExhaustedError as exhausted:
            raise ProviderError(
                f"Torq: could not get an access token from {where} after {TOKEN_ATTEMPTS} "
                f"attempts; last error: {exhausted.problem}. Check torq.region and "
                "torq.token_url, or run again later.",
                whole_provider=True,
            ) from None
        self._store(token, started)

    def _accept(self, response: requests.Response, where: str) -> dict | None:
        """The decoded token answer; None to retry; ProviderError when retrying is useless."""
        status = response.status_code
        if status in RETRY_STATUSES:
            return None
        if status != 200:
            detail = api_error_message(response)
            answer = f"HTTP {status}: {detail}" if detail else f"HTTP {status}"
            if status in REFUSED_STATUSES:
                message = f"refused the API key ({answer}). {CREDENTIALS_HINT}."
            else:  # 404, a redirect...: the URL is wrong
                message = f"answered {answer}. Check torq.region and torq.token_url."
            raise ProviderError(f"Torq: {where} {message}", whole_provider=True)
        try:
            body = json_body(response.content)
        except orjson.JSONDecodeError:
            return None
        if not isinstance(body, dict) or not isinstance(body.get("access_token"), str):
            raise ProviderError(
                f"Torq: {where} answered without an access_token. Check torq.token_url.",
                whole_provider=True,
            )
        Redactor.register(body["access_token"])
        return body

    def _store(self, body: dict, started: float) -> None:
        """Keep the new token; its lifetime counts from before the request was sent."""
        expires_in = body.get("expires_in")
        self.access_token = str(body["access_token"])
        # documented: tokens last 3600 s (https://developers.torq.io/apidocs/authentication)
        self.expires_in = int(expires_in) if isinstance(expires_in, (int, float)) else 3600
        self._fetched_at = started
        self.last_refreshed = datetime.now(timezone.utc)
        self._renewed_after_failure = False
        self._uses = 0
        self.logger.info("Torq: got a new access token (valid %d s).", self.expires_in)
