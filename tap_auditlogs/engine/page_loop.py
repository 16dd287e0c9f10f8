"""The page loop every provider shares: follow the paginator, catch loops, log progress.

``read_pages`` asks for one page after another (``AuditLogSource.build_page_request`` says
how: URL, query, and a body for a provider that POSTs), decodes each once, and stops when
the paginator is finished: an empty page that still points on is followed (a server that
filters after paging). A paging scheme that goes in
circles (a repeated token, the same page served again, endless empty pages) stops with a
clear error instead of looping forever, after the page that repeats was handed on; a
repeat that can only be the end of the log (its total read, or a short page) ends the read
with a WARNING instead.
"""

from __future__ import annotations

import time
import typing as t

from tap_auditlogs.core.errors import ProviderError
from tap_auditlogs.core.instants import NS_PER_SECOND, format_instant
from tap_auditlogs.core.text import plural
from tap_auditlogs.core.types import Page

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    import requests
    from singer_sdk.pagination import BaseAPIPaginator

    from tap_auditlogs.core.types import Context, PageRequest, Record
    from tap_auditlogs.http.owner import Worker
    from tap_auditlogs.http.responses import ApiResponse


class PagedLog(t.Protocol):
    """What the page loop reads of a provider's log (``PagedLog`` is one)."""

    @property
    def http_method(self) -> str:
        """The requests' method."""

    @property
    def page_size(self) -> int | None:
        """Records per page asked for: a shorter page is the last of a listing."""

    @property
    def empty_page_may_end(self) -> bool:
        """The API documents an empty page as the end of the log."""

    def get_new_paginator(self, start_value: t.Any = None) -> BaseAPIPaginator:
        """A paginator positioned at ``start_value``."""

    def get_url(self, context: Context) -> str:
        """The log's URL for a partition."""

    def build_page_request(
        self, context: Context, url: str, params: dict, token: t.Any
    ) -> PageRequest:
        """The request of page ``token`` of a pass."""

    def request_json(
        self,
        context: Context,
        url: str,
        params: t.Mapping[str, t.Any],
        *,
        parse: Callable[[t.Any], t.Any] | None = None,
        worker: Worker | None = None,
        method: str = "GET",
        body: t.Any = None,
    ) -> ApiResponse:
        """One request with the retry policy, decoded."""

    def parse_page(self, payload: t.Any) -> tuple[list[Record], int | None]:
        """Records and total of a decoded page."""

    def id_of(self, record: Record) -> str:
        """The record's id."""

    def describe(self, context: Context) -> str:
        """Provider and partition, for messages."""

    def warn_once(self, key: str, message: str, *args: object) -> None:
        """A warning, once per run and key."""


PROGRESS_EVERY_SECONDS = 15.0
#: Empty pages with a next token (APIs that filter after paging) tolerated in a row.
MAX_EMPTY_PAGES_IN_A_ROW = 50


class Progress:
    """A partition's progress line, at most every ``PROGRESS_EVERY_SECONDS`` while it is
    read (``PartitionReader.pages`` reports each page)."""

    def __init__(self, say: Callable[[str], None], label: str) -> None:
        """Lines go to ``say`` (logged by the main thread, in the order of the output),
        about ``label`` (``Socket org 'acme'``)."""
        self.say = say
        self.label = label
        self.records = 0
        self.started = time.monotonic()
        self.logged = 0.0
        self.windows_logged = 0.0

    def page(self, pages: int, records: int, left_in_pass: int | None) -> None:
        """Page number ``pages`` read, with ``records``; ``left_in_pass``: the API's count."""
        self.records += records
        now = time.monotonic()
        if now - self.logged < PROGRESS_EVERY_SECONDS:
            return
        self.logged = now
        elapsed = max(now - self.started, 1e-6)
        left = f", about {max(left_in_pass, 0):,} left in this pass" if left_in_pass else ""
        self.say(
            f"{self.label}: {plural(pages, 'page')}, {plural(self.records, 'record')} read "
            f"({self.records / elapsed:.0f}/s){left}."
        )

    def window(self, reached_ns: int, end_ns: int, done: int, windows: int) -> None:
        """Time window ``done`` of ``windows`` read, up to ``reached_ns`` of ``end_ns``."""
        now = time.monotonic()
        if now - self.windows_logged < PROGRESS_EVERY_SECONDS:
            return
        self.windows_logged = now
        left_s = max(end_ns - reached_ns, 0) / NS_PER_SECOND
        left = plural(round(left_s / 86_400), "day") if left_s >= 86_400 else "less than a day"
        reached = format_instant(reached_ns, digits=0)[:10]
        self.say(
            f"{self.label}: windows read up to {reached}, {left} left "
            f"({done} of {plural(windows, 'window')})."
        )


def read_pages(
    source: PagedLog,
    context: Context,
    params: dict,
    start_token: t.Any = None,
    worker: Worker | None = None,
) -> Iterator[Page]:
    """Fetch pages from ``start_token`` until the paginator says stop.

    An empty page is the end only when the paginator says so: a server that filters after
    paging answers empty pages that still point on. Every page is yielded before any loop
    check, so a page whose successor repeats is never thrown away. A repeat (a token seen
    before, or the same page served again) ends the read with a WARNING when nothing can lie
    beyond it (the API's total is read, or the page is short: the last page of a listing);
    otherwise it is a loop, stopped with an error (the state up to the last page is saved).
    """
    paginator = source.get_new_paginator(start_token)
    seen: set[str] = set() if start_token is None else {repr(start_token)}
    url = source.get_url(dict(context or {}))
    previous_ids: list[str] = []
    read_ids: set[str] = set()
    empty_in_a_row = 0
    while not paginator.finished:
        token = paginator.current_value
        request = source.build_page_request(context, url, params, token)
        response = source.request_json(
            context,
            request.url,
            request.query,
            method=source.http_method,
            body=request.body,
            parse=source.parse_page,
            worker=worker,
        )
        records, total = response.page
        try:
            paginator.advance(t.cast("requests.Response", response))  # read as one
            next_token = None if paginator.finished else paginator.current_value
        except RuntimeError:  # the paginator's own check: the next token is this page's
            next_token = token
        ids = [source.id_of(record) for record in records]
        # A server that ignores the page parameter (or clamps a page number past the end)
        # serves the same page again under a new token: a repeat too.
        same_page = bool(ids) and ids == previous_ids
        repeated_token = next_token is not None and repr(next_token) in seen
        read_ids.update(ids)
        repeat = same_page or repeated_token
        # Clamped past the end (the paginator knows it ended), or nothing can follow it.
        ends = repeat and (paginator.finished or _nothing_beyond(source, records, total, read_ids))
        if ends:  # said before the page goes out: a reader may stop at its end
            _warn(
                source,
                context,
                "repeat",
                "the API %s after %s (%s); nothing can follow it, so the read ends there.",
                "served a page already read again"
                if same_page
                else f"pointed again at the page token {next_token!r}",
                plural(len(read_ids), "event"),
                "a short page" if total is None else f"its total count {total} is read",
            )
        if not same_page or ends:
            # A page served again was handed on the first time: at the end, an empty page
            # still says that the API ended the scope, with its last total (totals.py).
            yield Page(
                records=[] if same_page else records,
                token=token,
                next_token=None if ends else next_token,
                total=total,
                elapsed_s=response.elapsed.total_seconds(),
            )
        previous_ids = ids
        if ends:
            return
        if repeat:
            raise _loop_error(source, context, next_token, same_page=same_page)
        if next_token is not None:
            seen.add(repr(next_token))
        if records:
            empty_in_a_row = 0
            continue
        empty_in_a_row += 1
        if empty_in_a_row >= MAX_EMPTY_PAGES_IN_A_ROW and not paginator.finished:
            if not source.empty_page_may_end:
                raise _loop_error(source, context, next_token, empty=empty_in_a_row)
            _warn(
                source,
                context,
                "empty-pages",
                "the API returned %d empty pages in a row, each pointing on; taken as the "
                "end of the log (the API documents an empty page as its end).",
                empty_in_a_row,
            )
            return


def _nothing_beyond(source: PagedLog, records: list, total: int | None, read_ids: set[str]) -> bool:
    """True when a repeated page can be the last: its total is read, or it is short."""
    if total is not None and len(read_ids) >= total:
        return True
    page_size = source.page_size
    return page_size is not None and len(records) < page_size


def _warn(source: PagedLog, context: Context, kind: str, message: str, *args: object) -> None:
    """One WARNING per run, kind and partition."""
    where = ", ".join(f"{key} '{value}'" for key, value in (context or {}).items())
    source.warn_once(f"{kind} {where}", ("%s: " if where else "%s") + message, where, *args)


def _loop_error(
    source: PagedLog,
    context: Context,
    token: object,
    *,
    same_page: bool = False,
    empty: int = 0,
) -> ProviderError:
    if empty:
        what = f"returned {empty} empty pages in a row, each with a new page token"
    elif same_page:
        what = f"served the same page again for the page token {token!r} (it ignores paging)"
    else:
        what = f"returned the page token {token!r} twice"
    return ProviderError(
        f"{source.describe(context)}: the API {what}; stopped to avoid an endless loop. "
        "The state up to the last page is saved."
    )
