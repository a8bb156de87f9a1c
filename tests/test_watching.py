"""The watcher with real folders, real watchdog (inotify) events, real catalog, store and model."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import select

from photosearch.catalog import Folder, Photo, Vector
from photosearch.library import saved_vectors
from photosearch.library.facade import Library
from photosearch.library.watch_service import WatchService, WatchStatus
from photosearch.search.query import SearchQuery
from photosearch.vectors import vector_slots
from photosearch.vectors.store import VectorStore
from tests.conftest import make_photo
from tests.support.tiny_bundle import COLOUR_RGB

WAIT_S = 10.0


@dataclass
class Watched:
    root: Path
    service: WatchService
    statuses: list[WatchStatus]
    library: Library

    def mark(self) -> int:
        """Where "since now" starts: after the reports of work already done have arrived (a
        search can see a photo a moment before its batch's report is appended)."""
        assert self.service.wait_idle(WAIT_S)
        return len(self.statuses)

    def encoded_since(self, mark: int) -> int:
        return sum(batch.encoded for batch in self.batches_since(mark))

    def batches_since(self, mark: int) -> list:
        assert self.service.wait_idle(WAIT_S)  # reports come after the store is updated
        seen = {id(s.last_batch) for s in self.statuses[:mark]}
        out = []
        for status in self.statuses[mark:]:
            batch = status.last_batch
            if batch is not None and id(batch) not in seen:
                seen.add(id(batch))
                out.append(batch)
        return out


def eventually(check: Callable[[], bool], timeout: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    assert check(), "condition not reached in time"


def file_fingerprints(folder: Path) -> dict[str, tuple[str, int]]:
    return {
        str(p): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def watched(library: Library, tmp_path: Path) -> Iterator[Watched]:
    """A watched folder holding an untouched corpus; its bytes and mtimes are checked after."""
    root = tmp_path / "photos"
    for colour in ("red", "blue", "white"):
        make_photo(root / "corpus" / f"{colour}.jpg", colour)
    before = file_fingerprints(root / "corpus")
    library.add_folder(root)
    statuses: list[WatchStatus] = []
    service = WatchService(
        library,
        on_status=statuses.append,
        settle_s=0.4,
        quiet_s=0.2,
        max_delay_s=2.0,
        root_check_s=0.5,
        save_every_s=1.0,
    )
    service.start()
    try:
        assert service.wait_idle(30)
        assert service.status.state == "watching"
        yield Watched(root, service, statuses, library)
    finally:
        service.stop()
    corpus = root / "corpus" if (root / "corpus").is_dir() else None
    if corpus is not None:
        assert file_fingerprints(corpus) == before, "the watcher wrote to a photo"


def top_path(library: Library, text: str) -> str | None:
    results = library.search(SearchQuery(text=text, k=1))
    return results[0].path if results else None


def result_paths(library: Library) -> set[str]:
    return {r.path for r in library.search(SearchQuery(text="photo", k=1000))}


def photo_row(library: Library, path: Path) -> Photo | None:
    with library.catalog.session() as session:
        return session.scalar(select(Photo).where(Photo.path == str(path), Photo.present()))


def vector_of(library: Library, photo_id: int) -> list[float]:
    """The photo's saved vector, inline or in the slot file (it moves there on a save)."""
    with library.catalog.session() as session:
        blob = session.scalar(select(Vector.vector).where(Vector.photo_id == photo_id))
    store = library.store
    slots = saved_vectors.slots_for(store.directory, store.identity, store.dim)
    found, vectors = vector_slots.decode([blob], store.dim, slots)
    assert found[0]
    return vectors[0].tolist()


def test_new_file_becomes_searchable(watched: Watched):
    new = make_photo(watched.root / "new" / "sunny.jpg", "yellow")
    eventually(lambda: top_path(watched.library, "yellow") == str(new))


def test_modified_file_is_reencoded(watched: Watched):
    path = make_photo(watched.root / "changing.png", "green")
    eventually(lambda: top_path(watched.library, "green") == str(path))
    make_photo(path, "black")
    eventually(lambda: top_path(watched.library, "black") == str(path))
    row = photo_row(watched.library, path)
    assert row is not None and row.status == "ok"


def test_rename_keeps_photo_and_vector(watched: Watched):
    old = make_photo(watched.root / "a.jpg", "green")
    eventually(lambda: top_path(watched.library, "green") == str(old))
    photo = photo_row(watched.library, old)
    vector = vector_of(watched.library, photo.id)
    mark = watched.mark()
    new = watched.root / "renamed green.jpg"
    os.rename(old, new)
    eventually(lambda: top_path(watched.library, "green") == str(new))
    assert photo_row(watched.library, new).id == photo.id
    assert vector_of(watched.library, photo.id) == vector
    assert watched.encoded_since(mark) == 0
    assert str(old) not in result_paths(watched.library)


def test_move_across_folders_keeps_vector(watched: Watched):
    old = make_photo(watched.root / "one" / "g.jpg", "green")
    (watched.root / "two").mkdir()
    eventually(lambda: top_path(watched.library, "green") == str(old))
    photo_id = photo_row(watched.library, old).id
    mark = watched.mark()
    new = watched.root / "two" / "g.jpg"
    shutil.move(old, new)
    eventually(lambda: top_path(watched.library, "green") == str(new))
    assert photo_row(watched.library, new).id == photo_id
    assert watched.encoded_since(mark) == 0


def test_delete_removes_from_results_and_catalog(watched: Watched):
    path = make_photo(watched.root / "gone.jpg", "green")
    eventually(lambda: str(path) in result_paths(watched.library))
    path.unlink()
    eventually(lambda: str(path) not in result_paths(watched.library))
    assert photo_row(watched.library, path) is None


def test_folder_move_keeps_every_photo(watched: Watched):
    album = watched.root / "album"
    paths = [
        make_photo(album / "inner" / f"{i}.png", c, size=(20 + i, 20))
        for i, c in enumerate(["green", "yellow", "black", "green", "yellow"])
    ]  # all different bytes
    eventually(lambda: {str(p) for p in paths} <= result_paths(watched.library))
    ids = {p.name: photo_row(watched.library, p).id for p in paths}
    mark = watched.mark()
    (watched.root / "archive").mkdir()
    moved = watched.root / "archive" / "album 2024"
    os.rename(album, moved)
    new_paths = {str(moved / "inner" / p.name) for p in paths}
    eventually(
        lambda: (
            new_paths <= result_paths(watched.library)
            and not {str(p) for p in paths} & result_paths(watched.library)
        )
    )
    assert {p.name: photo_row(watched.library, moved / "inner" / p.name).id for p in paths} == ids
    assert watched.encoded_since(mark) == 0


def test_folder_delete_and_move_out_remove_photos(watched: Watched, tmp_path: Path):
    doomed = [make_photo(watched.root / "doomed" / f"{i}.jpg", "green") for i in range(3)]
    leaving = [make_photo(watched.root / "leaving" / f"{i}.jpg", "black") for i in range(3)]
    everything = {str(p) for p in doomed + leaving}
    eventually(lambda: everything <= result_paths(watched.library))
    shutil.rmtree(watched.root / "doomed")
    os.rename(watched.root / "leaving", tmp_path / "outside")
    eventually(lambda: not everything & result_paths(watched.library))
    with watched.library.catalog.session() as session:
        left = session.scalars(select(Photo.path).where(Photo.present())).all()
    assert not everything & set(left)


def test_slowly_written_file_is_indexed_once_complete(watched: Watched):
    buffer = io.BytesIO()
    Image.new("RGB", (640, 480), COLOUR_RGB["green"]).save(buffer, "PNG", compress_level=0)
    data = buffer.getvalue()
    path = watched.root / "slow.png"
    mark = watched.mark()
    chunk = len(data) // 8 + 1
    with open(path, "wb") as handle:
        for start in range(0, len(data), chunk):
            handle.write(data[start : start + chunk])
            handle.flush()
            time.sleep(0.15)  # well under settle_s: the watcher must keep waiting
    eventually(lambda: top_path(watched.library, "green") == str(path))
    row = photo_row(watched.library, path)
    assert (row.status, row.width, row.height) == ("ok", 640, 480)
    assert watched.service.wait_idle(WAIT_S)
    batches = watched.batches_since(mark)
    assert sum(b.encoded for b in batches) == 1
    assert sum(b.failed for b in batches) == 0


def test_vanished_root_goes_offline_and_comes_back_without_reencoding(
    watched: Watched, tmp_path: Path
):
    library = watched.library
    before = {r.path for r in library.search(SearchQuery(text="red", k=10))}
    with library.catalog.session() as session:
        ids = dict(session.execute(select(Photo.path, Photo.id).where(Photo.present())).all())
    away = tmp_path / "unplugged"
    os.rename(watched.root, away)

    def online() -> bool:
        with library.catalog.session() as session:
            return bool(session.scalar(select(Folder.online)))

    eventually(lambda: not online())
    time.sleep(1.0)  # a few root checks and batches later, nothing was deleted
    with library.catalog.session() as session:
        present = select(Photo.path, Photo.id).where(Photo.present())
        assert dict(session.execute(present).all()) == ids
    mark = watched.mark()
    os.rename(away, watched.root)
    eventually(online)
    assert watched.service.wait_idle(WAIT_S)
    with library.catalog.session() as session:
        present = select(Photo.path, Photo.id).where(Photo.present())
        assert dict(session.execute(present).all()) == ids
    assert watched.encoded_since(mark) == 0
    assert {r.path for r in library.search(SearchQuery(text="red", k=10))} == before
    new = make_photo(watched.root / "after.jpg", "yellow")  # watched again
    eventually(lambda: top_path(library, "yellow") == str(new))


def test_hidden_system_and_ignored_files_are_left_out(library: Library, tmp_path: Path):
    root = tmp_path / "photos"
    root.mkdir()
    library.add_folder(root)
    library.settings.set_ignore_patterns(["*_private.jpg", "Screenshots"])
    service = WatchService(library, settle_s=0.3, quiet_s=0.2)
    service.start()
    try:
        assert service.wait_idle(30)
        skipped = [
            make_photo(root / ".hidden.jpg", "red"),
            make_photo(root / ".cache" / "thumb.jpg", "red"),
            make_photo(root / "@eaDir" / "x.jpg", "red"),
            make_photo(root / "me_private.jpg", "red"),
            make_photo(root / "Screenshots" / "s.png", "red"),
        ]
        (root / "notes.txt").write_text("not a photo")
        kept = make_photo(root / "kept.jpg", "green")
        eventually(lambda: photo_row(library, kept) is not None)
        assert service.wait_idle(WAIT_S)
    finally:
        service.stop()
    with library.catalog.session() as session:
        assert session.scalars(select(Photo.path).where(Photo.present())).all() == [str(kept)]
    assert all(photo_row(library, p) is None for p in skipped)


def test_a_large_copy_is_handled_in_a_few_batches(watched: Watched, tmp_path: Path):
    staging = tmp_path / "card"
    for i in range(200):
        make_photo(staging / f"IMG_{i:04d}.jpg", ("red", "green", "blue")[i % 3], size=(16, 12))
    mark = watched.mark()
    shutil.copytree(staging, watched.root / "import")
    expected = {str(watched.root / "import" / f"IMG_{i:04d}.jpg") for i in range(200)}
    eventually(lambda: expected <= result_paths(watched.library), timeout=30)
    batches = watched.batches_since(mark)
    assert sum(b.encoded + b.duplicates for b in batches) == 200, batches  # identical copies
    assert len(batches) <= 6, [b.paths for b in batches]


def test_waits_for_another_writer_then_catches_up(watched: Watched, tmp_path: Path):
    with Library(watched.library.directory, registry=watched.library.registry) as other:
        other.lock.acquire()
        path = make_photo(watched.root / "while locked.jpg", "green")
        eventually(lambda: watched.service.status.state == "waiting")
        assert "pid" in watched.service.status.message
        assert photo_row(watched.library, path) is None
        other.lock.release()
    eventually(lambda: top_path(watched.library, "green") == str(path))


def test_stop_saves_a_store_that_matches_the_catalog(watched: Watched):
    for i in range(5):
        make_photo(watched.root / "batch" / f"{i}.jpg", "black")
    eventually(lambda: len(result_paths(watched.library)) == 8)
    watched.service.stop()
    library = watched.library
    on_disk = VectorStore(
        library.directory / "vectors", library.encoder.identity, library.encoder.embed_dim
    )
    with library.catalog.session() as session:
        ids = set(session.scalars(select(Vector.photo_id)).all())
    assert on_disk.live_ids() == ids and len(ids) == 8
