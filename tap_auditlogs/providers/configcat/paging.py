"""ConfigCat's page numbers: how ``paging`` says whether a page has a successor.

``ConfigCatPaginator`` reads v2's ``paging`` envelope (``hasNext``, ``totalPages``,
``currentPage``, ``totalCount``); a page without it (nullable in the spec) has a successor
when it is full.
"""

from __future__ import annotations

import typing as t

from singer_sdk.pagination import BaseAPIPaginator

if t.TYPE_CHECKING:
    import requests

# documented: v2's pageSize is 1..100, default 100
# (https://configcat.com/docs/api/reference/get-organization-auditlogs-v-2/); also the
# default page a redirected v1 call answers.
PAGE_SIZE = 100


class PageIgnoredError(Exception):
    """The API served another page than the one asked for."""


class ConfigCatPaginator(BaseAPIPaginator["int | None"]):
    """Page numbers from 1 while ``paging.hasNext`` is true, up to ``paging.totalPages``.

    An empty page with ``hasNext`` is followed (a server that filters after paging). The
    last page by ``totalPages`` ends the pass even when ``hasNext`` still says more, and a
    page number past the end that the API clamps to its last page is the end, not an error.
    It starts at None for v1, so the first v1 call has no paging parameters. A bare array
    is a single answer.
    """

    def has_more(self, response: requests.Response) -> bool:
        """More pages while ``hasNext`` and before ``totalPages``; no ``paging``: a full page."""
        payload = response.json()
        if not isinstance(payload, dict):
            return False
        data = payload.get("data") or []
        paging = payload.get("paging")
        if not paging:  # nullable in the spec: a full page may have a successor
            return len(data) >= PAGE_SIZE
        asked, served = self.current_value or 1, paging.get("currentPage")
        last = paging.get("totalPages")
        last = last if isinstance(last, int) and not isinstance(last, bool) else None
        if served is not None and served != asked:
            if _clamped(paging, asked, served, last):
                return False  # asked past the end, clamped to the last page (already read)
            # Without this check, a server that ignores pageNumber is read forever.
            raise PageIgnoredError(f"asked for page {asked}, the API served page {served}")
        if last is not None and asked >= last:
            return False  # the last page, whatever hasNext says
        return paging.get("hasNext") is True

    def get_next(self, response: requests.Response) -> int | None:
        """The following page number."""
        return (self.current_value or 1) + 1


def _clamped(paging: dict, asked: int, served: int, last: int | None) -> bool:
    """True when a page past the end was asked and the API served its last page instead:
    the last page by ``totalPages``, or one whose number covers ``totalCount`` already."""
    if served > asked:
        return False
    if last is not None and served == last:
        return True
    count, size = paging.get("totalCount"), paging.get("pageSize") or PAGE_SIZE
    return isinstance(count, int) and isinstance(size, int) and count <= served * size
