"""What the API client needs of those who use it: the provider it speaks for (``ApiOwner``,
an ``AuditLogSource``) and the read-ahead worker that sends a request (``Worker``)."""

from __future__ import annotations

import logging
import threading
import typing as t

if t.TYPE_CHECKING:
    import requests


class Worker(t.Protocol):
    """What the API client needs of the read-ahead worker that sends a request (passed
    down explicitly: ``source.pages(..., worker=...)`` -> ``request_json`` -> ``ApiClient``;
    ``engine.read_ahead`` has them)."""

    #: Set: stop before the next request (``set()`` stops the provider's other workers).
    cancelled: t.Any
    #: Requests in flight, shared by every read-ahead thread.
    slots: threading.BoundedSemaphore


class ApiOwner(t.Protocol):
    """What the client needs of the provider stream that owns it."""

    @property
    def logger(self) -> logging.Logger:
        """Where retries are logged."""

    @property
    def provider(self) -> str:
        """The provider's settings block (``socket``): names ``<provider>.base_url``."""

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
