"""The page loop every provider shares: follow the paginator, catch loops, log progress.

``read_pages`` asks for one page after another (``AuditLogStream.page_request`` says how),
decodes each once, and stops when the paginator is finished or an empty page says so. A
paging scheme that goes in circles (a repeated token, the same page served again, endless
empty pages) stops with a clear error instead of looping forever.
"""

from __future__ import annotations

import logging
import time
import typing as t

from tap_auditlogs.errors import ProviderError
from tap_auditlogs.strategies import Page

if t.TYPE_CHECKING:
    from collections.abc import Iterator

    import requests

    from tap_auditlogs.client import AuditLogStream
    from tap_auditlogs.parallel import Worker
    from tap_auditlogs.strategies import Context

PROGRESS_EVERY_SECONDS = 15.0
#: Empty pages with a next token (APIs that filter after paging) tolerated in a row.
MAX_EMPTY_PAGES_IN_A_ROW = 50


class Progress:
    """A partition's progress line, at most every ``PROGRESS_EVERY_SECONDS`` while it is
    read (``PartitionReader.pages`` reports each page)."""

    def __init__(self, logger: logging.Logger, label: str) -> None:
        """Lines go to ``logger``, about ``label`` (``Socket org 'acme'``)."""
        self.logger = logger
        self.label = label
        self.records = 0
        self.started = time.monotonic()
        self.logged = 0.0

    def page(self, pages: int, records: int, left_in_pass: int | None) -> None:
        """Page number ``pages`` read, with ``records``; ``left_in_pass``: the API's count."""
        self.records += records
        now = time.monotonic()
        if now - self.logged < PROGRESS_EVERY_SECONDS:
            return
        self.logged = now
        elapsed = max(now - self.started, 1e-6)
        left = f", about {max(left_in_pass, 0):,} left in this pass" if left_in_pass else ""
        self.logger.info(
            "%s: %d page%s, %d records read (%.0f/s)%s.",
            self.label,
            pages,
            "" if pages == 1 else "s",
            self.records,
            self.records / elapsed,
            left,
        )


def read_pages(
    stream: AuditLogStream,
    context: Context,
    params: dict,
    start_token: t.Any = None,
    worker: Worker | None = None,
) -> Iterator[Page]:
    """Fetch pages from ``start_token`` until the paginator or an empty page says stop."""
    paginator = stream.get_new_paginator(start_token)
    seen: set[str] = set() if start_token is None else {repr(start_token)}
    url = stream.get_url(dict(context or {}))
    previous_ids: list[str] = []
    empty_in_a_row = 0
    while not paginator.finished:
        token = paginator.current_value
        page_url, query = stream.page_request(url, params, token)
        response = stream.request_json(
            context, page_url, query, parse=stream.parse_page, worker=worker
        )
        records, total = response.page
        try:
            paginator.advance(t.cast("requests.Response", response))  # read as one
        except RuntimeError as loop:
            raise _loop_error(stream, context, token) from loop
        # A server that ignores the page parameter serves the same page again under
        # a new token (or page number): that is a loop too.
        ids = [stream.id_of(record) for record in records]
        if ids and ids == previous_ids:
            raise _loop_error(stream, context, token, same_page=True)
        previous_ids = ids
        next_token = None if paginator.finished else paginator.current_value
        if next_token is not None:
            key = repr(next_token)
            if key in seen:
                raise _loop_error(stream, context, next_token)
            seen.add(key)
        yield Page(
            records=records,
            token=token,
            next_token=next_token,
            total=total,
            elapsed_s=response.elapsed.total_seconds(),
        )
        if records:
            empty_in_a_row = 0
            continue
        if not paginator.continue_if_empty(t.cast("requests.Response", response)):
            return
        empty_in_a_row += 1
        if empty_in_a_row >= MAX_EMPTY_PAGES_IN_A_ROW:
            raise _loop_error(stream, context, next_token, empty=empty_in_a_row)


def _loop_error(
    stream: AuditLogStream,
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
        f"{stream.describe(context)}: the API {what}; stopped to avoid an endless loop. "
        "The state up to the last page is saved."
    )
