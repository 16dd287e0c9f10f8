"""``AuditLogSource``: one provider's audit log as the read engine sees it.

The provider object: what the provider declares (``ProviderDeclaration``: its API, settings
block, paging, quirks) plus what reading it takes at run time: its API client (http/client.py), the
page loop (page_loop.py), the organizations to read, the run's clock by the
API's ``Date`` (clock.py) and its once-per-run messages. A provider module subclasses it
(``class SocketAuditLog(AuditLogSource)``) and overrides only what its API needs.

The strategies, the read-ahead, the organization listing and the connection test take this
object, never the singer-sdk stream: the stream (streams/audit_log.py) is the SDK glue that
owns one.
"""

from __future__ import annotations

import logging
import typing as t
from functools import cached_property
from urllib.parse import quote, urlsplit

from tap_auditlogs import schemas
from tap_auditlogs.core.errors import ProviderError
from tap_auditlogs.core.instants import now_instant
from tap_auditlogs.core.text import plural
from tap_auditlogs.engine.clock import clock_offset
from tap_auditlogs.engine.declaration import ProviderDeclaration
from tap_auditlogs.engine.page_loop import read_pages
from tap_auditlogs.engine.values import OddValues
from tap_auditlogs.http.client import ApiClient
from tap_auditlogs.http.ratelimit import RateLimiter
from tap_auditlogs.http.retry import RetryPolicy

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Mapping

    from tap_auditlogs.core.types import Context, Page
    from tap_auditlogs.engine.state import PartitionState
    from tap_auditlogs.http.owner import Worker
    from tap_auditlogs.http.responses import ApiResponse


class AuditLogSource(ProviderDeclaration):
    """One provider's log, read with its declarations (a provider module subclasses it)."""

    #: The stream's name (``socket_audit_log``), its schema's file name.
    name: t.ClassVar[str]
    #: The log's path under ``url_base``, with ``{partition_field}`` placeholders.
    path: t.ClassVar[str] = ""
    #: The keys loaders upsert on; the last one is the event id.
    primary_keys: t.Sequence[str]
    #: The field that orders the log and keys the bookmark.
    replication_key: str | None
    #: Where ``<name>.json``, the stream's schema, lies (a package or a directory).
    schema_directory: t.ClassVar[t.Any] = schemas

    def __init__(
        self, config: Mapping[str, t.Any], logger: logging.Logger, schema: dict[str, t.Any]
    ) -> None:
        """The log of the provider configured in ``config``; messages go to ``logger``;
        ``schema`` is the stream's (a declared integer id shapes ``substitute_id``)."""
        self.config = config
        self.logger = logger
        self.schema = schema
        self._run_started = now_instant()
        #: The API's clock minus the local one (ns), from the run's first ``Date`` header.
        self._clock_offset: int | None = None
        self._said: set[tuple[int, str]] = set()
        #: Says once per event what is odd in its id or time (values.py).
        self.odd_values = OddValues(self)

    @cached_property
    def api(self) -> ApiClient:
        """This provider's API client (shared by every thread that reads it)."""
        return ApiClient(
            self,
            timeout_s=self.timeout,
            deadline_s=float(self.config["request_deadline_seconds"]),
            policy=RetryPolicy.from_config(self.config),
            rate_limiter=self.rate_limiter,
        )

    @cached_property
    def rate_limiter(self) -> RateLimiter | None:
        """Keeps the provider's rate limit across every thread that reads it."""
        rate = self.settings.get("max_requests_per_second")
        limit, window_s = self.rate_limit or (None, 1.0)
        if rate is not None:
            return RateLimiter.per_second(float(rate), window_s)
        return None if limit is None else RateLimiter(limit, window_s)

    @property
    def authenticator(self) -> t.Any:
        """Applied to every request (a provider sets its own); None: no authentication."""
        return None

    # ------------------------------------------------------------------ the clock

    def run_started_ns(self) -> int:
        """When this source was created, in ns; by the API's clock once it answered, if
        that is behind (its first ``Date`` header, clock.py). No state is written past it."""
        return self._run_started + (self._clock_offset or 0)

    def clock_ns(self) -> int:
        """The time now (ns), by the API's clock where it is behind the local one."""
        return now_instant() + (self._clock_offset or 0)

    # --------------------------------------------------------------- messages

    def warn_once(self, key: str, message: str, *args: object) -> None:
        """Log a warning once per run and key."""
        self._once(logging.WARNING, key, message, *args)

    def info_once(self, key: str, message: str, *args: object) -> None:
        """Log an INFO line once per run and key."""
        self._once(logging.INFO, key, message, *args)

    def _once(self, level: int, key: str, message: str, *args: object) -> None:
        if (level, key) not in self._said:
            self._said.add((level, key))
            self.logger.log(level, "%s: " + message, self.provider_label, *args)

    def starting(self, context: Context, state: PartitionState) -> None:
        """A read of partition ``context`` begins from ``state`` (a provider may say why
        it reads less than the user may expect)."""

    # ---------------------------------------------------------- organizations

    # Organizations as partitions, the same way for every provider that has several: a
    # provider sets ``organizations_setting`` (``org_slugs``) and implements
    # ``list_organizations``. Unset, every organization the credentials see is read (one
    # request lists them, and the tap logs what it found); set, exactly those. A configured
    # ``event_types`` filter multiplies them: one partition per organization and event type.

    @cached_property
    def organizations(self) -> dict[str, str | None]:
        """The organizations to read (id -> name): the setting's, else all those listed."""
        configured = non_empty(self.settings.get(t.cast("str", self.organizations_setting)))
        if configured:
            return dict.fromkeys(configured)
        found = self.list_organizations()
        if not found:
            raise ProviderError(
                f"{self.provider_label}: {self.who_lists} no organization "
                f"({self.organizations_listing} returned none). Set "
                f"{self.provider}.{self.organizations_setting}{self.no_organization_hint}.",
                whole_provider=True,
            )
        self.logger.info(
            "%s: %s %s: %s",
            self.provider_label,
            self.who_lists,
            plural(len(found), "organization"),
            ", ".join(f"{name} ({org})" if name else org for org, name in found.items()),
        )
        return found

    def partitions(self) -> list[dict] | None:
        """One partition per organization (and event type); None for a provider with one
        log. Raises ``ProviderError`` when the organizations cannot be listed."""
        if self.organizations_setting is None:
            return None
        organizations = list(self.organizations)
        field, type_field = self.partition_field, self.event_type_field
        types = [self.event_type_filter(n) for n in non_empty(self.settings.get("event_types"))]
        if not types or type_field is None:
            return [{field: org} for org in organizations]
        return [{field: org, type_field: kind} for org in organizations for kind in types]

    def organization_name(self, context: Context) -> str | None:
        """The partition's organization name when the records do not carry it."""
        if self.organizations_setting is None or not context:
            return None
        return (self.__dict__.get("organizations") or {}).get(
            str(context.get(self.partition_field))
        )

    # -------------------------------------------------------------- requests

    def get_url(self, context: Context) -> str:
        """The log's URL for partition ``context``: ``path``'s placeholders filled in."""
        url = self.url_base + self.path
        for key, value in (context or {}).items():
            url = url.replace("{" + key + "}", quote(str(value), safe=""))
        return url

    def pages(
        self,
        context: Context,
        params: dict,
        start_token: t.Any = None,
        worker: Worker | None = None,
    ) -> Iterator[Page]:
        """Pages from ``start_token`` until the paginator or an empty page says stop.

        ``worker``: the read-ahead worker asking (None: sent now, one at a time).
        """
        for page in read_pages(self, context, params, start_token, worker):
            self.odd_values.check(context, page.records)
            yield page

    def request_json(
        self,
        context: Context,
        url: str,
        params: Mapping[str, t.Any],
        *,
        parse: Callable[[t.Any], t.Any] | None = None,
        worker: Worker | None = None,
        method: str = "GET",
        body: t.Any = None,
    ) -> ApiResponse:
        """Send ``method`` to ``url`` (``body``: JSON, None: none) with the tap's retry
        policy (http/client.py); the answer comes decoded.

        ``worker``: the read-ahead worker sending it, within its request slots (None: sent
        now, from the main thread or the organization listing).
        """
        where = f"{self.describe(context)}: {method} {urlsplit(url).path}"
        response = self.api.get(
            where, url, params, parse=parse, worker=worker, method=method, body=body
        )
        if self._clock_offset is None:
            self._clock_offset = clock_offset(response.headers.get("Date"), self.warn_once)
        return response


def non_empty(values: Iterable[object] | None) -> list[str]:
    """Strings of a config list, blanks dropped."""
    return [str(v).strip() for v in values or () if str(v).strip()]
