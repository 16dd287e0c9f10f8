"""The types every layer shares: a record, a partition's context, a page and its request."""

from __future__ import annotations

import dataclasses
import typing as t

if t.TYPE_CHECKING:
    from collections.abc import Mapping

#: One event as the API sent it (decoded JSON).
Record = dict[str, t.Any]
#: A partition: its fields (``{"org_slug": "acme"}``); None for a log with no partitions.
Context = t.Optional["Mapping[str, t.Any]"]


@dataclasses.dataclass
class Page:
    """One page of an API response, decoded once."""

    records: list[Record]
    token: t.Any = None  # what fetched this page (None: the first page)
    next_token: t.Any = None  # what fetches the following page; None on the last page
    total: int | None = None  # the provider's total count, when it tells
    elapsed_s: float = 0.0  # how long the API took to answer it


class PageRequest(t.NamedTuple):
    """One page's request: its URL, its query and its JSON body (None: no body)."""

    url: str
    query: Mapping[str, t.Any]
    body: t.Any = None
