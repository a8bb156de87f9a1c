"""Dates as people read them, and the month/day headers of the timeline and date orders.

A photo without a capture date (no EXIF) is dated by its file time everywhere (sorting,
filters, headers, viewer), and says so: "file date" in its day header and in the viewer.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

from photosearch.gui.grid_layout import Header
from photosearch.search.query import SearchResult

FILE_DATE_NOTE = "file date"


def describe_date(result: SearchResult) -> str:
    """The viewer's "Taken" line."""
    if result.taken_at is not None:
        return result.taken_at.strftime("%A %-d %B %Y, %H:%M")
    if result.file_time is not None:
        return (
            f"{result.file_time.strftime('%-d %B %Y, %H:%M')} "
            f"({FILE_DATE_NOTE}: the photo has no date of its own)"
        )
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


DAY_HEADERS_FROM = 3.0  # photos per day (a month's average) from which days get headers


def date_headers(results: Sequence[SearchResult], by_day: bool = True) -> list[Header]:
    """A month header where the month changes and, in months with several photos a day, a day
    header where the day changes (sparse months would be a header per photo). A day dated
    only by its files says so, as does a month without day headers. Photos without any date
    come last under "No date"."""
    months: dict[tuple[int, int], set[date]] = {}
    counts: dict[tuple[int, int], int] = {}
    for result in results:
        when = result.shown_date
        if when is not None:
            key = (when.year, when.month)
            months.setdefault(key, set()).add(when.date())
            counts[key] = counts.get(key, 0) + 1
    daily = {
        key
        for key, days in months.items()
        if by_day and counts[key] / len(days) >= DAY_HEADERS_FROM
    }

    headers: list[Header] = []
    group: tuple[int, int] | date | None = None
    start = 0
    has_taken = has_file = False
    undated = False

    def close(kind: str, title: str) -> None:
        note = ""
        if has_file and not has_taken:
            note = f" · {FILE_DATE_NOTE}"
        elif has_file:
            note = f" · some by {FILE_DATE_NOTE}"
        headers.append(Header(start, title + note, kind))

    pending: tuple[str, str] | None = None
    for i, result in enumerate(results):
        when: datetime | None = result.shown_date
        if when is None:
            if not undated:
                if pending:
                    close(*pending)
                    pending = None
                headers.append(Header(i, "No date", "major"))
                undated = True
            continue
        key = (when.year, when.month)
        this: tuple[int, int] | date = when.date() if key in daily else key
        if this != group:
            if pending:
                close(*pending)
            month_changed = (
                not isinstance(group, (tuple, date))
                or ((group[0], group[1]) if isinstance(group, tuple) else (group.year, group.month))
                != key
            )
            if month_changed and key in daily:
                headers.append(Header(i, month_title(when.date()), "major"))
            group, start = this, i
            has_taken = has_file = False
            pending = (
                ("minor", day_title(when.date()))
                if key in daily
                else ("major", month_title(when.date()))
            )
        if result.taken_at is not None:
            has_taken = True
        else:
            has_file = True
    if pending:
        close(*pending)
    return sorted(headers, key=lambda h: (h.start, h.kind != "major"))


def sort_by_date(results: Sequence[SearchResult], newest_first: bool = True) -> list[SearchResult]:
    """By capture date (file date for undated photos); photos with no date at all last."""
    dated = [r for r in results if r.shown_date is not None]
    undated = [r for r in results if r.shown_date is None]
    dated.sort(key=lambda r: r.shown_date, reverse=newest_first)  # type: ignore[arg-type, return-value]
    return dated + undated
