"""The page loop every provider shares: follow the paginator, catch loops, log progress.

``read_pages`` asks for one page after another (``AuditLogStream.page_request`` says how),
decodes each once, and stops when the paginator is finished or an empty page says so. A
paging scheme that goes in circles (a repeated token, the same page served again, endless
empty pages) stops with a clear error instead of looping forever.
"""

from __future__ import annotations

import threading
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

_progress = threading.local()  # per thread: the counters of the partition it reads


def new_progress() -> dict[str, t.Any]:
    """Fresh counters for this thread's partition (its progress lines and done line)."""
    progress = {"pages": 0, "records": 0, "started": time.monotonic(), "logged": 0.0}
    _progress.counters = progress
    return progress


def progress_of() -> dict[str, t.Any]:
    """The counters of the partition this thread reads."""
    progress = getattr(_progress, "counters", None)
    return new_progress() if progress is None else t.cast("dict[str, t.Any]", progress)


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
    read_in_pass = 0
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
        read_in_pass += len(records)
        _log_progress(
            stream, context, len(records), None if total is None else total - read_in_pass
        )
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


def _log_progress(
    stream: AuditLogStream, context: Context, records: int, left_in_pass: int | None
) -> None:
    progress = progress_of()
    progress["pages"] += 1
    progress["read"] = progress.get("read", 0) + records
    now = time.monotonic()
    if now - progress["logged"] < PROGRESS_EVERY_SECONDS:
        return
    progress["logged"] = now
    elapsed = max(now - progress["started"], 1e-6)
    done = progress["read"]
    left = f", about {max(left_in_pass, 0):,} left in this pass" if left_in_pass else ""
    pages = progress["pages"]
    stream.logger.info(
        "%s: %d page%s, %d records read (%.0f/s)%s.",
        stream.describe(context),
        pages,
        "" if pages == 1 else "s",
        done,
        done / elapsed,
        left,
    )


# --------------------------------------------------------- connection test
