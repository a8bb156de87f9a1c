"""The timeline's compact columns (photosearch.search.timeline.DatedPhotos): they read back as
the SearchResults they hold, read from a real catalog exactly (dates to the microsecond), fetch
paths only for the photos asked for, and give the grid the same date headers as a list."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from photosearch.catalog import Catalog, Folder, Photo
from photosearch.gui.date_groups import date_headers
from photosearch.search import timeline
from photosearch.search.query import SearchResult
from photosearch.search.timeline import DatedPhotos, photos_by_date


def test_the_timeline_columns_give_back_the_results_they_were_given():
    dated = SearchResult(
        3, "/p/a.jpg", 0.0, 640, 480, datetime(2001, 2, 3, 4, 5, 6, 789), "Canon", None, "Lisbon"
    )
    undated = SearchResult(4, "/p/ü b.jpg", 0.0, None, None, None, None, datetime(2020, 1, 1))
    photos = DatedPhotos.of([dated, undated, dated])
    assert len(photos) == 3 and list(photos) == [dated, undated, dated]
    assert photos[-2] == undated and photos[1:] == [undated, dated]
    with pytest.raises(IndexError):
        photos[3]


def test_a_path_is_found_by_value_even_one_that_is_not_utf8():
    odd = b"/p/caf\xe9.jpg".decode("utf-8", "surrogateescape")  # a Latin-1 file name
    paths = [f"/p/{i}.jpg" for i in range(500)] + [odd]
    photos = DatedPhotos.of(SearchResult(i + 1, path, 0.0) for i, path in enumerate(paths))
    assert photos[500].path == odd and photos.index_of(odd) == 500
    assert [photos.index_of(p) for p in paths[:3]] == [0, 1, 2]
    assert photos.index_of("/p/missing.jpg") is None
    assert [p.path for p in photos.without([paths[1], odd, "/p/missing.jpg"])][:3] == [
        paths[0],
        paths[2],
        paths[3],
    ]


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    """600 photos: capture times to the microsecond (some before 1970), file times only,
    sizes known or not, cameras and places on some."""
    catalog = Catalog(tmp_path / "catalog.sqlite")
    rng = random.Random(5)
    with catalog.session() as session:
        folder = Folder(path=str(tmp_path), added_at=datetime(2024, 1, 1))
        session.add(folder)
        for i in range(600):
            when = datetime(1965, 1, 1) + timedelta(seconds=rng.randrange(2_000_000_000))
            when = when.replace(microsecond=rng.randrange(1_000_000))
            session.add(
                Photo(
                    folder=folder,
                    path=f"{tmp_path}/{i:04d} é.jpg",
                    size=1,
                    mtime_ns=1,
                    content_hash=str(i),
                    width=640 if i % 3 else None,
                    height=480 if i % 3 else None,
                    taken_at=when if i % 4 else None,
                    file_time=when + timedelta(days=1),
                    camera="Canon" if i % 5 == 0 else None,
                    place_city="Lisbon" if i % 7 == 0 else None,
                    place_country="Portugal" if i % 7 == 0 else None,
                    added_at=when,
                )
            )
    return catalog


def test_the_timeline_reads_the_catalog_exactly_and_paths_only_when_asked(catalog, monkeypatch):
    with catalog.session() as session:
        rows = session.query(Photo).all()
        expected = {
            p.path: (p.id, p.width, p.height, p.taken_at, p.file_time, p.camera) for p in rows
        }
    fetched: list[int] = []
    original = timeline._details
    monkeypatch.setattr(
        timeline, "_details", lambda cat, ids: fetched.append(len(ids)) or original(cat, ids)
    )
    monkeypatch.setattr(timeline, "BLOCK", 50)
    photos = photos_by_date(catalog)
    assert len(photos) == 600 and not fetched  # no path read yet
    newest = photos[0]
    assert fetched == [50]  # one block of paths for the first photo
    shown = [p.shown_date for p in photos]
    assert shown == sorted(shown, reverse=True)
    for photo in photos:
        photo_id, width, height, taken_at, file_time, camera = expected[photo.path]
        assert (photo.photo_id, photo.width, photo.height) == (photo_id, width, height)
        assert (photo.taken_at, photo.file_time, photo.camera) == (taken_at, file_time, camera)
    assert {p.place for p in photos} == {None, "Lisbon, Portugal"}
    assert photos.index_of(newest.path) == 0
    last = photos[599].path
    monkeypatch.setattr(timeline, "KEPT_BLOCKS", 2)
    photos = photos_by_date(catalog)
    for i in range(600):
        photos[i]
    assert len(photos._blocks) == 2  # only the last blocks read are kept
    assert photos.index_of(last) == 599 and photos.index_of(newest.path) == 0  # from the catalog
    oldest_first = photos_by_date(catalog, newest_first=False)
    assert [p.path for p in oldest_first] == [p.path for p in reversed(list(photos))]
    fewer = photos.without([newest.path])
    assert len(fewer) == 599 and fewer[0] == photos[1]


def test_the_columns_give_the_same_date_headers_as_a_list_of_results():
    rng = random.Random(3)
    today = date.today()
    starts = [datetime(1969, 12, 31, 23), datetime.combine(today, datetime.min.time())]
    for trial in range(30):
        results = []
        for i in range(rng.choice([0, 1, 5, 40, 300])):
            when = rng.choice(starts) - timedelta(
                minutes=rng.randrange(rng.choice([60, 3 * 24 * 60, 400 * 24 * 60]))
            )
            kind = rng.random()
            taken = when if kind < 0.6 else None
            file_time = None if kind > 0.9 else when
            results.append(
                SearchResult(i + 1, f"/p/{i}.jpg", 0.0, None, None, taken, None, file_time)
            )
        for newest_first in (True, False):
            dated = sorted(
                (r for r in results if r.shown_date),
                key=lambda r: r.shown_date,
                reverse=newest_first,
            )
            undated = [r for r in results if not r.shown_date]
            ordered = dated + undated if newest_first or trial % 2 else undated + dated
            for by_day in (True, False):
                expected = date_headers(ordered, by_day)
                assert date_headers(DatedPhotos.of(ordered), by_day) == expected, (trial, by_day)


def test_paths_read_are_found_without_the_catalog_and_forgotten_with_their_block(monkeypatch):
    monkeypatch.setattr(timeline, "BLOCK", 4)
    monkeypatch.setattr(timeline, "KEPT_BLOCKS", 2)
    photos = DatedPhotos.of(SearchResult(i + 1, f"/p/{i}.jpg", 0.0) for i in range(20))
    asked: list[str] = []
    lookup = photos._ids_of_paths
    photos._ids_of_paths = lambda paths: asked.extend(paths) or lookup(paths)
    photos[5]  # block 1: photos 4-7
    assert photos.index_of("/p/6.jpg") == 6 and not asked
    photos[9], photos[13]  # blocks 2 and 3: block 1 is dropped
    assert photos.index_of("/p/14.jpg") == 14 and not asked
    assert photos.index_of("/p/6.jpg") == 6 and asked == ["/p/6.jpg"]
    assert set(photos._read_paths) == {f"/p/{i}.jpg" for i in range(8, 16)}
