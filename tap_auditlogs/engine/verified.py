"""``VerifiedAscending``: reading an API whose lower bound and sort may be ignored.

It judges the first pages of a pass and hands the pass to the strategy that fits what they
show (``Ascending``, ``NewestFirst``, or a full read filtered on the client), checking every
page on the way; the path taken is logged once per run.

First pages can mislead: newest first with one shared timestamp looks like no order, and
pages in no order can look oldest first by chance. A bookmark moved page by page past a
misjudged page would skip the older events still to come if the run is killed before the
disorder shows. So the bookmark moves page by page only once the order is proven: pages
that rise, from a lower bound the API is seen to honour (nothing older came back). Any
other pass moves it only when complete; a kill costs a re-read, never an event.
"""

from __future__ import annotations

import itertools
import typing as t

from tap_auditlogs.core.types import Page
from tap_auditlogs.engine.declaration import LOWER_BOUND_MARGIN_NS
from tap_auditlogs.engine.newest_first import NewestFirst
from tap_auditlogs.engine.strategies import Ascending

if t.TYPE_CHECKING:
    from collections.abc import Iterator

    from tap_auditlogs.core.types import Record
    from tap_auditlogs.engine.partition_reader import PartitionReader

#: Pages the verified strategy reads before it must decide. Only pages whose timestamps are
#: all equal leave the order open, so a real log decides on its first page.
PROBE_PAGES = 3

#: What the verified strategy found on the first pages -> what it logs (``{bound}``: below).
_PATHS = {
    "ascending": (
        "pages come oldest first as asked and {bound}; reading oldest first, the bookmark "
        "moves {moves} (path: ascending)."
    ),
    "ascending-whole-log": (
        "pages come oldest first but {bound}; reading the whole log oldest first, the "
        "bookmark moves at the end of the pass (path: ascending, whole log)."
    ),
    "newest-first": (
        "pages come newest first although oldest first was asked ({bound}); reading newest "
        "first down to the bookmark and stopping there (path: newest-first)."
    ),
    "unordered": (
        "pages come in no order ({bound}); reading the whole log and filtering on the client, "
        "the bookmark moves only at the end (path: full read)."
    ),
    "unverified": (
        "too few distinct timestamps to tell the order ({bound}); reading oldest first with "
        "the order checked on every page, the bookmark moves at the end of the pass "
        "(path: ascending, unverified)."
    ),
    "resume": (
        "an earlier run left a newest-first pass unfinished; finishing it, then reading "
        "newest first (path: newest-first, resumed)."
    ),
}
_BOUNDS = {
    "none": "no lower bound was sent yet",
    "honoured": "nothing older than the lower bound came back",
    "ignored": "the lower bound is ignored: older events came back, filtered on the client",
}


class VerifiedAscending:
    """``Ascending`` once the pages prove the API honours the lower bound and the sort.

    For APIs given a lower bound and an ascending sort that they may ignore (parameters
    too new to trust, an undocumented order). The first page of the pass is read, judged,
    and pushed back (``PartitionReader.push_back``) for the strategy that fits what it shows:

    * oldest first from a bound seen honoured (proven): ``Ascending``, the bookmark moves
      page by page. Oldest first without that proof (no bound sent yet, or older events
      than the bound came back, or too few distinct timestamps to tell): ``Ascending``
      moving the bookmark only when the pass is complete.
    * newest first: ``NewestFirst`` (early stop, a resumable pending pass). It checks
      every page itself and moves the bookmark only once a pass is complete.
    * no order: ``Ascending``, which sees the disorder on that same page and reads to the
      end, filtering on the client and moving the bookmark only then.

    ``Ascending`` keeps checking every page: at a step back in time it takes back the
    bookmarks it moved page by page and reads on to the end (see ``Ascending.read``).

    A newest-first pass an earlier run left unfinished is finished first, by
    ``NewestFirst``. The path taken is logged once per run, at INFO.
    """

    name = "verified-ascending"
    summary = (
        "ascending when the API proves it honours the filters, else newest-first or a full read"
    )

    def __init__(self, *, bound_slack_ns: int = 0, probe_pages: int = PROBE_PAGES) -> None:
        """``bound_slack_ns``: how much earlier than the bound the reader may really ask.

        A reader that rounds the bound down (to whole seconds, say) gets events up to that
        much older; they do not prove the bound ignored.
        """
        self.bound_slack_ns = bound_slack_ns
        self.probe_pages = probe_pages
        #: The order is not proven: the bookmark moves when the pass is complete.
        self.ascending = Ascending(page_by_page=False)
        #: Once the first page proves the bound and the sort honoured, the rest of the
        #: read may be split into ranges fetched side by side.
        self.proven_ascending = Ascending(splittable=True)
        self.newest_first = NewestFirst()

    def read(self, reader: PartitionReader) -> Iterator[Record]:
        """Judge the first page(s), then read with the strategy they call for."""
        stream, state = reader.stream, reader.state
        if state.pending is not None:
            stream.info_once("path", _PATHS["resume"])
            yield from self.newest_first.read(reader)
            return
        lower = stream.lower_bound(state.bookmark)
        params = stream.request_params(reader.context, lower, None)
        pages = reader.pages(params)
        probed: list[Page] = []
        stamps: list[int] = []
        order = None
        for page in pages:
            probed.append(page)
            stamps += [ts for r in page.records if (ts := stream.instant_of(r)) is not None]
            order = _order_of(stamps)
            if order is not None or page.next_token is None or len(probed) >= self.probe_pages:
                break
        # The request asked from the margin earlier (declaration.py), and the slack more.
        floor = None if lower is None else lower - LOWER_BOUND_MARGIN_NS - self.bound_slack_ns
        bound = "none" if floor is None else "honoured"
        if floor is not None and any(ts < floor for ts in stamps):
            bound = "ignored"
        path = order or "unverified"
        if path == "ascending" and bound == "ignored":
            path = "ascending-whole-log"
        # Proven oldest first: pages that rise, from a bound seen honoured. Anything else
        # may still hide older events further on (the module docstring).
        proven = path == "ascending" and bound == "honoured"
        moves = "page by page" if proven else "at the end of the pass (order not proven)"
        stream.info_once("path", _PATHS[path].format(bound=_BOUNDS[bound], moves=moves))
        reader.push_back(params, probed, pages)  # the strategy chosen reads them first
        if path == "newest-first":
            yield from self.newest_first.read(reader)
            return
        ascending = self.proven_ascending if proven else self.ascending
        yield from ascending.read(reader)


def _order_of(stamps: list[int]) -> str | None:
    """``ascending``, ``newest-first`` or ``unordered``; None while all instants are equal."""
    rises = falls = False
    for a, b in itertools.pairwise(stamps):
        rises = rises or b > a
        falls = falls or b < a
    if rises and falls:
        return "unordered"
    if falls:
        return "newest-first"
    return "ascending" if rises else None
