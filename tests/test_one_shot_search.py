"""A process that runs one vector search (`photosearch search` with nothing running) opens
its vector store one-shot: the float16 matrix answers at any library size, so
the graph is never read into memory for it. Real hnswlib, real files, a real CLI run."""

from __future__ import annotations

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


def test_a_cli_search_opens_its_store_one_shot(
    tmp_path: Path, photo_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys
):
    from photosearch.cli.main import main
    from photosearch.library.facade import Library
    from photosearch.search.query import SearchQuery
    from tests.support.tiny_bundle import build_tiny_bundle

    monkeypatch.setenv("PHOTOSEARCH_NO_SERVICE", "1")
    build_tiny_bundle(tmp_path / "models" / "tiny")
    common = ["--library", str(tmp_path / "lib"), "--models-dir", str(tmp_path / "models")]
    common += ["--model", "tiny"]
    assert main([*common, "folders", "add", str(photo_dir)]) == 0
    assert main([*common, "index"]) == 0
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
