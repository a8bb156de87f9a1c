"""Exact search over the float16 matrix saved beside each graph (photosearch.vectors.vector_file):
the
same answers as float32 exact search, kept right across changes made after the save, filters,
and a damaged file that costs nothing but speed. Real hnswlib, real files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from photosearch.vectors import store as vectors_module
from photosearch.vectors import vector_file
from photosearch.vectors.store import VectorStore
from tests.test_vectors import clustered, exact_top

DIM = 64


@pytest.fixture
def saved(tmp_path: Path) -> tuple[Path, np.ndarray, np.ndarray]:
    data = clustered(3000, noise=0.3)
    ids = np.arange(1, 3001, dtype=np.int64) * 7
    store = VectorStore(tmp_path, "m@1", DIM)
    store.add(ids.tolist(), data)
    store.save()
    return tmp_path, ids, data


def overlap(found: list[tuple[int, float]], expected: list[int]) -> float:
    return len({pid for pid, _ in found} & set(expected)) / len(expected)


def test_exact_search_over_the_matrix_matches_float32_exact_search(saved):
    directory, ids, data = saved
    store = VectorStore(directory, "m@1", DIM)
    assert store.has_matrix()
    queries = clustered(20, seed=9, noise=0.3)
    for k in (10, 1000):
        recalls = [
            overlap(store.search(q, k, method="exact"), exact_top(data, ids, q, k)) for q in queries
        ]
        assert np.mean(recalls) >= 0.998, (k, np.mean(recalls))
        hits = store.search(queries[0], k, method="exact")
        scores = [score for _, score in hits]
        assert scores == sorted(scores, reverse=True) and len(hits) == k
        truth = data @ queries[0]
        by_id = dict(zip(ids.tolist(), truth.tolist(), strict=True))
        assert max(abs(by_id[pid] - score) for pid, score in hits) < 2e-3  # float16 scores


def test_changes_after_the_save_are_searched_exactly(saved):
    directory, ids, data = saved
    store = VectorStore(directory, "m@1", DIM)
    query = data[0]
    store.remove([int(ids[0])])  # the best match, gone since the matrix was written
    fresh = clustered(1, seed=11)[0]
    store.add([99_999], query[None] * 0.0 + fresh[None])
    store.add([int(ids[1])], query[None])  # replaced by the query itself: now the best
    hits = store.search(query, 10, method="exact")
    assert hits[0][0] == int(ids[1]) and abs(hits[0][1] - 1.0) < 1e-5
    assert int(ids[0]) not in {pid for pid, _ in store.search(query, 3000, method="exact")}
    assert 99_999 in {pid for pid, _ in store.search(fresh, 1, method="exact")}


def test_filtered_search_uses_the_matrix_and_stays_inside_the_filter(saved):
    directory, ids, data = saved
    store = VectorStore(directory, "m@1", DIM)
    allowed = set(ids[::3].tolist())  # 1,000 ids: past the one-by-one lookup
    query = data[5]
    hits = store.search(query, 50, allowed)
    assert {pid for pid, _ in hits} <= allowed and len(hits) == 50
    keep = np.isin(ids, list(allowed))
    assert overlap(hits, exact_top(data[keep], ids[keep], query, 50)) >= 0.98


def test_a_damaged_matrix_falls_back_to_the_graph_and_is_rewritten(saved):
    directory, ids, data = saved
    matrix = next(directory.glob("*.f16.npy"))
    with matrix.open("r+b") as handle:
        handle.seek(matrix.stat().st_size // 2)
        handle.write(b"\xff" * 64)
    store = VectorStore(directory, "m@1", DIM)
    assert not store.has_matrix() and store.dirty  # checksum caught it
    hits = store.search(data[3], 10, method="exact")  # answered by the graph instead
    assert hits[0][0] == int(ids[3])
    store.save()
    assert VectorStore(directory, "m@1", DIM).has_matrix()
    assert not matrix.exists()  # the old generation's files are gone


def test_small_libraries_and_large_k_are_searched_exactly(saved, monkeypatch):
    directory, ids, data = saved
    store = VectorStore(directory, "m@1", DIM)
    calls = []
    original = store._exact_from_matrix
    monkeypatch.setattr(store, "_exact_from_matrix", lambda *a: calls.append(a[1]) or original(*a))
    store.search(data[0], 10)
    assert calls == [10]  # 3,000 vectors: below EXACT_LIBRARY_ROWS
    monkeypatch.setattr(vectors_module, "EXACT_LIBRARY_ROWS", 1000)
    store.search(data[0], 10)
    assert calls == [10]  # the graph
    store.search(data[0], vectors_module.EXACT_K_FROM)
    assert calls == [10, vectors_module.EXACT_K_FROM]


def test_held_names_the_live_ids_with_the_matrix_and_with_the_graph(saved):
    directory, ids, data = saved
    wanted = [int(ids[0]), 5, int(ids[2]), int(ids[1])]  # 5: never added
    one_shot = VectorStore(directory, "m@1", DIM, one_shot=True)
    assert one_shot.held(wanted) == [int(ids[0]), int(ids[2]), int(ids[1])]
    assert not one_shot.graph_loaded  # a lookup in the matrix's ids
    resident = VectorStore(directory, "m@1", DIM)
    resident.remove([int(ids[2])])
    assert resident.graph_loaded
    assert resident.held(wanted) == [int(ids[0]), int(ids[1])]
    assert resident.held(ids.tolist()) == [i for i in ids.tolist() if i != int(ids[2])]


def resident_matrix_kb(directory: Path) -> int:
    """Resident kB of this process's mappings of the float16 matrix files in ``directory``."""
    total, name = 0, ""
    with open("/proc/self/smaps", encoding="utf-8", errors="replace") as smaps:
        for line in smaps:
            first = line.split(maxsplit=1)[0]
            if "-" in first and not first.endswith(":"):
                parts = line.split(maxsplit=5)
                name = parts[5].strip() if len(parts) > 5 else ""
            elif first == "Rss:" and name.startswith(str(directory)) and name.endswith(".f16.npy"):
                total += int(line.split()[1])
    return total


@pytest.mark.skipif(not Path("/proc/self/smaps").exists(), reason="reads Linux's /proc/self/smaps")
def test_a_store_the_graph_answers_keeps_no_matrix_pages_after_a_large_k_search(saved, monkeypatch):
    """Beyond EXACT_LIBRARY_ROWS (1M photos in the app) a k=1000 search scans the matrix but
    leaves none of it resident; below, the pages stay for the next search (released when idle).
    Several scan chunks, so pages are given back as the scan goes."""
    directory, ids, data = saved
    monkeypatch.setattr(vector_file, "ROWS_PER_SCAN_CHUNK", 256)
    small = VectorStore(directory, "m@1", DIM)
    kept = small.search(data[0], 1000)
    assert resident_matrix_kb(directory) > 300  # 3,000 x 64 float16 rows: 375 kB, kept
    small.release_memory()
    assert resident_matrix_kb(directory) == 0
    monkeypatch.setattr(vectors_module, "EXACT_LIBRARY_ROWS", 1000)
    large = VectorStore(directory, "m@1", DIM)
    large.load_graph_if_searched()
    assert large.graph_loaded
    given_back = large.search(data[0], 1000)
    assert resident_matrix_kb(directory) == 0
    assert given_back == kept  # the same answer, scanned chunk by chunk
    filtered = large.search(data[0], 300, allowed=set(ids[::2].tolist()))
    assert resident_matrix_kb(directory) == 0 and len(filtered) == 300


def test_a_matrix_first_store_answers_every_k_from_the_matrix_and_gives_its_graph_back(
    saved, monkeypatch
):
    """The desktop app's stores (matrix_first): beyond EXACT_LIBRARY_ROWS a small-k search
    scans the matrix instead of loading the graph; a change loads the graph, and once saved an
    idle store hands it back."""
    directory, ids, data = saved
    monkeypatch.setattr(vectors_module, "EXACT_LIBRARY_ROWS", 1000)
    plain = VectorStore(directory, "m@1", DIM)
    plain.search(data[0], 10)
    assert plain.graph_loaded  # the graph answers small k beyond EXACT_LIBRARY_ROWS
    store = VectorStore(directory, "m@1", DIM)
    store.matrix_first = True
    store.load_graph_if_searched()
    hits = store.search(data[0], 10)
    assert not store.graph_loaded
    assert [pid for pid, _ in hits] == exact_top(data, ids, data[0], 10)
    store.add([99_999], data[1][None])
    assert store.graph_loaded
    store.save()
    store.release_memory()
    assert not store.graph_loaded
    assert store.search(data[1], 2)[0][0] in (99_999, int(ids[1]))
    assert not store.graph_loaded
