"""The timeline's compact columns (photosearch.search.timeline.DatedPhotos) read back as the
SearchResults they were given."""

from __future__ import annotations

import pytest


def test_the_timeline_columns_give_back_the_results_they_were_given():
    from datetime import datetime

    from photosearch.search.query import SearchResult
    from photosearch.search.timeline import DatedPhotos

    dated = SearchResult(
        3, "/p/a.jpg", 0.0, 640, 480, datetime(2001, 2, 3, 4, 5, 6, 789), "Canon", None, "Lisbon"
    )
    undated = SearchResult(4, "/p/ü b.jpg", 0.0, None, None, None, None, datetime(2020, 1, 1))
    photos = DatedPhotos()
    for photo in (dated, undated, dated):
        photos.append(photo)
    assert len(photos) == 3 and list(photos) == [dated, undated, dated]
    assert photos[-2] == undated and photos[1:] == [undated, dated]
    assert photos[0].camera is photos[2].camera  # names shared, not stored per photo
    with pytest.raises(IndexError):
        photos[3]


def test_a_path_is_found_by_value_even_one_that_is_not_utf8():
    from photosearch.search.query import SearchResult
    from photosearch.search.timeline import DatedPhotos

    odd = b"/p/caf\xe9.jpg".decode("utf-8", "surrogateescape")  # a Latin-1 file name
    paths = [f"/p/{i}.jpg" for i in range(500)] + [odd]
    photos = DatedPhotos()
    for i, path in enumerate(paths):
        photos.append(SearchResult(i + 1, path, 0.0))
    assert photos[500].path == odd and photos.index_of(odd) == 500
    assert [photos.index_of(p) for p in paths[:3]] == [0, 1, 2]
    assert photos.index_of("/p/missing.jpg") is None
