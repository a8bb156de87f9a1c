"""Justified rows for the photo grid: where every thumbnail and header goes, computed once.

Photos keep their aspect ratio; each full row is scaled so it spans the width exactly with a
fixed gutter between photos (the last row of a section keeps the target height, left-aligned).
Headers ("March 2026", a day, "More results") start a new row. Pure Python, no Qt: 100k photos
lay out in ~0.1 s, and finding what is visible or under the mouse is a binary search. Positions
are kept in arrays of machine integers: as lists of Python ints they took ~51 MB at 1M photos.
"""

from __future__ import annotations

from array import array
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass

GUTTER = 4
MIN_ASPECT, MAX_ASPECT = 0.3, 3.5  # panoramas and slivers are cropped to these
HEADER_HEIGHTS = {"major": 44, "minor": 30, "divider": 44}


@dataclass(frozen=True)
class Header:
    """A header shown before photo ``start``; ``kind`` is major (a month, or "Good matches"),
    minor (a day) or divider (between good matches and more results)."""

    start: int
    title: str
    kind: str = "major"


@dataclass
class GridLayout:
    """Rows top to bottom. A row is a header (``row_header[r]`` set) or photos
    ``row_first[r] .. row_first[r] + row_count[r] - 1``."""

    width: int
    height: int
    row_y: Sequence[int]
    row_h: Sequence[int]
    row_first: Sequence[int]
    row_count: Sequence[int]
    row_header: list[Header | None]
    item_x: Sequence[int]
    item_w: Sequence[int]
    item_row: Sequence[int]

    def rows_between(self, top: int, bottom: int) -> range:
        """Rows that intersect the band ``top <= y < bottom``."""
        first = max(0, bisect_right(self.row_y, top) - 1)
        last = bisect_right(self.row_y, bottom)
        return range(first, min(last, len(self.row_y)))

    def item_at(self, x: int, y: int) -> int | None:
        if not self.row_y:
            return None
        row = bisect_right(self.row_y, y) - 1
        if row < 0 or self.row_header[row] is not None or y >= self.row_y[row] + self.row_h[row]:
            return None
        for item in range(self.row_first[row], self.row_first[row] + self.row_count[row]):
            if self.item_x[item] <= x < self.item_x[item] + self.item_w[item]:
                return item
        return None

    def item_rect(self, item: int) -> tuple[int, int, int, int]:
        row = self.item_row[item]
        return self.item_x[item], self.row_y[row], self.item_w[item], self.row_h[row]

    def item_above_or_below(self, item: int, step: int) -> int:
        """The photo in the photo row ``step`` (+1/-1) away whose centre is nearest."""
        row = self.item_row[item]
        centre = self.item_x[item] + self.item_w[item] / 2
        target = row + step
        while 0 <= target < len(self.row_y) and self.row_header[target] is not None:
            target += step
        if not 0 <= target < len(self.row_y):
            return item
        first, count = self.row_first[target], self.row_count[target]
        return min(
            range(first, first + count),
            key=lambda i: abs(self.item_x[i] + self.item_w[i] / 2 - centre),
        )

    def headers(self) -> list[tuple[int, Header]]:
        """(y, header) of every header row, top to bottom."""
        return [(y, h) for y, h in zip(self.row_y, self.row_header, strict=True) if h]


def justify(
    aspects: Sequence[float],
    headers: Sequence[Header],
    width: int,
    row_height: int,
    gutter: int = GUTTER,
) -> GridLayout:
    """Lay out photos of the given width/height ``aspects`` in rows of about ``row_height``."""
    width = max(width, 60)
    count = len(aspects)
    item_x = array("l", bytes(count * array("l").itemsize))
    item_w = array("l", item_x)
    item_row = array("l", item_x)
    row_y = array("q")
    row_h = array("l")
    row_first = array("l")
    row_count = array("l")
    row_header: list[Header | None] = []
    y = 0
    starts = sorted(headers, key=lambda h: h.start)
    boundaries = [h.start for h in starts] + [count]
    segments = [(0, boundaries[0])] + [
        (boundaries[i], boundaries[i + 1]) for i in range(len(starts))
    ]
    header_of = {i + 1: starts[i] for i in range(len(starts))}

    def close_row(first: int, end: int, total_aspect: float, full: bool) -> None:
        nonlocal y
        n = end - first
        space = width - gutter * (n - 1)
        height = space / total_aspect if full else float(row_height)
        height = min(height, row_height * 2.0)
        x = 0.0
        row = len(row_y)
        for i in range(first, end):
            w = min(max(aspects[i], MIN_ASPECT), MAX_ASPECT) * height
            left = round(x)
            item_x[i] = left
            right = round(x + w) if not (full and i == end - 1) else width
            item_w[i] = max(1, right - left)
            item_row[i] = row
            x += w + gutter
        row_y.append(y)
        row_h.append(round(height))
        row_first.append(first)
        row_count.append(n)
        row_header.append(None)
        y += round(height) + gutter

    for number, (start, end) in enumerate(segments):
        header = header_of.get(number)
        if header is not None:
            row_y.append(y)
            row_h.append(HEADER_HEIGHTS.get(header.kind, 36))
            row_first.append(start)
            row_count.append(0)
            row_header.append(header)
            y += row_h[-1]
        first, total = start, 0.0
        for i in range(start, end):
            aspect = min(max(aspects[i], MIN_ASPECT), MAX_ASPECT)
            total += aspect
            n = i - first + 1
            if total * row_height + gutter * (n - 1) >= width:
                close_row(first, i + 1, total, full=True)
                first, total = i + 1, 0.0
        if first < end:
            close_row(first, end, total, full=False)
    return GridLayout(
        width, y, row_y, row_h, row_first, row_count, row_header, item_x, item_w, item_row
    )
