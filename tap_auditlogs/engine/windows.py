"""``TimeWindows``: reading an API that takes a bounded time range (strategies.py has the
shared rules).

Windows go oldest first, up to the run's start or ``end_date`` when earlier, and the end of a
fully read window is a checkpoint; the progress lines say how far in time the read got. A
window read short of the total the API reports is read again in halves, down to parts that
fit one page (totals.py); a shortfall that persists holds the bookmark before that window.
"""

from __future__ import annotations

import typing as t

from tap_auditlogs.core.instants import NS_PER_SECOND
from tap_auditlogs.core.text import plural
from tap_auditlogs.engine.state import prune_ids
from tap_auditlogs.engine.strategies import _is_new
from tap_auditlogs.engine.totals import MIN_PART_NS, ScopeCount, warn_shortfall

if t.TYPE_CHECKING:
    from collections.abc import Generator, Iterator

    from tap_auditlogs.core.types import Record
    from tap_auditlogs.engine.partition_reader import PartitionReader


class TimeWindows:
    """Bounded windows, oldest first; each finished window is a checkpoint."""

    name = "time-windows"

    def __init__(self, window_ns: int, default_span_ns: int) -> None:
        """Windows of at most ``window_ns``; without a start, begin ``default_span_ns`` ago."""
        self.window_ns = window_ns
        self.default_span_ns = default_span_ns
        days = round(window_ns / (86_400 * NS_PER_SECOND))
        self.summary = f"time windows of at most {plural(days, 'day')}"

    def read(self, reader: PartitionReader) -> Iterator[Record]:
        """Yield the new records of one partition, window by window."""
        stream, state = reader.stream, reader.state
        end = stream.until_ns()  # the run's start, or end_date when earlier
        lower = stream.lower_bound(state.bookmark)
        if lower is None:
            lower = stream.run_started_ns() - self.default_span_ns
        windows: list[tuple[int, int]] = []
        while lower < end:
            windows.append((lower, min(lower + self.window_ns, end)))
            lower = windows[-1][1]
        requests: list[tuple[dict, int | None]] = [
            (stream.request_params(reader.context, start, stop), None) for start, stop in windows
        ]
        reader.prefetch(requests)  # read-ahead: windows are fetched side by side
        recent = state.recent
        held = False  # a window ended short of its total for good: no checkpoint after it
        for done, ((window_start, window_end), (params, _)) in enumerate(
            zip(windows, requests, strict=True), 1
        ):
            emitted: dict[str, int] = {}
            window = (window_start, window_end)
            count, short = yield from self._window(reader, window, params, recent, emitted)
            if short:
                warn_shortfall(reader, count, f"in a window ({short} still short read in parts)")
                held = True
            bookmark = max(state.bookmark or window_end, window_end)
            recent = prune_ids({**recent, **emitted}, bookmark - stream.lookback_ns)
            if not held:
                state.commit(bookmark=bookmark, recent=recent)
                reader.checkpoint()
            if reader.progress is not None:
                reader.progress.window(window_end, end, done, len(windows))

    def _window(
        self,
        reader: PartitionReader,
        window: tuple[int, int],
        params: dict,
        recent: dict[str, int],
        emitted: dict[str, int],
    ) -> Generator[Record, None, tuple[ScopeCount, int]]:
        """Yield the new records of ``window``; return its count and how many are still short.

        A window read short of the total the API reports (page boundaries that moved
        between requests, a last page that came too early) is read again as two halves,
        down to parts that fit one page or are too narrow to split.
        """
        stream = reader.stream
        start, end = window
        count = ScopeCount()
        for page in reader.pages(params):
            count.add(page, (stream.id_of(record) for record in page.records))
            for record in page.records:
                ts, record_id = stream.instant_of(record), stream.id_of(record)
                if ts is not None and ts > end:
                    stream.warn_once(
                        "window",
                        "The API returned events outside the requested window; "
                        "filtering them on the client.",
                    )
                    continue
                if not _is_new(ts, record_id, start, recent, emitted, upper=stream.end_ns):
                    continue
                yield record
                emitted[record_id] = end if ts is None else ts
        if not count.shortfall or end - start < 2 * MIN_PART_NS:
            return count, count.shortfall
        middle = start + (end - start) // 2
        short = 0
        for part in ((start, middle), (middle, end)):
            part_params = stream.request_params(reader.context, *part)
            _, part_short = yield from self._window(reader, part, part_params, recent, emitted)
            short += part_short
        return count, short
