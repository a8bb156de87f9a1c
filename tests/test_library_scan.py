"""Rescans through Library: unchanged, touched, modified, moved, deleted, duplicated, broken
files, offline folders, and files vanishing between scan and decode."""

from __future__ import annotations

import os
import shutil

import pytest
from sqlalchemy import func, select

from photosearch.catalog import Photo, Vector
from photosearch.indexing.encode import encode_pending
from photosearch.library.facade import Library
from photosearch.search.query import SearchQuery
from tests.conftest import make_photo


def photo_ids(library: Library) -> dict[str, int]:
    with library.catalog.session() as session:
        rows = session.execute(select(Photo.path, Photo.id).where(Photo.present()))
        return {p: i for p, i in rows}


def vector_count(library: Library) -> int:
    with library.catalog.session() as session:
        return session.scalar(select(func.count()).select_from(Vector)) or 0


def search_paths(library: Library, text: str, k: int = 20) -> list[str]:
    return [r.path for r in library.search(SearchQuery(text=text, k=k))]


def assert_consistent(library: Library) -> None:
    """Every ok photo has exactly one vector and the store holds exactly the catalog's ids."""
    with library.catalog.session() as session:
        ok = set(session.scalars(select(Photo.id).where(Photo.status == "ok", Photo.present())))
        vectors = list(
            session.scalars(
                select(Vector.photo_id)
                .join(Photo, Photo.id == Vector.photo_id)
                .where(Vector.model_id == library.model_id, Photo.present())
            )
        )
    assert len(vectors) == len(set(vectors))
    assert set(vectors) == ok
    assert library.store.live_ids() == ok


def test_second_index_of_unchanged_folder_encodes_nothing(library, photo_dir):
    library.add_folder(photo_dir)
    first = library.index()
    assert first.encoding.encoded == 5
    assert len(first.scan.changes.added) == 5
    again = library.index()
    assert again.encoding.encoded == 0
    assert not again.scan.changes.any
    assert again.scan.changes.touched == 0
    assert_consistent(library)


def test_touched_file_is_not_reencoded(library, photo_dir):
    library.add_folder(photo_dir)
    library.index()
    before = photo_ids(library)
    os.utime(photo_dir / "red.jpg", (1_600_000_000, 1_600_000_000))
    report = library.index()
    assert report.scan.changes.touched == 1
    assert report.encoding.encoded == 0
    assert photo_ids(library) == before


def test_modified_file_is_reencoded(library, photo_dir):
    library.add_folder(photo_dir)
    library.index()
    red_id = photo_ids(library)[str(photo_dir / "red.jpg")]
    make_photo(photo_dir / "red.jpg", "black", size=(80, 40))
    report = library.index()
    assert report.scan.changes.changed == [red_id]
    assert report.encoding.encoded == 1
    assert search_paths(library, "black", 1) == [str(photo_dir / "red.jpg")]
    assert_consistent(library)


def test_rename_and_move_keep_id_and_vector(library, photo_dir):
    library.add_folder(photo_dir)
    library.index()
    ids = photo_ids(library)
    red_id, blue_id = ids[str(photo_dir / "red.jpg")], ids[str(photo_dir / "blue.jpg")]
    os.rename(photo_dir / "red.jpg", photo_dir / "crimson.jpg")
    (photo_dir / "moved").mkdir()
    os.rename(photo_dir / "blue.jpg", photo_dir / "moved" / "blue.jpg")
    report = library.index()
    assert report.scan.changes.moved == 2
    assert report.encoding.encoded == 0
    assert report.scan.changes.removed == 0
    after = photo_ids(library)
    assert after[str(photo_dir / "crimson.jpg")] == red_id
    assert after[str(photo_dir / "moved" / "blue.jpg")] == blue_id
    (top,) = library.search(SearchQuery(text="red", k=1))
    assert (top.photo_id, top.path) == (red_id, str(photo_dir / "crimson.jpg"))
    (top,) = library.search(SearchQuery(text="blue", k=1))
    assert (top.photo_id, top.path) == (blue_id, str(photo_dir / "moved" / "blue.jpg"))
    assert_consistent(library)


def test_deleted_photo_leaves_search_results(library, photo_dir):
    library.add_folder(photo_dir)
    library.index()
    assert str(photo_dir / "red.jpg") in search_paths(library, "red")
    (photo_dir / "red.jpg").unlink()
    report = library.index()
    assert report.scan.changes.removed == 1
    assert str(photo_dir / "red.jpg") not in search_paths(library, "red")
    assert len(search_paths(library, "red")) == 4
    assert_consistent(library)


def test_deleted_photo_leaves_results_after_reopen(tmp_path, registry, photo_dir):
    with Library(tmp_path / "lib", registry=registry) as library:
        library.add_folder(photo_dir)
        library.index()
    (photo_dir / "green.jpg").unlink()
    with Library(tmp_path / "lib", registry=registry) as library:
        library.scan()  # scan alone, store opened lazily afterwards
        assert str(photo_dir / "green.jpg") not in search_paths(library, "green")


def test_hidden_and_system_folders_are_skipped(library, photo_dir):
    make_photo(photo_dir / ".hidden" / "x.jpg")
    make_photo(photo_dir / ".thumbnails" / "t.jpg")
    make_photo(photo_dir / "@eaDir" / "s.jpg")
    make_photo(photo_dir / ".dotfile.jpg")
    library.add_folder(photo_dir)
    library.index()
    assert len(photo_ids(library)) == 5


def test_symlink_loop_terminates(library, photo_dir):
    os.symlink(photo_dir, photo_dir / "sub" / "loop")
    library.add_folder(photo_dir)
    report = library.index()
    assert report.encoding.encoded == 5


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads unreadable files anyway")
def test_unreadable_file_recorded_as_failed(library, photo_dir):
    locked = make_photo(photo_dir / "locked.jpg", "black")
    locked.chmod(0)
    try:
        library.add_folder(photo_dir)
        library.index()
        failures = dict(library.status().failures)
        assert "permission denied" in failures[str(locked)]
    finally:
        locked.chmod(0o644)
    library.index()  # readable again: retried and indexed
    assert library.status().failed == 0
    assert search_paths(library, "black", 1) == [str(locked)]


def test_duplicate_copy_reuses_vectors(library, photo_dir):
    library.add_folder(photo_dir)
    library.index()
    shutil.copy2(photo_dir / "red.jpg", photo_dir / "sub" / "red-copy.jpg")
    report = library.index()
    assert report.scan.changes.duplicates == 1
    assert report.encoding.encoded == 0
    top_two = set(search_paths(library, "red", 2))
    assert top_two == {str(photo_dir / "red.jpg"), str(photo_dir / "sub" / "red-copy.jpg")}
    assert_consistent(library)


def test_vanished_folder_goes_offline_and_keeps_photos(library, photo_dir, tmp_path):
    library.add_folder(photo_dir)
    library.index()
    parked = tmp_path / "unmounted"
    os.rename(photo_dir, parked)
    report = library.index()
    assert report.scan.offline_folders == [str(photo_dir)]
    assert report.scan.changes.removed == 0
    (folder,) = library.folders()
    assert folder.online is False and folder.photos == 5
    assert len(search_paths(library, "red")) == 5
    os.rename(parked, photo_dir)
    report = library.index()
    assert report.scan.offline_folders == [] and report.encoding.encoded == 0
    assert library.folders()[0].online is True


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("zero.jpg", b"", "not an image"),
        ("notes.jpg", b"shopping list: eggs, milk\n", "not an image"),
        ("garbage.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "not an image"),
    ],
)
def test_broken_files_fail_with_reason_and_run_continues(library, photo_dir, name, content, reason):
    (photo_dir / name).write_bytes(content)
    library.add_folder(photo_dir)
    report = library.index()
    assert report.encoding.encoded == 5
    assert report.encoding.failed == 1
    status = library.status()
    assert status.failed == 1 and status.indexed == 5 and status.pending == 0
    ((path, why),) = status.failures
    assert path == str(photo_dir / name)
    assert reason in why
    assert library.index().encoding.failed == 0  # failures are not retried until they change


def test_truncated_jpeg_fails_and_a_fixed_file_is_retried(library, photo_dir):
    good = make_photo(photo_dir / "big.jpg", "white", size=(400, 300), quality=95).read_bytes()
    (photo_dir / "big.jpg").write_bytes(good[: len(good) // 4])
    library.add_folder(photo_dir)
    library.index()
    assert "corrupt or truncated" in dict(library.status().failures)[str(photo_dir / "big.jpg")]
    (photo_dir / "big.jpg").write_bytes(good)
    report = library.index()
    assert report.encoding.encoded == 1
    assert library.status().failed == 0


def test_file_deleted_between_scan_and_decode_is_dropped(library, photo_dir):
    library.add_folder(photo_dir)
    library.scan()
    (photo_dir / "green.jpg").unlink()
    result = encode_pending(
        library.catalog, library.store, library.encoder, library.model_id, batch_size=2
    )
    assert result.encoded == 4
    assert result.vanished == 1
    assert result.failed == 0
    assert str(photo_dir / "green.jpg") not in photo_ids(library)
    assert library.status().failed == 0
    assert_consistent(library)


def test_removing_a_folder_forgets_its_photos(library, photo_dir, tmp_path):
    other = tmp_path / "other"
    make_photo(other / "black.jpg", "black")
    library.add_folder(photo_dir)
    library.add_folder(other)
    library.index()
    assert library.remove_folder(other) == 1
    assert str(other / "black.jpg") not in search_paths(library, "black")
    assert_consistent(library)


def test_move_seen_as_delete_then_later_create_keeps_id_and_vector(library, photo_dir, tmp_path):
    """The watcher can see a move's two halves in different batches: the vanished photo waits
    as a hidden tombstone and is revived when its content reappears."""
    from datetime import timedelta

    from photosearch.files.scanning import stat_photo
    from photosearch.indexing.reconcile import purge_tombstones

    library.add_folder(photo_dir)
    library.index()
    old = photo_dir / "red.jpg"
    old_id = photo_ids(library)[str(old)]
    new = photo_dir / "sub" / "crimson.jpg"
    os.rename(old, new)
    library.apply_changes({str(old): None})  # first batch: only the delete
    assert str(old) not in search_paths(library, "red")
    assert_consistent(library)
    library.apply_changes({str(new): stat_photo(str(new))})  # a later batch: the create
    assert photo_ids(library)[str(new)] == old_id
    assert library.index().encoding.encoded == 0
    assert search_paths(library, "red")[0] == str(new)
    assert_consistent(library)
    # a tombstone that nothing revives is purged after its time-to-live
    (photo_dir / "blue.jpg").unlink()
    library.apply_changes({str(photo_dir / "blue.jpg"): None})
    assert purge_tombstones(library.catalog.session, timedelta(hours=1)) == 0
    assert purge_tombstones(library.catalog.session, timedelta(0)) == 1
    assert_consistent(library)


def test_move_seen_as_create_before_delete_keeps_id_and_vector(library, photo_dir):
    """A renamed directory's events can arrive create-first: the new path's content matches a
    photo whose file is gone from disk, so it is the same photo, not a copy."""
    from photosearch.files.scanning import stat_photo

    library.add_folder(photo_dir)
    library.index()
    old = photo_dir / "red.jpg"
    old_id = photo_ids(library)[str(old)]
    new = photo_dir / "renamed" / "red.jpg"
    new.parent.mkdir()
    os.rename(old, new)
    library.apply_changes({str(new): stat_photo(str(new))})  # the create, before any delete
    assert photo_ids(library)[str(new)] == old_id
    assert str(old) not in photo_ids(library)
    library.apply_changes({str(old): None})  # the late delete changes nothing
    assert photo_ids(library)[str(new)] == old_id
    assert library.index().encoding.encoded == 0
    assert search_paths(library, "red")[0] == str(new)
    assert_consistent(library)


def test_copy_of_a_photo_still_on_disk_is_a_new_photo(library, photo_dir):
    library.add_folder(photo_dir)
    library.index()
    original = photo_dir / "red.jpg"
    copy = photo_dir / "copy of red.jpg"
    shutil.copy2(original, copy)
    from photosearch.files.scanning import stat_photo

    library.apply_changes({str(copy): stat_photo(str(copy))})
    ids = photo_ids(library)
    assert str(original) in ids and str(copy) in ids and ids[str(copy)] != ids[str(original)]
    assert library.index().encoding.encoded == 0  # the copy reuses the twin's vectors
    assert_consistent(library)
