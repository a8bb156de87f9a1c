"""The core pieces behind the app's timeline and trash, and the extra photo formats."""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from PIL import Image

from photosearch.errors import UnsupportedImage
from photosearch.files.imaging import load_image, make_thumbnail, supported_extensions
from photosearch.library.trash import move_to_trash
from photosearch.search.query import SearchQuery
from photosearch.search.timeline import photos_by_date
from tests.conftest import make_photo


def test_the_timeline_lists_readable_photos_by_date_with_the_search_filters(library, tmp_path):
    folder = tmp_path / "photos"
    old = make_photo(folder / "a" / "old.jpg", "red")
    make_photo(folder / "b" / "new.jpg", "blue")
    (folder / "broken.jpg").write_bytes(b"not a photo")
    day = datetime(2020, 5, 1).timestamp()
    os.utime(old, (day, day))
    library.add_folder(folder)
    library.index()
    photos = photos_by_date(library.catalog)
    assert [Path(p.path).name for p in photos] == ["new.jpg", "old.jpg"]  # broken: left out
    assert photos[1].taken_at is None and photos[1].file_time == datetime(2020, 5, 1)
    assert [Path(p.path).name for p in photos_by_date(library.catalog, newest_first=False)] == [
        "old.jpg",
        "new.jpg",
    ]
    assert [
        Path(p.path).name for p in photos_by_date(library.catalog, before=datetime(2021, 1, 1))
    ] == ["old.jpg"]
    assert [
        Path(p.path).name
        for p in photos_by_date(
            library.catalog, folder=folder / "b", after=datetime.now() - timedelta(days=1)
        )
    ] == ["new.jpg"]
    found = library.search(SearchQuery(text="red", k=5))
    assert found[0].file_time is not None and found[0].shown_date == found[0].file_time


def test_move_to_trash_sends_files_to_the_trash_and_the_library_forgets_them(
    library, tmp_path, monkeypatch
):
    import send2trash.plat_other as trash

    home = tmp_path / "xdg"
    home.mkdir()
    monkeypatch.setattr(trash, "XDG_DATA_HOME", os.fsencode(home))
    monkeypatch.setattr(trash, "HOMETRASH_B", os.fsencode(home / "Trash"))
    folder = tmp_path / "photos"
    red = make_photo(folder / "red.jpg", "red")
    make_photo(folder / "blue.jpg", "blue")
    library.add_folder(folder)
    library.index()
    report = move_to_trash(library, [str(red), str(folder / "never-there.jpg")])
    assert report.trashed == [str(red)]
    assert report.failed and report.failed[0][0].endswith("never-there.jpg")
    assert not red.exists() and (home / "Trash" / "files" / "red.jpg").is_file()
    assert [Path(p.path).name for p in photos_by_date(library.catalog)] == ["blue.jpg"]
    assert str(red) not in {r.path for r in library.search(SearchQuery(text="red", k=5))}
    assert library.status().photos == 1


def test_heic_and_camera_raw_are_searched_by_default():
    pytest.importorskip("pillow_heif")
    pytest.importorskip("rawpy")
    assert {".heic", ".heif", ".avif", ".cr2", ".nef", ".arw", ".dng"} <= supported_extensions()


def test_a_heic_photo_decodes_and_gets_a_thumbnail(tmp_path):
    pytest.importorskip("pillow_heif")
    path = tmp_path / "phone.heic"
    Image.new("RGB", (320, 240), (200, 30, 30)).save(path, format="HEIF")
    image, info = load_image(path)
    assert (info.width, info.height) == (320, 240)
    assert image.getpixel((10, 10))[0] > 150
    assert max(make_thumbnail(path, 64).size) == 64


def test_a_broken_raw_file_is_refused_with_a_reason(tmp_path):
    pytest.importorskip("rawpy")
    path = tmp_path / "IMG_0001.CR2"
    path.write_bytes(b"II*\x00 not really a raw file" * 10)
    with pytest.raises(UnsupportedImage, match="RAW"):
        load_image(path)
