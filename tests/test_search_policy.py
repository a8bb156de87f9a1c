"""Which search runs when (photosearch.vectors.store): a store whose searches the float16
matrix answers leaves its graph on disk (memory: issue 18 item 6) and gives the same answers,
float32 scores included; the graph is read the moment it is needed (a change, a large library).
Real hnswlib, real files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from photosearch.vectors import store as store_module
from photosearch.vectors.store import VectorStore
from tests.test_vectors import clustered, exact_top

DIM = 64


@pytest.fixture
def saved(tmp_path: Path) -> tuple[Path, np.ndarray, np.ndarray]:
    data = clustered(2000, noise=0.3)
    ids = np.arange(1, 2001, dtype=np.int64) * 3
    store = VectorStore(tmp_path, "m@1", DIM)
    store.add(ids.tolist(), data)
    store.save()
    return tmp_path, ids, data


def test_searches_answered_by_the_matrix_leave_the_graph_on_disk(saved):
    directory, ids, data = saved
    store = VectorStore(directory, "m@1", DIM)
    loaded = VectorStore(directory, "m@1", DIM)
    loaded.load_graph_if_searched()
    assert not loaded.graph_loaded  # 2,000 photos: the matrix answers every search
    query = clustered(1, seed=5, noise=0.3)[0]
    for k in (1, 10, 50, 1000):
        hits = store.search(query, k)
        assert [pid for pid, _ in hits[:10]] == exact_top(data, ids, query, k)[:10]
    assert len(store) == len(ids) and store.live_ids() == set(ids.tolist())
    assert np.array_equal(store.get_vectors([int(ids[5]), int(ids[0])]), data[[5, 0]])
    assert not store.graph_loaded
    graph = VectorStore(directory, "m@1", DIM)
    graph.search(query, 1, method="graph")  # reads the graph: the reference answers
    assert graph.graph_loaded
    assert store.search(query, 10) == graph.search(query, 10, method="exact")
    with pytest.raises(RuntimeError):
        store.get_vectors([1])  # not a photo of this store


def test_a_change_reads_the_graph_and_is_searched(saved):
    directory, ids, data = saved
    store = VectorStore(directory, "m@1", DIM)
    query = data[7]
    store.add([99_999], query[None])
    assert store.graph_loaded
    assert store.search(query, 1)[0][0] == 99_999
    assert len(store) == len(ids) + 1


def test_vectors_are_read_from_a_graph_file_that_holds_deleted_entries(saved):
    directory, ids, data = saved
    store = VectorStore(directory, "m@1", DIM)
    gone = [int(ids[0]), int(ids[1000]), int(ids[-1])]
    store.remove(gone)
    store.save()
    reopened = VectorStore(directory, "m@1", DIM)
    keep = np.ones(len(ids), bool)
    keep[[0, 1000, len(ids) - 1]] = False
    picked = [int(ids[2]), int(ids[1001]), int(ids[-2])]
    assert np.array_equal(reopened.get_vectors(picked), data[[2, 1001, len(ids) - 2]])
    assert reopened.live_ids() == set(ids[keep].tolist())
    query = data[1000]  # its own photo is gone: the best left are its neighbours
    hits = reopened.search(query, 10)
    assert [pid for pid, _ in hits] == exact_top(data[keep], ids[keep], query, 10)
    assert not reopened.graph_loaded
    with pytest.raises(RuntimeError):
        reopened.get_vectors([gone[0]])


def test_a_library_above_the_exact_size_loads_its_graph_for_small_k(saved, monkeypatch):
    directory, ids, data = saved
    monkeypatch.setattr(store_module, "EXACT_LIBRARY_ROWS", 1000)
    store = VectorStore(directory, "m@1", DIM)
    store.search(data[0], store_module.EXACT_K_FROM)  # large k: still the matrix
    assert not store.graph_loaded
    store.search(data[0], 10)
    assert store.graph_loaded
    ahead = VectorStore(directory, "m@1", DIM)
    ahead.load_graph_if_searched()  # what the app does in the background at start
    assert ahead.graph_loaded


def test_a_damaged_matrix_reads_the_graph_instead(saved):
    directory, ids, data = saved
    matrix = next(directory.glob("*.f16.npy"))
    raw = bytearray(matrix.read_bytes())
    raw[-10] ^= 0xFF
    matrix.write_bytes(bytes(raw))
    store = VectorStore(directory, "m@1", DIM)
    assert [pid for pid, _ in store.search(data[3], 5)] == exact_top(data, ids, data[3], 5)
    assert store.graph_loaded and store.dirty


def _resident_kb(path: Path) -> int:
    """Resident KB of this process's mappings of ``path`` (Linux /proc/self/smaps)."""
    total, current = 0, ""
    with open("/proc/self/smaps", encoding="utf-8", errors="replace") as smaps:
        for line in smaps:
            first = line.split(maxsplit=1)[0]
            if "-" in first and not first.endswith(":"):
                parts = line.split(maxsplit=5)
                current = parts[5].strip() if len(parts) > 5 else ""
            elif first == "Rss:" and current == str(path):
                total += int(line.split()[1])
    return total


@pytest.mark.skipif(not Path("/proc/self/smaps").exists(), reason="needs Linux /proc")
def test_an_idle_store_gives_back_the_graph_and_the_matrix_pages(saved):
    directory, ids, data = saved
    store = VectorStore(directory, "m@1", DIM)
    store.add([99_999], data[4][None])
    store.save()
    assert store.graph_loaded
    store.search(data[4], 1000)
    matrix = (directory / next(directory.glob("*.f16.npy")).name).resolve()
    assert _resident_kb(matrix) > 100  # 2,001 x 64 float16 rows were read
    store.release_memory()
    assert not store.graph_loaded and _resident_kb(matrix) == 0
    assert [pid for pid, _ in store.search(data[4], 2)] in (
        [99_999, int(ids[4])],
        [int(ids[4]), 99_999],
    )
    store.add([100_000], data[5][None])  # unsaved: the graph is kept from now on
    store.release_memory()
    assert store.graph_loaded


def test_an_idle_library_closes_its_image_session_and_still_searches(library, photo_dir):
    from photosearch.search.query import SearchQuery

    library.add_folder(photo_dir)
    library.index()
    assert library.encoder._visual is not None
    library.models.release_idle_memory()
    assert library.encoder._visual is None and not library.store.graph_loaded
    assert library.search(SearchQuery(text="red", k=3))
    library.index()  # nothing new: the image session stays closed
    assert library.encoder._visual is None
