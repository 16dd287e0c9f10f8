"""``NewestFirst``: reading an API that pages from the newest event down (strategies.py has
the shared rules).

A pass reads down to the bookmark and stops early; the bookmark moves only when the pass
reached the old one. A pass cut short keeps its place (``pending_pass``: the page token, the
oldest event emitted) and the next run finishes it first; a saved token the API refuses, or a
page that no longer continues where the last run stopped, starts the pass over from the top
(duplicates, never a loss).
"""

from __future__ import annotations

import itertools
import typing as t

from tap_auditlogs.core.errors import ProviderError
from tap_auditlogs.core.instants import format_instant, parse_instant
from tap_auditlogs.core.types import Page
from tap_auditlogs.engine.state import decode_ids, encode_ids, prune_ids
from tap_auditlogs.engine.strategies import REFUSED_TOKEN_STATUSES, _is_new, _known, _max, _nearest
from tap_auditlogs.engine.totals import Rereads, ScopeCount, keep_bookmark

if t.TYPE_CHECKING:
    from collections.abc import Iterator

    from tap_auditlogs.core.types import Record
    from tap_auditlogs.engine.partition_reader import PartitionReader


class NewestFirst:
    """Newest first down to the bookmark, with an early stop and a resumable pass."""

    name = "newest-first"
    summary = "newest-first scan with early stop"

    def read(self, reader: PartitionReader) -> Iterator[Record]:
        """Finish a pass an earlier run left unfinished, then make a fresh pass."""
        state = reader.state
        pending = state.pending
        if pending is not None:
            yield from self._pass(
                reader,
                ceiling=_parse_optional(pending.get("ceiling")),
                pass_ids=decode_ids(pending.get("ceiling_ids")),
                resume=pending,
                rereads=Rereads(),
            )
        yield from self._pass(reader, ceiling=None, pass_ids={}, resume=None, rereads=Rereads())

    def _pass(  # noqa: PLR0915
        self,
        reader: PartitionReader,
        *,
        ceiling: int | None,
        pass_ids: dict[str, int],
        resume: dict | None,
        rereads: Rereads,
    ) -> Iterator[Record]:
        """Read from the newest page (or the resume point) down to the bookmark.

        A pass from the newest page that the API ends short of the total it reports is
        read again (totals.py); a shortfall that persists keeps the bookmark.
        """
        stream, state = reader.stream, reader.state
        count = ScopeCount()  # checked only for a pass read from the newest page
        bookmark = state.bookmark
        lower = stream.lower_bound(bookmark)
        recent = state.recent
        lookback = stream.lookback_ns
        oldest = _parse_optional(resume.get("oldest")) if resume else None
        oldest_id = resume.get("oldest_id") if resume else None
        start_token = resume.get("page_token") if resume else None
        ordered, first_page = True, True
        params = stream.request_params(reader.context, lower, None)
        pages = _open_pass(reader, params, start_token)
        if pages is None:  # the saved token was refused: the pass starts over from the top
            yield from self._pass(
                reader, ceiling=ceiling, pass_ids=pass_ids, resume=None, rereads=rereads
            )
            return
        for page in pages:
            stamps = [stream.instant_of(record) for record in page.records]
            ids = [stream.id_of(record) for record in page.records]
            count.add(page, ids)
            resumed_page = first_page and resume is not None
            skip = 0
            if resumed_page:
                # The last run's last page is read again: it must still hold the last
                # event emitted (or only newer ones), else events may have moved past us.
                emitted_before = _emitted_before(stamps, ids, oldest, oldest_id)
                if emitted_before is None:
                    stream.warn_once(
                        "resume",
                        "The saved page no longer continues where the last run stopped; "
                        "re-reading this pass from the newest page (duplicates possible).",
                    )
                    yield from self._pass(
                        reader, ceiling=ceiling, pass_ids=pass_ids, resume=None, rereads=rereads
                    )
                    return
                skip = emitted_before
            if ordered and not _descending(_known(stamps), None if resumed_page else oldest):
                ordered = False
                stream.warn_once(
                    "order",
                    "A page is not newest-first; reading to the end of the log and "
                    "filtering on the client instead of stopping early.",
                )
            first_page = False
            rows = zip(page.records, stamps, _nearest(stamps, oldest), ids, strict=True)
            for record, ts, near, record_id in itertools.islice(rows, skip, None):
                if not rereads.fresh(record_id):
                    continue  # a re-read meets it again: handled when first read
                if not _is_new(ts, record_id, lower, recent, pass_ids, upper=stream.end_ns):
                    continue
                yield record
                ceiling = _max(ceiling, ts)
                if ceiling is not None and near is not None and near >= ceiling - lookback:
                    pass_ids[record_id] = near
            if not ordered:
                continue
            if stamps:
                oldest, oldest_id = _nearest(stamps, oldest)[-1], ids[-1]
            reached_bookmark = lower is not None and oldest is not None and oldest < lower
            if page.next_token is None or reached_bookmark:
                count.ended = not reached_bookmark
                break
            if not stamps:
                continue  # an empty page is no place to resume from: keep the last one
            floor = None if ceiling is None else ceiling - lookback
            pass_ids = prune_ids(pass_ids, floor)
            state.commit(
                bookmark=bookmark,
                recent=recent,
                pending={
                    "ceiling": None if ceiling is None else format_instant(ceiling),
                    "ceiling_ids": encode_ids(pass_ids),
                    "page_token": page.token,
                    "oldest": None if oldest is None else format_instant(oldest),
                    "oldest_id": oldest_id,
                },
            )
            reader.checkpoint()
        if resume is None and count.shortfall:
            if rereads.again():
                yield from self._pass(
                    reader, ceiling=ceiling, pass_ids=pass_ids, resume=None, rereads=rereads
                )
                return
            keep_bookmark(reader, count, bookmark, recent)
            return
        new_bookmark = _max(bookmark, ceiling)
        floor = None if new_bookmark is None else new_bookmark - lookback
        state.commit(bookmark=new_bookmark, recent=prune_ids({**recent, **pass_ids}, floor))
        reader.checkpoint()


def _open_pass(
    reader: PartitionReader,
    params: dict,
    start_token: t.Any,
) -> Iterator[Page] | None:
    """The pages of a pass from ``start_token``; None if the API refuses that saved token.

    A cursor saved by an earlier run may have expired (400, 404, 410, 422): starting the
    pass over from the newest page costs duplicates, where failing would block every run.
    """
    pages = reader.pages(params, start_token=start_token)
    if start_token is None:
        return pages
    try:
        first = next(pages, None)
    except ProviderError as error:
        if error.status not in REFUSED_TOKEN_STATUSES:
            raise
        reader.stream.warn_once(
            "resume-refused",
            "The API refused the saved page token (HTTP %s); re-reading this pass from the "
            "newest page (duplicates possible).",
            error.status,
        )
        return None
    return itertools.chain([] if first is None else [first], pages)


def _parse_optional(value: object) -> int | None:
    return None if value in (None, "") else parse_instant(str(value), allow_naive=True)


def _descending(stamps: list[int], previous: int | None) -> bool:
    """True when a page is newest first and does not start above the previous page."""
    if previous is not None and stamps and stamps[0] > previous:
        return False
    return all(a >= b for a, b in itertools.pairwise(stamps))


def _emitted_before(
    stamps: list[int | None], ids: list[str], oldest: int | None, oldest_id: object
) -> int | None:
    """How many leading records of a re-read page the last run emitted; None to start over.

    New events push older ones to later pages, so the page may now hold the last emitted
    event further down (what follows it is new to us), or only newer events (read on,
    duplicates are harmless). If it holds older events but not the last emitted one,
    events moved up past the saved position and the pass must start over.
    """
    if oldest is None:
        return 0
    if oldest_id in ids:
        return ids.index(t.cast("str", oldest_id)) + 1
    known = _known(stamps)
    if known and min(known) >= oldest:
        return 0
    return None
