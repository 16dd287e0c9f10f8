"""ConfigCat's audit log as the engine reads it: the source class (windows, API versions)."""

from __future__ import annotations

import typing as t
from functools import cached_property
from urllib.parse import quote

from singer_sdk.authenticators import BasicAuthenticator

from tap_auditlogs.core.errors import ProviderError
from tap_auditlogs.core.instants import NS_PER_SECOND, format_instant, parse_instant
from tap_auditlogs.core.redaction import Redactor
from tap_auditlogs.engine.declaration import LOWER_BOUND_MARGIN_NS
from tap_auditlogs.engine.source import AuditLogSource
from tap_auditlogs.engine.windows import TimeWindows
from tap_auditlogs.http.responses import UnexpectedShapeError, list_field, type_name
from tap_auditlogs.providers.configcat.events import DOCUMENTATION, EVENT_TYPES
from tap_auditlogs.providers.configcat.paging import PAGE_SIZE, ConfigCatPaginator, PageIgnoredError

if t.TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from tap_auditlogs.core.types import Context, Page, Record
    from tap_auditlogs.engine.state import PartitionState
    from tap_auditlogs.http.owner import Worker
    from tap_auditlogs.http.responses import ApiResponse

API_VERSIONS = ("v2", "v1")
DAY_NS = 86_400 * NS_PER_SECOND
# documented: "The distance between fromUtcDateTime and toUtcDateTime cannot exceed 30
# days"; "If neither ... is set, the audit logs for the last 7 days will be returned"
# (https://configcat.com/docs/api/reference/get-organization-auditlogs).
MAX_WINDOW_DAYS = 30  # the API rejects a wider toUtcDateTime - fromUtcDateTime
DEFAULT_SPAN_NS = 7 * DAY_NS  # what the API answers without dates: the first run's reach
BOUND_MARGIN_NS = LOWER_BOUND_MARGIN_NS  # each request starts this much before its window
TIMESTAMP_DIGITS = 7  # .NET ticks (100 ns): ConfigCat's own precision
TICK_NS = 100
#: Filter settings -> query parameters.
FILTERS = {"product_id": "productId", "config_id": "configId", "environment_id": "environmentId"}


class ConfigCatAuditLog(AuditLogSource):
    """Audit-log items of every configured ConfigCat organization (a partition each)."""

    name = "configcat_audit_log"
    provider = "configcat"
    provider_label = "ConfigCat"
    primary_keys = ("organizationId", "auditLogId")
    replication_key = "auditLogDateTime"
    partition_field = "organizationId"
    organizations_setting = "organization_ids"
    organizations_listing = "GET /v1/organizations"
    no_organization_hint = ", or use the Public API credentials of a member of the organization"
    event_type_field = "auditLogType"
    #: The ``auditLogType`` filter takes the AuditLogType enum (lowerCamel): every value
    #: current and earlier (events.py); a configured name is matched ignoring case.
    event_type_values = tuple(EVENT_TYPES)
    event_type_source = DOCUMENTATION
    default_base_url = "https://api.configcat.com"
    homepage = "https://configcat.com"
    first_run_reach = f"{DEFAULT_SPAN_NS // DAY_NS} days"
    retention_documented = (
        "ConfigCat keeps audit logs 7 days (Free), 35 days (Pro, Smart) or 2 years "
        "(Enterprise) by plan (https://configcat.com/pricing/): no default, set your plan's."
    )
    credentials_hint = (
        "Check configcat.username and configcat.password: they must be ConfigCat Public API "
        "credentials (a username and password from "
        "https://app.configcat.com/my-account/public-api-credentials, not an SDK key)"
    )

    rate_limit_reset_headers = ("X-Rate-Limit-Reset",)
    #: Every window ends with ``toUtcDateTime``: the run's start, or ``end_date`` when earlier.
    upper_bound_param = "toUtcDateTime"
    upper_bound_trusted = True
    page_size = PAGE_SIZE
    empty_page_may_end = True  # documented: an empty page ends the log
    _v1_paging_ignored = False  # learnt on the first v1 answer that ignores pageNumber
    #: The connection test: one item of the API's default range (the last 7 days).
    probe_query: t.ClassVar[dict[str, t.Any]] = {"pageSize": 1}

    # A property, not the base's class attribute: the window size is a setting.
    @cached_property
    def strategy(self) -> TimeWindows:  # type: ignore[override]
        """Windows of ``window_days`` including the margin; first run: the last 7 days."""
        days = int(self.settings.get("window_days") or MAX_WINDOW_DAYS)
        return TimeWindows(
            window_ns=min(days, MAX_WINDOW_DAYS) * DAY_NS - BOUND_MARGIN_NS,
            default_span_ns=DEFAULT_SPAN_NS,
        )

    @property
    def api_version(self) -> str:
        """``v2``, or ``v1`` when pinned."""
        return str(self.settings.get("api_version") or "v2")

    @cached_property
    def authenticator(self) -> BasicAuthenticator:
        """HTTP Basic with the Public API credentials."""
        username, password = str(self.settings["username"]), str(self.settings["password"])
        Redactor.register_basic(username, password)
        return BasicAuthenticator(username=username, password=password)

    # ----------------------------------------------------------- organizations

    def list_organizations(self) -> dict[str, str | None]:
        """``GET /v1/organizations``: every organization the credentials see, id -> name."""
        response = self.request_json(
            None, f"{self.url_base}/v1/organizations", {}, parse=_parse_organizations
        )
        return dict(response.page)

    # ---------------------------------------------------------------- requests

    def get_url(self, context: Context) -> str:
        """The audit-log URL of the partition's organization, in the pinned API version."""
        org = quote(str((context or {}).get("organizationId", "")), safe="")
        return f"{self.url_base}/{self.api_version}/organizations/{org}/auditlogs"

    def request_params(self, context: Context, lower: int | None, upper: int | None) -> dict:
        """The window (from a margin earlier), the filters, and v2's page size."""
        params: dict[str, t.Any] = {"pageSize": PAGE_SIZE} if self.api_version == "v2" else {}
        for setting, name in FILTERS.items():
            value = str(self.settings.get(setting) or "").strip()
            if value:
                params[name] = value
        if context and context.get("auditLogType"):
            params["auditLogType"] = context["auditLogType"]
        if lower is not None:
            params["fromUtcDateTime"] = _utc(lower - BOUND_MARGIN_NS)
        if upper is not None:  # rounded up to a tick: an event just before it stays inside
            params["toUtcDateTime"] = _utc(upper - upper % -TICK_NS)
        return params

    def page_params(self, token: t.Any) -> dict:
        """The page number goes in ``pageNumber``."""
        return {"pageNumber": token}

    def get_new_paginator(self, start_value: t.Any = None) -> ConfigCatPaginator:
        """From page 1 on v2; on v1, a first call without paging parameters."""
        if start_value is None and self.api_version == "v2":
            start_value = 1
        return ConfigCatPaginator(start_value)

    def parse_page(self, payload: t.Any) -> tuple[list[Record], int | None]:
        """``data`` and ``paging.totalCount`` of an envelope, or a v1 bare array.

        Without ``paging`` (null in the spec, or left out) the page size says the rest: a
        short page ends the window, a full one may have a successor (``has_more``).
        """
        if isinstance(payload, list):
            return _items(payload), None
        items = _items(list_field(payload, "data"))
        if "paging" not in payload:
            self.warn_once(
                "no-paging",
                "an audit-log answer has no `paging`: reading on by page size (a page of "
                "fewer than %d items ends its window).",
                PAGE_SIZE,
            )
        paging = payload.get("paging")
        if paging is None:
            return items, None
        if not isinstance(paging, dict):
            raise UnexpectedShapeError("paging", f"is {type_name(paging)}, not an object")
        return items, paging.get("totalCount")

    def request_json(
        self,
        context: Context,
        url: str,
        params: Mapping[str, t.Any],
        *,
        parse: t.Callable[[t.Any], t.Any] | None = None,
        worker: Worker | None = None,
        **request: t.Any,
    ) -> ApiResponse:
        """The client's request, then the rate-limit headers at debug level."""
        response = super().request_json(context, url, params, parse=parse, worker=worker, **request)
        remaining = response.headers.get("X-Rate-Limit-Remaining")
        if remaining is not None:
            self.logger.debug(
                "%s: X-Rate-Limit-Remaining %s, X-Rate-Limit-Reset %s.",
                self.describe(context),
                remaining,
                response.headers.get("X-Rate-Limit-Reset", "-"),
            )
        return response

    # -------------------------------------------------------------- the sync

    def starting(self, context: Context, state: PartitionState) -> None:
        """Say once when only the API's default 7 days are read."""
        if self.start_ns is None and state.bookmark is None:
            self.warn_once(
                "default-span",
                "no start_date and no saved state: reading the last 7 days only (the "
                "API's default). Set start_date to read further back (ConfigCat keeps "
                "7 days on Free, 35 on Pro/Smart, 2 years on Enterprise).",
            )

    def pages(
        self,
        context: Context,
        params: dict,
        start_token: t.Any = None,
        worker: Worker | None = None,
    ) -> Iterator[Page]:
        """v2 pages; on v1, answers checked for the cut the v1->v2 redirect makes."""
        if self.api_version == "v1":
            yield from self._v1_pages(context, params, worker)
            return
        try:
            yield from super().pages(context, params, start_token, worker)
        except PageIgnoredError as error:
            raise ProviderError(
                f"{self.describe(context)}: {error}, so paging cannot go on."
            ) from None

    def _v1_pages(self, context: Context, params: dict, worker: Worker | None) -> Iterator[Page]:
        """Follow a redirected v1's paging; split the window when v1 cannot page."""
        try:
            for page in super().pages(context, params, worker=worker):
                if page.token is None and self._v1_cut(page):
                    yield from self._split_window(context, params, worker)
                    return
                yield page
        except PageIgnoredError:
            self._v1_paging_ignored = True
            self.warn_once(
                "v1-paging-ignored",
                "the v1 audit-log endpoint ignores pageNumber: reading each window in "
                "parts small enough for one page instead; set configcat.api_version to v2.",
            )
            yield from self._split_window(context, params, worker)  # re-read: strategy dedupes

    def _v1_cut(self, page: Page) -> bool:
        """True when v1's first answer holds one page of more: split the window instead."""
        if page.next_token is not None:
            self.warn_once(
                "v1-paged",
                "the v1 audit-log endpoint answered with the first page of a paged list: "
                "since 2026-06-01 ConfigCat redirects v1 to v2 with default pagination. "
                "Following the paging; set configcat.api_version to v2.",
            )
            return self._v1_paging_ignored
        if page.total is None and len(page.records) == PAGE_SIZE:
            self.warn_once(
                "v1-cut",
                "the v1 audit-log endpoint answered exactly %d items, one default page: the "
                "answer may be cut since ConfigCat redirects v1 to v2. Splitting the window "
                "until each answer is shorter; set configcat.api_version to v2.",
                PAGE_SIZE,
            )
            return True
        return False

    def _split_window(
        self, context: Context, params: dict, worker: Worker | None
    ) -> Iterator[Page]:
        """Read a window that v1 may have cut as two halves that overlap by the margin."""
        lower = parse_instant(params["fromUtcDateTime"])
        upper = parse_instant(params["toUtcDateTime"])
        if upper - lower <= 4 * BOUND_MARGIN_NS:
            raise ProviderError(
                f"{self.describe(context)}: the v1 audit-log endpoint answers at most "
                f"{PAGE_SIZE} items, and more happened between {params['fromUtcDateTime']} "
                f"and {params['toUtcDateTime']}. Set configcat.api_version to v2."
            )
        middle = lower + (upper - lower) // 2
        yield from self._v1_pages(context, {**params, "toUtcDateTime": _utc(middle)}, worker)
        later = {**params, "fromUtcDateTime": _utc(middle - BOUND_MARGIN_NS)}
        yield from self._v1_pages(context, later, worker)

    def error_hint(self, status: int) -> str:
        """ConfigCat-specific advice for error statuses."""
        if status == 404:
            return (
                "Check configcat.organization_ids: ConfigCat knows no such organization, "
                "or these credentials cannot see it."
            )
        if status == 403:
            return (
                "The credentials' user may not read this organization's audit log; "
                + self.credentials_hint
                + "."
            )
        if status == 400:
            return (
                "ConfigCat rejected the request; check configcat.event_types, "
                "configcat.product_id, configcat.config_id, configcat.environment_id "
                "and configcat.window_days."
            )
        return super().error_hint(status)


def _utc(ns: int) -> str:
    """A query bound: ISO 8601 UTC, cut to ticks (no event lies between the cut and ``ns``)."""
    return format_instant(ns, digits=TIMESTAMP_DIGITS)


def _items(data: object) -> list[Record]:
    """Audit-log items, each an object; ``UnexpectedShapeError`` names what is not so. An
    item without ``auditLogId`` or ``auditLogDateTime`` is kept: the strategies cope
    (``check_values``) and the stream gives it an id."""
    if not isinstance(data, list):
        raise UnexpectedShapeError("data", f"is {type_name(data)}, not a list")
    for item in data:
        if not isinstance(item, dict):
            raise UnexpectedShapeError("data[]", f"holds {type_name(item)}, not an object")
    return data


def _parse_organizations(payload: object) -> dict[str, str]:
    """``[{organizationId, name}]`` -> {id: name}."""
    if not isinstance(payload, list):
        raise TypeError("the organizations are not a list")
    return {
        str(org["organizationId"]): str(org.get("name") or "")
        for org in payload
        if isinstance(org, dict) and org.get("organizationId")
    }
