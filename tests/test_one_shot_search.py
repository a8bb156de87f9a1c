"""A process that runs one vector search (`photosearch search` with nothing running) opens
its vector store one-shot: the float16 matrix answers at any library size, so
the graph is never read into memory for it. Real hnswlib, real files, a real CLI run."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from photosearch.vectors import store as store_module
from photosearch.vectors.store import VectorStore
from tests.test_vectors import clustered, exact_top

DIM = 64


@pytest.fixture
def large(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, np.ndarray, np.ndarray]:
    """A saved store the search policy counts as large (above EXACT_LIBRARY_ROWS)."""
    data = clustered(2000, noise=0.3)
    ids = np.arange(1, 2001, dtype=np.int64) * 3
    store = VectorStore(tmp_path, "m@1", DIM)
    store.add(ids.tolist(), data)
    store.save()
    monkeypatch.setattr(store_module, "EXACT_LIBRARY_ROWS", 500)
    return tmp_path, ids, data


def test_a_one_shot_store_searches_the_matrix_at_any_size(large):
    directory, ids, data = large
    query = clustered(1, seed=5, noise=0.3)[0]
    one_shot = VectorStore(directory, "m@1", DIM, one_shot=True)
    hits = one_shot.search(query, 10)
    assert not one_shot.graph_loaded
    assert [pid for pid, _ in hits] == exact_top(data, ids, query, 10)
    for vector in one_shot.get_vectors([pid for pid, _ in hits]):  # searching by a found photo
        assert one_shot.search(vector, 9)[0][1] == pytest.approx(1.0, abs=1e-5)
    assert not one_shot.graph_loaded

    resident = VectorStore(directory, "m@1", DIM)  # the app, `watch`: the graph answers
    assert [pid for pid, _ in resident.search(query, 10)][:5] == [pid for pid, _ in hits][:5]
    assert resident.graph_loaded
    # the same float32 scores as the exact search of a store with its graph in memory
    assert hits == resident.search(query, 10, method="exact")


def test_a_one_shot_store_with_changes_since_its_save_still_finds_them(large):
    directory, ids, data = large
    one_shot = VectorStore(directory, "m@1", DIM, one_shot=True)
    one_shot.add([99_999], data[7][None])  # what a catch-up with the catalog replays
    assert {pid for pid, _ in one_shot.search(data[7], 2)} == {99_999, int(ids[7])}


@pytest.fixture
def indexed_cli(tmp_path: Path, photo_dir: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The CLI's common options for a tiny-model library with ``photo_dir`` indexed, searches
    run in this process (no service)."""
    from photosearch.cli.main import main
    from tests.support.tiny_bundle import build_tiny_bundle

    monkeypatch.setenv("PHOTOSEARCH_NO_SERVICE", "1")
    build_tiny_bundle(tmp_path / "models" / "tiny")
    common = ["--library", str(tmp_path / "lib"), "--models-dir", str(tmp_path / "models")]
    common += ["--model", "tiny"]
    assert main([*common, "folders", "add", str(photo_dir)]) == 0
    assert main([*common, "index"]) == 0
    return common


def test_a_cli_search_opens_its_store_one_shot(
    tmp_path: Path, indexed_cli: list[str], monkeypatch: pytest.MonkeyPatch, capsys
):
    from photosearch.cli.main import main
    from photosearch.library.facade import Library
    from photosearch.search.query import SearchQuery

    common = indexed_cli
    monkeypatch.setattr(store_module, "EXACT_LIBRARY_ROWS", 1)  # 5 photos count as many
    reads: list[Path] = []
    read_graph = VectorStore._read_graph

    def counted(self: VectorStore, graph: Path):  # the real read, counted
        reads.append(graph)
        return read_graph(self, graph)

    monkeypatch.setattr(VectorStore, "_read_graph", counted)
    capsys.readouterr()
    # (a query no file name matches: word fusion would ask for 200, searched exactly anyway)
    assert main([*common, "search", "something crimson", "-k", "2", "--all-copies"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2
    assert reads == []  # the matrix answered: the graph was never read
    assert main([*common, "search", "something crimson", "-k", "2"]) == 0  # folds copies
    assert reads == []  # folding compares hashes and reads vectors: no search, no graph
    with Library(
        tmp_path / "lib", models_dir=tmp_path / "models", model="tiny", readonly=True
    ) as library:  # as the app and `watch` open it: above the exact size the graph answers
        assert len(library.search(SearchQuery(text="something crimson", k=2))) == 2

    assert len(reads) == 1


# A fresh process that imports SQLAlchemy fails: what a one-shot search (nothing running)
# imports is the cost a user waits for (issue 18: its import was 0.2 s of a 0.7 s search)
WITHOUT_SQLALCHEMY = """
import sys
class NoSQLAlchemy:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "sqlalchemy":
            raise ImportError("a one-shot search imported " + name)
sys.meta_path.insert(0, NoSQLAlchemy())
from photosearch.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


def test_a_cli_search_with_nothing_running_never_imports_sqlalchemy(
    tmp_path: Path, indexed_cli: list[str], photo_dir: Path
):
    import os
    import subprocess
    import sys

    def search(*arguments: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-c", WITHOUT_SQLALCHEMY, *indexed_cli, "search", *arguments],
            capture_output=True,
            text=True,
            env={**os.environ, "PHOTOSEARCH_NO_SERVICE": "1"},
            timeout=120,
        )

    # the model's ranking, word fusion (a file name's word) and folding copies, as JSON
    plain = search("something red", "-k", "3", "--json")
    assert plain.returncode == 0, plain.stderr
    results = json.loads(plain.stdout)
    assert len(results) == 3
    assert Path(results[0]["path"]) == photo_dir / "red.jpg"
    assert {"kind": "name", "words": ["red"]} in results[0]["reasons"]
    # a filter needs SQLAlchemy's conditions: the same process refuses it, proving the
    # blocker works; in a normal process the filter is answered (tests of filters)
    filtered = search("something red", "--camera", "Canon")
    assert filtered.returncode != 0
    assert "a one-shot search imported sqlalchemy" in filtered.stderr


def test_the_search_command_ends_at_once_with_its_output_whole_or_its_reader_gone(
    indexed_cli: list[str], photo_dir: Path
):
    """`photosearch search` ends its process right after a one-shot search (no 30-40 ms of
    Python's shutdown): every line still arrives, and a reader that went away (`| head`) costs
    no traceback and no error code."""
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    command = [sys.executable, "-m", "photosearch", *indexed_cli, "search", "red", "-k", "3"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), str(root / "plugins")])}
    whole = subprocess.run(command + ["--json"], capture_output=True, text=True, env=env)
    assert whole.returncode == 0, whole.stderr
    assert Path(json.loads(whole.stdout)[0]["path"]) == photo_dir / "red.jpg"
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert child.stdout is not None
    child.stdout.close()  # gone before the results are written
    _, errors = child.communicate(timeout=120)
    assert child.returncode == 0
    assert b"Traceback" not in errors and b"BrokenPipe" not in errors


# --- the one-shot store checks only what it reads ------------------------------------------


def _damage(path: Path, at: int | None = None) -> None:
    """Overwrite bytes inside ``path`` (its size unchanged), as disk damage would."""
    with path.open("r+b") as handle:
        handle.seek(path.stat().st_size // 2 if at is None else at)
        handle.write(b"\x7f" * 64)


@pytest.fixture
def with_slots(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A large saved store whose vectors are also in a real slot file, with a reader of them
    like the one the library hands a one-shot store (each slot checked on its own)."""
    from photosearch.vectors.vector_slots import VectorSlots, as_stored

    data = as_stored(clustered(2000, noise=0.3))
    ids = np.arange(1, 2001, dtype=np.int64) * 3
    store = VectorStore(tmp_path, "m@1", DIM)
    store.add(ids.tolist(), data)
    store.save()
    slots = VectorSlots(tmp_path / "m@1.slots", DIM)
    references = dict(zip(ids.tolist(), slots.append(data), strict=True))
    asked: list[list[int]] = []

    def read_vectors(wanted: list[int]) -> tuple[np.ndarray, np.ndarray]:
        asked.append(list(wanted))
        held = [pid for pid in wanted if pid in references]
        found, vectors = slots.read([references[pid] for pid in held])
        return np.asarray(held, dtype=np.int64)[found], vectors[found]

    monkeypatch.setattr(store_module, "EXACT_LIBRARY_ROWS", 500)
    return tmp_path, ids, data, read_vectors, asked


def _one_shot(directory: Path, read_vectors) -> VectorStore:
    return VectorStore(directory, "m@1", DIM, one_shot=True, read_vectors=read_vectors)


def test_a_one_shot_store_never_reads_nor_checks_the_graph(with_slots, monkeypatch):
    directory, ids, data, read_vectors, asked = with_slots
    query = clustered(1, seed=5, noise=0.3)[0]
    expected = VectorStore(directory, "m@1", DIM).search(query, 10, method="exact")
    graph = next(directory.glob("*.hnsw"))
    checked: list[Path] = []
    verify = store_module.graph_integrity.verify
    monkeypatch.setattr(
        store_module.graph_integrity, "verify", lambda p, r: checked.append(p) or verify(p, r)
    )
    _damage(graph)  # never read: the search cannot be wrong because of it
    one_shot = _one_shot(directory, read_vectors)
    assert one_shot.search(query, 10) == expected  # the same float32 scores
    assert asked and graph not in checked and not one_shot.graph_loaded
    assert one_shot.get_vectors([expected[0][0]]) == pytest.approx(data[ids == expected[0][0]])
    assert one_shot.load_problem is None
    resident = VectorStore(directory, "m@1", DIM)  # the app verifies before reading it
    assert resident.load_problem is not None and len(resident) == 0


def test_a_one_shot_store_leaves_out_a_vector_whose_slot_is_damaged(with_slots):
    directory, ids, data, read_vectors, _ = with_slots
    query = data[10]
    best = VectorStore(directory, "m@1", DIM).search(query, 5, method="exact")
    assert best[0][0] == int(ids[10])
    slots = directory / "m@1.slots"
    row_bytes = 4 + 2 * DIM
    _damage(slots, at=64 + 10 * row_bytes)  # photo ids[10]'s own slot
    hits = _one_shot(directory, read_vectors).search(query, 5)
    assert int(ids[10]) not in {pid for pid, _ in hits}  # never scored with a wrong vector
    assert hits == best[1:] + hits[4:]  # the others keep their float32 scores
    with pytest.raises(RuntimeError):
        _one_shot(directory, read_vectors).get_vectors([int(ids[10])])


def test_a_one_shot_store_with_a_damaged_matrix_checks_the_graph_and_searches_it(with_slots):
    directory, ids, data, read_vectors, _ = with_slots
    query = data[3]
    _damage(next(directory.glob("*.f16.npy")))
    one_shot = _one_shot(directory, read_vectors)
    hits = one_shot.search(query, 10)  # the scan found the damage before returning anything
    assert hits[0][0] == int(ids[3]) and one_shot.graph_loaded
    assert not one_shot.has_matrix()


def test_a_one_shot_store_with_matrix_and_graph_damaged_says_so(with_slots):
    directory, _, data, read_vectors, _ = with_slots
    _damage(next(directory.glob("*.f16.npy")))
    _damage(next(directory.glob("*.hnsw")))
    one_shot = _one_shot(directory, read_vectors)
    with pytest.raises(store_module.SavedGraphDamaged, match="photosearch index"):
        one_shot.search(data[3], 10)
    assert len(one_shot) == 0 and one_shot.catalog_position is None  # refilled by its owner


def test_a_cli_search_with_a_damaged_graph_answers_from_the_catalog_vectors(
    tmp_path: Path, indexed_cli: list[str], monkeypatch: pytest.MonkeyPatch, capsys, caplog
):
    """Through the library: the graph is damaged, the search is still right (and the graph
    is not read); with changes since the save the damage is found and the store refilled
    from the catalog, as a damaged load always was."""
    from photosearch.cli.main import main

    common = indexed_cli
    monkeypatch.setattr(store_module, "EXACT_LIBRARY_ROWS", 1)
    search = [*common, "search", "something crimson", "-k", "5", "--all-copies", "--json"]
    capsys.readouterr()
    assert main(search) == 0
    before = capsys.readouterr().out
    _damage(next((tmp_path / "lib" / "vectors").glob("*.hnsw")))
    assert main(search) == 0
    assert capsys.readouterr().out == before
    assert "unreadable" not in caplog.text  # not even checked
    # a photo changed since the save: the one-shot catch-up needs the graph, checks it,
    # finds the damage and compares every id with the catalog instead
    with sqlite3.connect(tmp_path / "lib" / "catalog.sqlite") as connection:
        connection.execute("UPDATE photos SET missing_since = NULL")  # logs every photo
    reads: list[Path] = []
    read_graph = VectorStore._read_graph
    monkeypatch.setattr(
        VectorStore,
        "_read_graph",
        lambda self, graph: reads.append(graph) or read_graph(self, graph),
    )
    assert main(search) == 0
    assert capsys.readouterr().out == before
    assert reads == []  # the damaged file was never handed to hnswlib
    assert "does not match its checksum" in caplog.text  # found, then refilled
