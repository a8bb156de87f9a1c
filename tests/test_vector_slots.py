"""The catalog keeps each vector once, in a 16-bit slot file (schema v6): the slot file's own
guarantees, an older (v5) library moving its float32 BLOBs there on its first writable open
with the same search results, and a kill -9 at any point of that move losing nothing.
Real files, real SQLite, a real ONNX tiny bundle, real SIGKILLs."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from photosearch.catalog import SCHEMA_VERSION, Catalog
from photosearch.library import saved_vectors
from photosearch.library.facade import Library
from photosearch.search.query import SearchQuery
from photosearch.vectors import vector_slots
from photosearch.vectors.vector_slots import VectorSlots
from tests.conftest import make_photo
from tests.support.catalog_versions import undo_version_7
from tests.support.tiny_bundle import build_tiny_bundle

ROOT = Path(__file__).resolve().parent.parent
COLOURS = ["red", "green", "blue", "yellow", "white", "black"]
QUERIES = ["red", "green", "a blue photo", "yellow", "black"]


def unit_vectors(count: int, dim: int, seed: int = 1) -> np.ndarray:
    vectors = np.random.default_rng(seed).standard_normal((count, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


# --- the slot file ------------------------------------------------------------------------


def test_slots_give_back_the_stored_rounding_and_check_every_read(tmp_path: Path):
    slots = VectorSlots(tmp_path / "m.slots", 8)
    vectors = unit_vectors(5, 8)
    references = slots.append(vectors[:3]) + slots.append(vectors[3:])
    assert [vector_slots.slot_of(r) for r in references] == [0, 1, 2, 3, 4]
    assert all(vector_slots.is_reference(r) for r in references)
    found, read = slots.read(references)
    assert found.all()
    assert np.array_equal(read, vector_slots.as_stored(vectors))
    step = np.abs(vectors).max(axis=1, keepdims=True) / 32767  # 16 bits per value, per vector
    assert (np.abs(read - vectors) < 2 * step).all() and (np.abs(read) <= np.abs(vectors)).all()

    with slots.path.open("r+b") as handle:  # one value of slot 2 changed on disk
        handle.seek(vector_slots.HEADER.size + 2 * slots.row_bytes + 4)
        handle.write(b"\x00\x3c")
    found, read = slots.read(references)
    assert found.tolist() == [True, True, False, True, True]
    assert not read[2].any()

    os.truncate(slots.path, slots.path.stat().st_size - 3)  # a torn last slot
    assert slots.read(references)[0].tolist() == [True, True, False, True, False]
    later = slots.append(vectors[:1])  # starts on a slot boundary, after the torn one
    assert vector_slots.slot_of(later[0]) == 5
    assert slots.read(later + references[:2])[0].all()

    assert not VectorSlots(slots.path, 16).read(references)[0].any()  # another dimension
    assert not VectorSlots(tmp_path / "absent.slots", 8).read(references)[0].any()

    with slots.path.open("r+b") as handle:  # a damaged header: nothing in the file is trusted
        handle.write(b"garbage!")
    assert not slots.read(references)[0].any()
    fresh = slots.append(vectors[3:])  # a new file; the damaged one is kept aside
    assert [vector_slots.slot_of(r) for r in fresh] == [0, 1]
    assert slots.read(fresh)[0].all() and not slots.read(references)[0].any()
    assert len(list(tmp_path.glob("m.slots.damaged-*"))) == 1


def test_decode_reads_inline_vectors_and_references_and_refuses_anything_else(tmp_path: Path):
    slots = VectorSlots(tmp_path / "m.slots", 4)
    vectors = unit_vectors(3, 4)
    (reference,) = slots.append(vectors[:1])
    blobs = [reference, vectors[1].tobytes(), b"\x00" * 7, vectors[2].astype(np.float16).tobytes()]
    found, read = vector_slots.decode(blobs, 4, slots)
    assert found.tolist() == [True, True, False, False]
    assert np.array_equal(read[0], vector_slots.as_stored(vectors[:1])[0])
    assert np.array_equal(read[1], vectors[1])


# --- an older library ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    models = tmp_path_factory.mktemp("models")
    build_tiny_bundle(models / "tiny", name="tiny")
    return models


def open_library(directory: Path, models: Path, **options) -> Library:
    return Library(directory, models_dir=models, model="tiny", threads=1, **options)


def results(library: Library) -> dict[str, dict[str, float]]:
    return {
        text: {r.path: r.score for r in library.search(SearchQuery(text=text, k=20))}
        for text in QUERIES
    }


def assert_same_results(found: dict, expected: dict) -> None:
    """The same photos for every query, each scored the same (to float rounding: the graph
    and the exact search sum in different orders)."""
    assert found.keys() == expected.keys()
    for text, scores in expected.items():
        assert found[text].keys() == scores.keys(), text
        assert all(abs(found[text][p] - s) < 1e-5 for p, s in scores.items()), text


def as_version_5(library: Path) -> None:
    """Turn a library into what photosearch with schema v5 left on disk: every vector a
    float32 BLOB in the catalog, v5's model index, no slot file (and a graph, as v5 saved)."""
    connection = sqlite3.connect(library / "catalog.sqlite")
    with connection:
        identity, dim = connection.execute("SELECT identity, embed_dim FROM models").fetchone()
        slots = saved_vectors.slots_for(library / "vectors", identity, dim)
        rows = connection.execute("SELECT photo_id, vector FROM vectors").fetchall()
        found, vectors = vector_slots.decode([blob for _, blob in rows], dim, slots)
        assert found.all()
        for (pid, _), vector in zip(rows, vectors, strict=True):
            connection.execute(
                "UPDATE vectors SET vector = ? WHERE photo_id = ?", (vector.tobytes(), pid)
            )
        undo_version_7(connection)
        connection.execute("DROP INDEX ix_vectors_model")
        connection.execute("CREATE INDEX ix_vectors_model ON vectors (model_id)")
        connection.execute("UPDATE meta SET value = '5' WHERE key = 'schema_version'")
    connection.close()
    slots.path.unlink()


def stored_lengths(library: Path) -> set[int]:
    with sqlite3.connect(library / "catalog.sqlite") as connection:
        return {n for (n,) in connection.execute("SELECT length(vector) FROM vectors")}


def test_a_version_5_library_moves_its_vectors_and_answers_as_before(
    tmp_path: Path, models_dir: Path
):
    photos = tmp_path / "photos"
    for colour in COLOURS:
        make_photo(photos / f"{colour}.png", colour)
        make_photo(photos / f"{colour}-wide.jpg", colour, size=(64, 40))
    library = tmp_path / "library"
    with open_library(library, models_dir) as opened:
        opened.add_folder(photos)
        opened.index()
        before = results(opened)
    as_version_5(library)
    assert stored_lengths(library) == {4 * 16}  # float32 BLOBs of the tiny model

    with open_library(library, models_dir) as opened:  # the first writable open upgrades
        assert opened.catalog.schema_version() == SCHEMA_VERSION
        assert_same_results(results(opened), before)
    assert (library / "catalog.sqlite.v5.bak").exists()
    assert stored_lengths(library) == {vector_slots.REFERENCE_BYTES}  # no second copy left
    (slots,) = (library / "vectors").glob("*.slots")
    assert slots.stat().st_size == vector_slots.HEADER.size + 2 * len(COLOURS) * (4 + 2 * 16)

    for path in (library / "vectors").iterdir():  # the graph rebuilt from the slot file alone
        if path.suffix != ".slots":
            path.unlink()
    with open_library(library, models_dir, readonly=True) as opened:
        assert opened.store.load_problem is None and len(opened.store) == 2 * len(COLOURS)
        assert_same_results(results(opened), before)
    with open_library(library, models_dir) as opened:
        assert opened.index().encoding.encoded == 0


# --- kill -9 while moving -----------------------------------------------------------------

SPILLER = """
import sys
from pathlib import Path
from photosearch.catalog import SCHEMA_VERSION, Catalog
from photosearch.catalog import queries
from photosearch.library import saved_vectors
saved_vectors.SPILL_CHUNK = 100
reading = queries.inline_vectors


def each_chunk(*args, **kwargs):  # says when the next chunk is read: the chunks before are moved
    print("chunk", flush=True)
    return reading(*args, **kwargs)


queries.inline_vectors = each_chunk  # spill imports it from there when it runs
library = Path(sys.argv[1])
catalog = Catalog(library / "catalog.sqlite")
print("moving", flush=True)
saved_vectors.spill(catalog, 1, saved_vectors.slots_for(library / "vectors", "m@1", 64))
print("done", flush=True)
"""


def version_5_catalog(path: Path, vectors: np.ndarray) -> None:
    """A v5 catalog (schema steps 1-5) holding ``vectors`` as float32 BLOBs of photos 1..n."""
    from photosearch.catalog import schema

    connection = sqlite3.connect(path)
    with connection:
        for step in (schema.SCHEMA_V1, schema.SCHEMA_V2, schema.SCHEMA_V3, schema.SCHEMA_V4):
            for statement in step:
                connection.execute(statement)
        for statement in schema.SCHEMA_V5:
            connection.execute(statement)
        connection.execute("INSERT INTO meta VALUES ('schema_version', '5')")
        connection.execute("INSERT INTO folders (id, path, added_at) VALUES (1, '/p', '2026')")
        connection.execute(
            "INSERT INTO models VALUES (1, 'm@1', 'm', ?, '2026')", (vectors.shape[1],)
        )
        connection.executemany(
            "INSERT INTO photos (id, folder_id, path, size, mtime_ns, content_hash, file_time, "
            "status, added_at) VALUES (?, 1, ?, 1, 0, ?, '2026', 'ok', '2026')",
            [(i, f"/p/{i}.jpg", f"{i:x}") for i in range(1, len(vectors) + 1)],
        )
        connection.executemany(
            "INSERT INTO vectors VALUES (?, 1, ?)",
            [(i + 1, v.tobytes()) for i, v in enumerate(vectors)],
        )
    connection.close()


def every_vector(library: Path, dim: int) -> tuple[np.ndarray, np.ndarray, set[int]]:
    """(found, vectors by photo id order, stored lengths) read as the library reads them."""
    with sqlite3.connect(library / "catalog.sqlite") as connection:
        blobs = [b for (b,) in connection.execute("SELECT vector FROM vectors ORDER BY photo_id")]
    slots = saved_vectors.slots_for(library / "vectors", "m@1", dim)
    found, vectors = vector_slots.decode(blobs, dim, slots)
    return found, vectors, {len(b) for b in blobs}


def test_kill_9_while_moving_vectors_loses_nothing_and_the_move_resumes(tmp_path: Path):
    library = tmp_path / "library"
    (library / "vectors").mkdir(parents=True)
    vectors = unit_vectors(6_000, 64)
    version_5_catalog(library / "catalog.sqlite", vectors)
    env = dict(os.environ, PYTHONPATH=f"{ROOT}{os.pathsep}{ROOT / 'plugins'}")
    rng = np.random.default_rng(7)
    killed_midway = 0
    for _ in range(8):
        child = subprocess.Popen(
            [sys.executable, "-c", SPILLER, str(library)],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "moving"
        # killed while the move is under way, whatever the machine's speed: after 1-4 chunks
        # (of 60) have moved, at a random moment of the next one
        for _ in range(int(rng.integers(2, 6))):
            assert child.stdout.readline().strip() == "chunk"
        time.sleep(float(rng.uniform(0.0, 0.01)))
        child.send_signal(signal.SIGKILL)
        rest = child.communicate()[0]
        found, read, lengths = every_vector(library, 64)
        assert found.all(), "a kill lost a vector"
        assert np.abs(read - vectors).max() < 1e-3  # each one the photo's own vector
        if "done" in rest:
            break
        killed_midway += lengths == {4 * 64, vector_slots.REFERENCE_BYTES}
    assert killed_midway, "no kill landed while the move was under way"
    catalog = Catalog(library / "catalog.sqlite")  # what a writable open does
    saved_vectors.spill(catalog, 1, saved_vectors.slots_for(library / "vectors", "m@1", 64))
    catalog.checkpoint()
    full = (library / "catalog.sqlite").stat().st_size
    assert catalog.compact()
    assert (library / "catalog.sqlite").stat().st_size < full / 2  # the BLOBs' space is back
    catalog.close()
    found, read, lengths = every_vector(library, 64)
    assert found.all() and lengths == {vector_slots.REFERENCE_BYTES}
    assert np.array_equal(read, vector_slots.as_stored(vectors))


# --- repair -------------------------------------------------------------------------------


def test_repair_without_backup_or_graph_reuses_the_vectors_the_slot_file_holds(
    tmp_path: Path, models_dir: Path
):
    from photosearch.catalog.backup import BACKUP_DIR
    from tests.test_library_faults import overwrite_header, run

    photos = tmp_path / "photos"
    for colour in COLOURS:
        make_photo(photos / f"{colour}.png", colour)
    library = tmp_path / "library"
    with open_library(library, models_dir) as opened:
        opened.add_folder(photos)
        opened.index()
        before = results(opened)
    assert stored_lengths(library) == {vector_slots.REFERENCE_BYTES}
    shutil.rmtree(library / BACKUP_DIR, ignore_errors=True)
    for path in (library / "vectors").iterdir():
        if path.suffix != ".slots":
            path.unlink()  # no graph to take vectors from: only the salvaged references
    overwrite_header(library / "catalog.sqlite")

    repaired = run(library, models_dir, "repair")
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    assert f"{len(COLOURS)} trusted vectors reused" in repaired.stdout, repaired.stdout
    assert " 0 encoded" in repaired.stdout, repaired.stdout
    with open_library(library, models_dir, readonly=True) as opened:
        assert_same_results(results(opened), before)
