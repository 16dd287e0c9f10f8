"""``PartitionReader``: pages pushed back, pages counted once, progress per partition."""

from __future__ import annotations

import re
import typing as t

import pytest

from tap_auditlogs.core.types import Page
from tap_auditlogs.engine import page_loop
from tap_auditlogs.engine.page_loop import Progress
from tap_auditlogs.engine.partition_reader import PartitionReader
from tap_auditlogs.engine.state import PartitionState

if t.TYPE_CHECKING:
    from collections.abc import Iterator


class ListedPages:
    """A page source over fixed pages; counts the pages it fetched."""

    def __init__(self, sizes: list[int], total: int | None = None) -> None:
        self.sizes = sizes
        self.total = total
        self.fetched = 0

    def pages(self, context: t.Any, params: dict, start_token: t.Any = None) -> Iterator[Page]:
        for index, size in enumerate(self.sizes):
            self.fetched += 1
            more = index + 1 < len(self.sizes)
            records = [{"id": f"{index}-{i}"} for i in range(size)]
            yield Page(
                records, token=index, next_token=index + 1 if more else None, total=self.total
            )

    def prefetch(self, context: t.Any, requests: list) -> None:
        pass

    def split_points(self, context: t.Any, first: Page) -> list[int]:
        return []


def _reader(source: ListedPages, progress: Progress | None = None) -> PartitionReader:
    state = PartitionState({}, "ts")
    return PartitionReader(
        t.cast("t.Any", None), None, state, source, lambda: None, progress=progress
    )


def test_pushed_back_pages_are_read_first_and_counted_once() -> None:
    source = ListedPages([2, 2, 1])
    reader = _reader(source)
    pages = reader.pages({"q": 1})
    probed = [next(pages)]
    reader.push_back({"q": 1}, probed, pages)
    again = list(reader.pages({"q": 1}))
    assert [p.token for p in again] == [0, 1, 2]
    assert source.fetched == 3
    assert reader.pages_read == 3, "a page pushed back is not counted again"


def test_pushed_back_pages_serve_only_the_same_pass() -> None:
    source = ListedPages([1, 1])
    reader = _reader(source)
    pages = reader.pages({"q": 1})
    reader.push_back({"q": 1}, [next(pages)], pages)
    assert [p.token for p in reader.pages({"q": 2})] == [0, 1], "other params: a new pass"
    assert [p.token for p in reader.pages({"q": 1}, start_token=1)] == [0, 1]
    assert [p.token for p in reader.pages({"q": 1})] == [0, 1]
    assert source.fetched == 6, "1 probed + 2 + 2 + the one left of the pushed-back pass"


def test_progress_lines_count_each_partition_apart(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Two partitions read one after another on one thread (as a read-ahead worker does)
    each report their own pages and records, and what is left in the pass."""
    monkeypatch.setattr(page_loop, "PROGRESS_EVERY_SECONDS", 0.0)
    said: list[str] = []
    for org in ("a", "b"):
        reader = _reader(ListedPages([3, 3, 1], total=7), Progress(said.append, f"org {org}"))
        list(reader.pages({}))
    lines = [re.sub(r"\(\d+/s\)", "(N/s)", line) for line in said]
    assert lines == [
        "org a: 1 page, 3 records read (N/s), about 4 left in this pass.",
        "org a: 2 pages, 6 records read (N/s), about 1 left in this pass.",
        "org a: 3 pages, 7 records read (N/s).",
        "org b: 1 page, 3 records read (N/s), about 4 left in this pass.",
        "org b: 2 pages, 6 records read (N/s), about 1 left in this pass.",
        "org b: 3 pages, 7 records read (N/s).",
    ]
