"""Dates as people read them, and the month/day headers of the timeline and date orders.

A photo without a capture date (no EXIF) is dated by its file time everywhere (sorting,
filters, headers, viewer), and says so: "file date" in its day header and in the viewer.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta

import numpy as np

from photosearch.gui.grid_layout import Header
from photosearch.search.query import SearchResult
from photosearch.search.timeline import EPOCH, NO_TIME, DatedPhotos

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
    if isinstance(results, DatedPhotos):
        return _column_headers(results, by_day)
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
        headers.append(Header(start, title + _date_note(has_taken, has_file), kind))

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


MICROS_A_DAY = 86_400_000_000
UNDATED = NO_TIME  # the group of photos without a date (never a day's or month's code)


def _column_headers(photos: DatedPhotos, by_day: bool) -> list[Header]:
    """``date_headers`` from the timeline's columns: the same headers, found a run of photos
    of one day or month at a time with NumPy (1M photos as SearchResults took ~9 s)."""
    shown = photos.shown_times()
    dated = shown != NO_TIME
    days = np.where(dated, shown // MICROS_A_DAY, 0)
    months = _months_of(days)
    month_ids, photo_counts = np.unique(months[dated], return_counts=True)
    _, day_counts = np.unique(_months_of(np.unique(days[dated])), return_counts=True)
    daily_months = month_ids[photo_counts / np.maximum(day_counts, 1) >= DAY_HEADERS_FROM]
    daily = np.isin(months, daily_months if by_day else month_ids[:0])
    # photos of one group (a day of a daily month, else a month) come in runs
    group = np.where(dated, np.where(daily, days * 2 + 1, months * 2), UNDATED)
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]]) if len(group) else group
    ends = np.r_[starts[1:], len(group)] if len(group) else starts
    taken = photos.has_capture_time()
    headers: list[Header] = []
    undated = False
    current: int | None = None  # the group being shown, coded as in ``group``
    pending: tuple[int, str, str] | None = None  # its header: start, kind, title
    has_taken = has_file = False

    def close() -> None:
        assert pending is not None
        start, kind, title = pending
        headers.append(Header(start, title + _date_note(has_taken, has_file), kind))

    for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
        code = int(group[start])
        if code == UNDATED:
            if not undated:
                if pending:
                    close()
                    pending = None
                headers.append(Header(start, "No date", "major"))
                undated = True
            continue
        if code != current:
            if pending:
                close()
            day = (EPOCH + timedelta(days=int(days[start]))).date()
            is_daily = bool(code & 1)
            if is_daily and (current is None or _month_of_group(current) != int(months[start])):
                headers.append(Header(start, month_title(day), "major"))
            current = code
            has_taken = has_file = False
            pending = (
                (start, "minor", day_title(day)) if is_daily else (start, "major", month_title(day))
            )
        run_taken = taken[start:end]
        has_taken = has_taken or bool(run_taken.any())
        has_file = has_file or not bool(run_taken.all())
    if pending:
        close()
    return sorted(headers, key=lambda h: (h.start, h.kind != "major"))


def _months_of(days: np.ndarray) -> np.ndarray:
    """Months since 1970-01 of days since 1970-01-01."""
    return days.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)


def _month_of_group(code: int) -> int:
    return int(_months_of(np.array([code // 2]))[0]) if code & 1 else code // 2


def sort_by_date(results: Sequence[SearchResult], newest_first: bool = True) -> list[SearchResult]:
    """By capture date (file date for undated photos); photos with no date at all last."""
    dated = [r for r in results if r.shown_date is not None]
    undated = [r for r in results if r.shown_date is None]
    dated.sort(key=lambda r: r.shown_date, reverse=newest_first)  # type: ignore[arg-type, return-value]
    return dated + undated


def _date_note(has_taken: bool, has_file: bool) -> str:
    """A header's note when some or all of its photos are dated by their file's time."""
    if has_file and not has_taken:
        return f" · {FILE_DATE_NOTE}"
    if has_file:
        return f" · some by {FILE_DATE_NOTE}"
    return ""
