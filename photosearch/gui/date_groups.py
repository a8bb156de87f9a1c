"""Dates as people read them, and the month/day headers of the timeline and date orders.

A photo without a capture date (no EXIF) is dated by its file time everywhere (sorting,
filters, headers, viewer), and says so: "file date" in its day header and in the viewer.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

from photosearch.gui.grid_layout import Header
from photosearch.search import SearchResult

FILE_DATE_NOTE = "file date"


def describe_date(result: SearchResult) -> str:
    """The viewer's "Taken" line."""
    if result.taken_at is not None:
        return result.taken_at.strftime("%A %-d %B %Y, %H:%M")
    if result.file_time is not None:
        return (f"{result.file_time.strftime('%-d %B %Y, %H:%M')} "
                f"({FILE_DATE_NOTE}: the photo has no date of its own)")
    return "unknown"


def month_title(day: date) -> str:
    return day.strftime("%B %Y")


def day_title(day: date, today: date | None = None) -> str:
    today = today or date.today()
    if day == today:
        return "Today"
    if (today - day).days == 1:
        return "Yesterday"
    if day.year == today.year:
        return day.strftime("%A %-d %B")
    return day.strftime("%a %-d %B %Y")


def date_headers(results: Sequence[SearchResult], by_day: bool = True) -> list[Header]:
    """A month header where the month changes and a day header where the day changes; a day
    whose photos are dated only by their files says so. Photos without any date come last
    under "No date"."""
    headers: list[Header] = []
    month: tuple[int, int] | None = None
    day: date | None = None
    day_start = 0
    day_has_taken = day_has_file = False
    undated_started = False

    def close_day(end: int) -> None:
        if day is None or not by_day:
            return
        note = ""
        if day_has_file and not day_has_taken:
            note = f" · {FILE_DATE_NOTE}"
        elif day_has_file:
            note = f" · some by {FILE_DATE_NOTE}"
        index = next(i for i in range(len(headers) - 1, -1, -1) if headers[i].kind == "minor")
        headers[index] = Header(day_start, day_title(day) + note, "minor")

    for i, result in enumerate(results):
        when: datetime | None = result.shown_date
        if when is None:
            if not undated_started:
                close_day(i)
                day = None
                headers.append(Header(i, "No date", "major"))
                undated_started = True
            continue
        this_day = when.date()
        if (this_day.year, this_day.month) != month:
            month = (this_day.year, this_day.month)
            headers.append(Header(i, month_title(this_day), "major"))
        if this_day != day:
            close_day(i)
            day, day_start = this_day, i
            day_has_taken = day_has_file = False
            if by_day:
                headers.append(Header(i, day_title(this_day), "minor"))
        if result.taken_at is not None:
            day_has_taken = True
        else:
            day_has_file = True
    close_day(len(results))
    return headers


def sort_by_date(results: Sequence[SearchResult], newest_first: bool = True
                 ) -> list[SearchResult]:
    """By capture date (file date for undated photos); photos with no date at all last."""
    dated = [r for r in results if r.shown_date is not None]
    undated = [r for r in results if r.shown_date is None]
    dated.sort(key=lambda r: r.shown_date, reverse=newest_first)  # type: ignore[arg-type, return-value]
    return dated + undated
