"""photosearch.paths: the one "is this path under that folder" and the one folder check."""

from __future__ import annotations

from pathlib import Path

from photosearch.catalog.reads import SQL_VARIABLES, chunked
from photosearch.paths import folder_available, is_under


def test_is_under_compares_whole_path_parts():
    assert is_under("/photos/a.jpg", "/photos")
    assert is_under("/photos", "/photos")
    assert is_under("/photos/2024/a.jpg", "/photos/")
    assert not is_under("/photos2/a.jpg", "/photos")
    assert not is_under("/photo", "/photos")


def test_an_empty_folder_that_had_photos_is_offline_not_emptied(tmp_path: Path):
    folder = tmp_path / "mount"
    assert not folder_available(str(folder))  # missing
    folder.mkdir()
    assert folder_available(str(folder))
    assert not folder_available(str(folder), had_photos=lambda: True)  # unmounted disk
    assert folder_available(str(folder), had_photos=lambda: False)  # a new, empty folder
    (folder / "a.jpg").write_bytes(b"x")
    asked: list[bool] = []
    assert folder_available(str(folder), had_photos=lambda: asked.append(True) or True)
    assert asked == []  # the catalog is asked only about an empty root


def test_a_root_that_was_a_mount_point_and_is_not_any_more_is_offline(tmp_path: Path):
    assert folder_available("/", was_mount=True)
    assert not folder_available(str(tmp_path), was_mount=True)


def test_chunks_stay_under_sqlites_bound_value_limit():
    ids = list(range(2 * SQL_VARIABLES + 1))
    parts = list(chunked(ids))
    assert [len(p) for p in parts] == [SQL_VARIABLES, SQL_VARIABLES, 1]
    assert [i for part in parts for i in part] == ids
    assert list(chunked([])) == []
