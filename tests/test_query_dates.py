"""Dates typed in a query (issue 20 item 3), with a fixed "today" (Sunday 29 November 2026)."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from sqlalchemy import func, select

from photosearch.catalog import Catalog, Folder, Photo
from photosearch.search.dates import find_dates

TODAY = date(2026, 11, 29)


def _span(query: str) -> tuple[str, str, str]:
    found = find_dates(query, TODAY)
    assert found.dates is not None, query
    ranges = found.dates.ranges
    assert len(ranges) == 1, query
    return found.text, ranges[0].first.isoformat(), ranges[0].last.isoformat()


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        # years and decades
        ("2019", ("", "2019-01-01", "2019-12-31")),
        ("dog in the snow 2019", ("dog in the snow", "2019-01-01", "2019-12-31")),
        ("beach in 2021", ("beach", "2021-01-01", "2021-12-31")),
        ("1984 poster", ("poster", "1984-01-01", "1984-12-31")),
        ("cars in the 1990s", ("cars", "1990-01-01", "1999-12-31")),
        # months, seasons, holidays with a year or last/this
        ("march 2019", ("", "2019-03-01", "2019-03-31")),
        ("may 2020", ("", "2020-05-01", "2020-05-31")),
        ("feb 2024 snow", ("snow", "2024-02-01", "2024-02-29")),
        ("summer 2021", ("", "2021-06-01", "2021-08-31")),
        ("kids, summer of 2019, beach", ("kids, beach", "2019-06-01", "2019-08-31")),
        ("winter 2019", ("", "2019-12-01", "2020-02-29")),
        ("last summer", ("", "2026-06-01", "2026-08-31")),
        ("last winter", ("", "2025-12-01", "2026-02-28")),
        ("this summer", ("", "2026-06-01", "2026-08-31")),
        ("last march", ("", "2026-03-01", "2026-03-31")),
        ("christmas 2019", ("", "2019-12-24", "2019-12-26")),
        ("tree last christmas", ("tree", "2025-12-24", "2025-12-26")),
        ("Christmas Eve 2019", ("", "2019-12-24", "2019-12-24")),
        ("new year's eve 2019", ("", "2019-12-31", "2020-01-01")),
        ("new year 2020", ("", "2019-12-31", "2020-01-01")),
        ("easter 2020", ("", "2020-04-10", "2020-04-13")),  # Good Friday to Easter Monday
        ("thanksgiving 2025", ("", "2025-11-27", "2025-11-30")),
        ("halloween 2023 costumes", ("costumes", "2023-10-31", "2023-10-31")),
        # relative phrases
        ("today", ("", "2026-11-29", "2026-11-29")),
        ("cake yesterday", ("cake", "2026-11-28", "2026-11-28")),
        ("the day before yesterday", ("", "2026-11-27", "2026-11-27")),
        ("party last night", ("party", "2026-11-28", "2026-11-29")),
        ("last week", ("", "2026-11-16", "2026-11-22")),
        ("this week", ("", "2026-11-23", "2026-11-29")),
        ("past week", ("", "2026-11-23", "2026-11-29")),
        ("last weekend", ("", "2026-11-21", "2026-11-22")),
        ("last month", ("", "2026-10-01", "2026-10-31")),
        ("this year", ("", "2026-01-01", "2026-11-29")),
        ("last year", ("", "2025-01-01", "2025-12-31")),
        ("3 weeks ago", ("", "2026-11-02", "2026-11-08")),
        ("two days ago", ("", "2026-11-27", "2026-11-27")),
        ("a year ago", ("", "2025-01-01", "2025-12-31")),
        ("last friday", ("", "2026-11-27", "2026-11-27")),
        # explicit days (dateparser)
        ("2019-04-12", ("", "2019-04-12", "2019-04-12")),
        ("party on 12 april 2019", ("party", "2019-04-12", "2019-04-12")),
        ("April 12th, 2019", ("", "2019-04-12", "2019-04-12")),
    ],
)
def test_date_phrases_become_ranges_and_leave_the_query(query, expected):
    assert _span(query) == expected


@pytest.mark.parametrize(
    ("query", "text", "label", "inside", "outside"),
    [
        ("beach in march", "beach", "every March", date(2011, 3, 31), date(2011, 4, 1)),
        ("in may", "", "every May", date(2003, 5, 1), date(2003, 6, 1)),
        (
            "lights at christmas",
            "lights",
            "every Christmas",
            date(1999, 12, 26),
            date(1999, 12, 27),
        ),
        ("new year's eve", "", "every New Year's Eve", date(2021, 1, 1), date(2021, 1, 2)),
        (
            "fireworks on new years eve",
            "fireworks",
            "every New Year's Eve",
            date(2020, 12, 31),
            date(2020, 12, 30),
        ),
        ("eggs at easter", "eggs", "every Easter", date(2024, 3, 31), date(2024, 4, 7)),
    ],
)
def test_phrases_without_a_year_mean_every_year(query, text, label, inside, outside):
    found = find_dates(query, TODAY)
    assert (found.text, found.dates.label) == (text, label)
    assert found.dates.contains(inside) and not found.dates.contains(outside)


@pytest.mark.parametrize(
    "query",
    [
        "two kids on a sled",
        "may flowers",
        "4 dogs",
        "winter landscape",
        "christmas tree",
        "snow in the winter",
        "two people in winter clothing",
        "a bike ride in the fall",
        "christmas at grandma's",
        "fall colours",
        "spring flowers",
        "a march in the street",
        '"1984" poster',
        "beach -summer",
        "beach -2019",
        "x2019",
        "route 66",
        "1000 lights",
        "the 3 wise men",
        "20190412",
        "in 1850",
        "year 2999",
    ],
)
def test_words_that_only_look_like_dates_stay_in_the_query(query):
    found = find_dates(query, TODAY)
    assert (found.text, found.dates) == (query, None)


def test_the_echo_says_what_was_understood():
    dates = find_dates("summer 2019", TODAY).dates
    assert dates.describe() == "2019-06-01 – 2019-08-31 (from 'summer 2019')"


def test_the_filter_selects_by_capture_time_else_file_time_in_sqlite(tmp_path):
    catalog = Catalog(tmp_path / "catalog.sqlite")
    times = {  # name: (taken_at, file_time)
        "summer19": (datetime(2019, 7, 4, 12), datetime(2024, 1, 1)),
        "edge": (datetime(2019, 8, 31, 23, 59), datetime(2024, 1, 1)),
        "after": (datetime(2019, 9, 1, 0, 0), datetime(2024, 1, 1)),
        "scan": (None, datetime(2019, 6, 1, 8)),  # no EXIF date: the file's own time counts
        "xmas20": (datetime(2020, 12, 25, 18), datetime(2024, 1, 1)),
        "nye": (datetime(2020, 12, 31, 23), datetime(2024, 1, 1)),
    }
    with catalog.session() as session:
        folder = Folder(path=str(tmp_path), added_at=datetime(2024, 1, 1))
        session.add(folder)
        for name, (taken, file_time) in times.items():
            session.add(
                Photo(
                    folder=folder,
                    path=f"{tmp_path}/{name}.jpg",
                    size=1,
                    mtime_ns=1,
                    content_hash=name,
                    taken_at=taken,
                    file_time=file_time,
                    added_at=file_time,
                )
            )

    def names(query: str) -> set[str]:
        dates = find_dates(query, TODAY).dates
        when = func.coalesce(Photo.taken_at, Photo.file_time)  # as timeline.py sorts by
        with catalog.session() as session:
            paths = session.scalars(select(Photo.path).where(dates.condition(when))).all()
        return {p.rsplit("/", 1)[1][:-4] for p in paths}

    assert names("summer 2019") == {"summer19", "edge", "scan"}
    assert names("at christmas") == {"xmas20"}
    assert names("new year's eve") == {"nye"}
    assert names("in december") == {"xmas20", "nye"}
    assert names("2020") == {"xmas20", "nye"}


def test_a_photo_without_a_capture_time_is_dated_by_a_year_in_its_name(tmp_path):
    from photosearch.catalog.text_index import TermSource, set_terms
    from photosearch.search.dates import photo_date_condition

    catalog = Catalog(tmp_path / "catalog.sqlite")
    photos = {  # name: (taken_at, file_time, name words)
        "copied": (None, datetime(2024, 3, 1), "pictures 2019 paris trip"),
        "scan": (None, datetime(2019, 7, 1), "pictures scans"),
        "old_named": (None, datetime(2019, 7, 1), "pictures 2015 wedding"),
        "exif": (datetime(2019, 7, 2), datetime(2024, 1, 1), "pictures 2015 mixed"),
        "exif_other": (datetime(2021, 7, 2), datetime(2019, 7, 1), "pictures 2019"),
    }
    with catalog.session() as session:
        folder = Folder(path=str(tmp_path), added_at=datetime(2024, 1, 1))
        session.add(folder)
        for name, (taken, file_time, words) in photos.items():
            photo = Photo(
                folder=folder,
                path=f"{tmp_path}/{name}.jpg",
                size=1,
                mtime_ns=1,
                content_hash=name,
                taken_at=taken,
                file_time=file_time,
                added_at=file_time,
            )
            session.add(photo)
            session.flush()
            set_terms(session, photo.id, TermSource.NAME, words)

    def names(query: str) -> set[str]:
        condition = photo_date_condition(find_dates(query, TODAY).dates)
        with catalog.session() as session:
            paths = session.scalars(select(Photo.path).where(condition)).all()
        return {p.rsplit("/", 1)[1][:-4] for p in paths}

    assert names("2019") == {"copied", "scan", "exif"}
    assert names("summer 2019") == {"copied", "scan", "exif"}
    assert names("in july") == {"scan", "old_named", "exif", "exif_other"}  # every year: times
