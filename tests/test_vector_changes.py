"""Opening a library costs O(changes): the vector store's commit point records the catalog's
change-log position (schema v5), so an in-step store opens without reading every id, and
changes made by another process since (new, removed, vanished, returned photos) are replayed
from the log alone. Real SQLite, real hnswlib, a real ONNX tiny bundle."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from photosearch.catalog import vector_changes
from photosearch.library import saved_vectors
from photosearch.library.facade import Library
from photosearch.search.query import SearchQuery
from photosearch.vectors import vector_slots
from tests.conftest import make_photo
from tests.support.tiny_bundle import build_tiny_bundle

COLOURS = ["red", "green", "blue", "yellow", "white", "black"]
PHOTOS = 2 * len(COLOURS)


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    models = tmp_path_factory.mktemp("models")
    build_tiny_bundle(models / "tiny", name="tiny")
    return models


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory, models_dir: Path) -> Path:
    root = tmp_path_factory.mktemp("template")
    photos = root / "photos"
    photos.mkdir()
    for colour in COLOURS:  # twelve, so that two removals stay below a rebuild
        make_photo(photos / f"{colour}.png", colour)
        make_photo(photos / f"{colour}-tall.png", colour, size=(48, 64))
    with open_library(root / "library", models_dir) as library:
        library.add_folder(photos)
        library.index()
    return root


@pytest.fixture
def library_dir(template: Path, tmp_path: Path) -> Path:
    shutil.copytree(template / "library", tmp_path / "library")
    return tmp_path / "library"


def open_library(directory: Path, models: Path, **options) -> Library:
    return Library(directory, models_dir=models, model="tiny", threads=1, **options)


# the catalogs each full comparison (vector_changes.present_ids) read, in call order
_FULL_READS: list[object] = []


@pytest.fixture(autouse=True)
def _count_full_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    real = vector_changes.present_ids

    def counted(catalog, model_id):
        _FULL_READS.append(catalog)
        return real(catalog, model_id)

    monkeypatch.setattr(vector_changes, "present_ids", counted)


class FullReads:
    """Counts the reads of every vector id of a model (the O(library) check) that this
    library's catalog makes from now on."""

    def __init__(self, library: Library):
        self.catalog = library.catalog
        self.start = len(_FULL_READS)

    @property
    def count(self) -> int:
        return sum(catalog is self.catalog for catalog in _FULL_READS[self.start :])


def raw(library_dir: Path) -> sqlite3.Connection:
    """The catalog as another process (or the user with sqlite3) would change it."""
    connection = sqlite3.connect(library_dir / "catalog.sqlite")
    connection.execute("PRAGMA foreign_keys=ON")
    return connection


def photo_id(connection: sqlite3.Connection, colour: str) -> int:
    return connection.execute(
        "SELECT id FROM photos WHERE path LIKE ?", (f"%/{colour}.png",)
    ).fetchone()[0]


def decoded(library_dir: Path, blob: bytes) -> np.ndarray:
    """A catalog vector value as float32 (read from the slot file when it is a reference)."""
    with raw(library_dir) as connection:
        identity, dim = connection.execute("SELECT identity, embed_dim FROM models").fetchone()
    slots = saved_vectors.slots_for(library_dir / "vectors", identity, dim)
    found, vectors = vector_slots.decode([blob], dim, slots)
    assert found[0]
    return vectors[0]


def test_an_in_step_store_opens_without_reading_every_id(library_dir: Path, models_dir: Path):
    with open_library(library_dir, models_dir, readonly=True) as library:
        reads = FullReads(library)
        assert len(library.store) == PHOTOS
        assert reads.count == 0
        assert library.store.catalog_position == tuple(
            vector_changes.current_position(library.catalog)
        )
        assert len(library.search(SearchQuery(text="red", k=3))) == 3


def test_changes_made_elsewhere_are_replayed_from_the_log(library_dir: Path, models_dir: Path):
    with raw(library_dir) as connection:
        red, blue, green = (photo_id(connection, c) for c in ("red", "blue", "green"))
        model = connection.execute("SELECT id FROM models").fetchone()[0]
        blob = connection.execute(
            "SELECT vector FROM vectors WHERE photo_id = ?", (red,)
        ).fetchone()[0]
        connection.execute("DELETE FROM vectors WHERE photo_id = ?", (red,))
        connection.execute("UPDATE photos SET missing_since = '2026-01-01' WHERE id = ?", (blue,))
        # green's vector replaced by red's (as a re-encode after a content change would)
        connection.execute("DELETE FROM vectors WHERE photo_id = ?", (green,))
        connection.execute("INSERT INTO vectors VALUES (?, ?, ?)", (green, model, blob))
    for readonly in (True, False):
        with open_library(library_dir, models_dir, readonly=readonly) as library:
            reads = FullReads(library)
            store = library.store
            assert reads.count == 0
            assert red not in store.live_ids() and blue not in store.live_ids()
            assert np.array_equal(store.get_vectors([green])[0], decoded(library_dir, blob))
            assert len(store) == PHOTOS - 2
    # the writable open marked nothing to save; an index run saves and prunes the log
    with open_library(library_dir, models_dir) as library:
        library.store.mark_dirty()
        library.index()
        position = library.store.catalog_position
    with raw(library_dir) as connection:
        rows = connection.execute("SELECT max(seq), count(*) FROM vector_log").fetchone()
        yellow = photo_id(connection, "yellow")
    assert rows == (position[1], 1)  # only the newest row is kept (seq never goes back)
    for missing_since in ("2026-01-01", None):  # vanished, then back (a disk re-mounted)
        with raw(library_dir) as connection:
            connection.execute(
                "UPDATE photos SET missing_since = ? WHERE id = ?", (missing_since, yellow)
            )
        with open_library(library_dir, models_dir, readonly=True) as library:
            reads = FullReads(library)
            assert (yellow in library.store.live_ids()) == (missing_since is None)
            assert reads.count == 0


def test_a_store_without_a_position_compares_once_then_records_it(
    library_dir: Path, models_dir: Path
):
    meta_path = next((library_dir / "vectors").glob("*.json"))
    meta = json.loads(meta_path.read_text())
    del meta["catalog_position"]  # as saved before schema v5
    meta_path.write_text(json.dumps(meta))
    with open_library(library_dir, models_dir) as library:
        reads = FullReads(library)
        assert len(library.store) == PHOTOS
        assert reads.count == 1
        assert library.store.dirty  # the next writer records the position
        library.index()
    with open_library(library_dir, models_dir, readonly=True) as library:
        reads = FullReads(library)
        assert len(library.store) == PHOTOS
        assert reads.count == 0


def test_a_restored_catalog_is_compared_in_full(library_dir: Path, models_dir: Path):
    with open_library(library_dir, models_dir) as library:
        vector_changes.renew_epoch(library.catalog)  # what repair does after restoring
    with open_library(library_dir, models_dir, readonly=True) as library:
        reads = FullReads(library)
        assert len(library.store) == PHOTOS
        assert reads.count == 1


def test_a_log_pruned_past_the_store_is_compared_in_full(library_dir: Path, models_dir: Path):
    with raw(library_dir) as connection:
        red = photo_id(connection, "red")
        connection.execute("DELETE FROM vectors WHERE photo_id = ?", (red,))
        newest = connection.execute("SELECT max(seq) FROM vector_log").fetchone()[0]
        model = connection.execute("SELECT id FROM models").fetchone()[0]
        # another writer saved a newer graph and pruned: this store's rows are gone
        connection.execute("DELETE FROM vector_log WHERE seq < ?", (newest,))
        connection.execute(
            "INSERT OR REPLACE INTO meta VALUES (?, ?)",
            (vector_changes.PRUNED_KEY.format(model_id=model), str(newest)),
        )
    with open_library(library_dir, models_dir, readonly=True) as library:
        reads = FullReads(library)
        assert red not in library.store.live_ids()
        assert reads.count == 1


def test_a_log_that_changed_no_vector_is_recorded_without_writing_the_graph_again(
    library_dir: Path, models_dir: Path
):
    """Setting a photo's presence or hash to what it was logs its vectors all the same (a
    trigger cannot tell); the next writer records the new position in the commit point alone
    (the graph and matrix files untouched: seconds to write at 1M photos), so later opens,
    a one-shot search's included, replay nothing (before, every open replayed that log, and a
    one-shot search read the whole graph to do it)."""
    vectors_dir = library_dir / "vectors"
    meta_path = next(vectors_dir.glob("*.json"))
    graph_files = [p for p in vectors_dir.iterdir() if p.suffix in (".hnsw", ".npy", ".slots")]
    files_before = {p.name: p.stat().st_mtime_ns for p in graph_files}
    assert len(files_before) == 4  # graph, ids, matrix, slots
    with raw(library_dir) as connection:
        connection.execute("UPDATE photos SET missing_since = missing_since")
        connection.execute("UPDATE photos SET phash = phash")
        assert connection.execute("SELECT count(*) FROM vector_log").fetchone()[0] > 2 * PHOTOS
    with open_library(library_dir, models_dir) as library:
        library.index()
        position = library.store.catalog_position
        assert position == tuple(vector_changes.current_position(library.catalog))
    assert tuple(json.loads(meta_path.read_text())["catalog_position"]) == position
    assert {p.name: p.stat().st_mtime_ns for p in graph_files} == files_before
    with raw(library_dir) as connection:  # and the log was pruned after it
        assert connection.execute("SELECT count(*) FROM vector_log").fetchone()[0] == 1
    with open_library(library_dir, models_dir, readonly=True, one_shot=True) as library:
        reads = FullReads(library)
        store = library.store
        assert store.catalog_position == position and not store.dirty
        assert reads.count == 0
        assert len(library.search(SearchQuery(text="red", k=3))) == 3
