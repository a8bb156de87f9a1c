"""Scans apply each chunk of hashed files in a few bulk statements: moves, copies, new files,
deletions and non-UTF-8 names mixed in one chunk, or spread over several, come out as they
would one file at a time."""

from __future__ import annotations

import os
import shutil

from sqlalchemy import select

from photosearch.catalog import Photo, Vector
from photosearch.indexing import reconcile
from tests.conftest import make_photo
from tests.test_library_scan import assert_consistent, photo_ids


def vectors_of(library, photo_id: int) -> list[bytes]:
    with library.catalog.session() as session:
        return list(session.scalars(select(Vector.vector).where(Vector.photo_id == photo_id)))


def test_one_chunk_mixing_moves_copies_new_files_and_deletions(library, photo_dir):
    odd_old = photo_dir / os.fsdecode(b"old-\xff\xfe.jpg")
    make_photo(odd_old, "black")
    library.add_folder(photo_dir)
    library.index()
    before = photo_ids(library)
    red_vector = vectors_of(library, before[str(photo_dir / "red.jpg")])

    odd_new = photo_dir / "sub" / os.fsdecode(b"new-\xe9\xff.jpg")
    os.rename(odd_old, odd_new)  # a move between two names that are not UTF-8
    os.rename(photo_dir / "green.jpg", photo_dir / "sub" / "green-renamed.jpg")
    shutil.copy2(photo_dir / "red.jpg", photo_dir / "red-copy-1.jpg")
    shutil.copy2(photo_dir / "red.jpg", photo_dir / "sub" / "red-copy-2.jpg")
    (photo_dir / "blue.jpg").unlink()
    make_photo(photo_dir / "new-yellow.png", "yellow", size=(20, 20))
    (photo_dir / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")

    report = library.index()
    changes = report.scan.changes
    assert (changes.moved, changes.duplicates, changes.removed) == (2, 2, 1)
    assert len(changes.added) == 4  # two copies, one new photo, one broken file
    after = photo_ids(library)
    assert after[str(odd_new)] == before[str(odd_old)]
    renamed = photo_dir / "sub" / "green-renamed.jpg"
    assert after[str(renamed)] == before[str(photo_dir / "green.jpg")]
    assert str(photo_dir / "blue.jpg") not in after
    for copy in (photo_dir / "red-copy-1.jpg", photo_dir / "sub" / "red-copy-2.jpg"):
        assert vectors_of(library, after[str(copy)]) == red_vector
    assert report.encoding.encoded == 1  # only the new yellow photo needed the model
    assert report.encoding.failed == 1
    assert_consistent(library)


def test_many_chunks_and_a_rescan_that_changes_nothing(library, tmp_path, monkeypatch):
    monkeypatch.setattr(reconcile, "COMMIT_EVERY", 3)  # several chunks out of a few files
    folder = tmp_path / "many"
    colours = ("red", "green", "blue", "yellow", "white", "black")
    for number in range(14):
        make_photo(
            folder / f"d{number % 3}" / f"p{number}.jpg",
            colours[number % 6],
            size=(16 + number, 16),
        )
    make_photo(folder / os.fsdecode(b"caf\xe9.jpg"), "red", size=(9, 9))
    library.add_folder(folder)
    first = library.scan()
    assert len(first.changes.added) == 15
    assert not library.scan().changes.any
    with library.catalog.session() as session:
        paths = set(session.scalars(select(Photo.path)))
    assert paths == {str(path) for path in folder.rglob("*.jpg")}

    (folder / os.fsdecode(b"caf\xe9.jpg")).unlink()  # its row is read as a BLOB path
    gone = library.scan().changes
    assert gone.removed == 1 and not gone.added
