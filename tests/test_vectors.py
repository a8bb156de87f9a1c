"""The HNSW vector store: recall against exact search, atomic saves, deletes, sync, filters."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import photosearch.vectors.store as vectors_module
from photosearch.errors import ModelMismatch
from photosearch.vectors.store import VectorStore

DIM = 64


def _unit(array: np.ndarray) -> np.ndarray:
    return (array / np.linalg.norm(array, axis=1, keepdims=True)).astype(np.float32)


def clustered(
    count: int, dim: int = DIM, centres: int = 50, seed: int = 0, noise: float = 0.12
) -> np.ndarray:
    """Unit vectors around fixed centres (the same for every seed), like photo embeddings:
    a point's nearest neighbours have cosine ~0.7, as CLIP-style image vectors do."""
    centre = _unit(np.random.default_rng(12345).standard_normal((centres, dim)))
    rng = np.random.default_rng(seed)
    owner = rng.integers(0, centres, count)
    return _unit(centre[owner] + noise * rng.standard_normal((count, dim)))


def exact_top(data: np.ndarray, ids: np.ndarray, query: np.ndarray, k: int) -> list[int]:
    scores = data @ query
    return [int(ids[i]) for i in np.argsort(-scores, kind="stable")[:k]]


def fetcher(ids: np.ndarray, data: np.ndarray):
    table = {int(i): v for i, v in zip(ids, data, strict=True)}

    def fetch(wanted: list[int]) -> tuple[np.ndarray, np.ndarray]:
        have = [i for i in wanted if i in table]
        return (
            np.asarray(have, dtype=np.int64),
            np.asarray([table[i] for i in have], dtype=np.float32).reshape(-1, data.shape[1]),
        )

    return fetch


@pytest.fixture(scope="module")
def big() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    data = clustered(5000)
    ids = np.arange(1, 5001, dtype=np.int64) * 3  # labels are photo ids, not positions
    queries = clustered(200, seed=7)
    return ids, data, queries


@pytest.fixture(scope="module")
def big_store(tmp_path_factory, big) -> VectorStore:
    ids, data, _ = big
    store = VectorStore(tmp_path_factory.mktemp("vectors"), "test@1", DIM)
    store.add(ids.tolist(), data)  # 5,000 > the initial capacity of 1,024: resizes
    return store


def test_recall_at_10_against_exact_search(big, big_store):
    ids, data, queries = big
    hits = 0
    for query in queries:
        expected = set(exact_top(data, ids, query, 10))
        got = {pid for pid, _ in big_store.search(query, 10)}
        hits += len(expected & got)
    recall = hits / (10 * len(queries))
    assert recall >= 0.99, recall


def test_scores_are_cosine_similarities(big, big_store):
    ids, data, queries = big
    (pid, score), *_ = big_store.search(queries[0], 1)
    index = int(np.where(ids == pid)[0][0])
    assert score == pytest.approx(float(data[index] @ queries[0]), abs=1e-4)


def test_filtered_search_small_set_is_exact(big, big_store):
    ids, data, queries = big
    allowed_positions = np.arange(0, 5000, 37)  # 136 ids: exact path
    allowed = {int(ids[i]) for i in allowed_positions}
    got = [pid for pid, _ in big_store.search(queries[1], 10, allowed)]
    assert got == exact_top(data[allowed_positions], ids[allowed_positions], queries[1], 10)


def test_filtered_search_large_set(big, big_store, monkeypatch: pytest.MonkeyPatch):
    ids, data, queries = big
    positions = np.arange(0, 5000, 2)  # 2,500 ids
    allowed = {int(ids[i]) for i in positions}
    monkeypatch.setattr(vectors_module, "EXACT_SEARCH_BELOW", 100)  # force the HNSW filter
    hits = 0
    for query in queries[:50]:
        got = [pid for pid, _ in big_store.search(query, 10, allowed)]
        assert set(got) <= allowed and len(got) == 10
        hits += len(set(got) & set(exact_top(data[positions], ids[positions], query, 10)))
    assert hits / 500 >= 0.97


def test_filter_excluding_everything_and_unknown_ids(big, big_store):
    _, _, queries = big
    assert big_store.search(queries[0], 10, set()) == []
    assert big_store.search(queries[0], 10, {999_999}) == []
    assert big_store.search(queries[0], 0) == []


def test_wrong_dimension_is_a_model_mismatch(big_store):
    with pytest.raises(ModelMismatch):
        big_store.search(np.ones(DIM + 1, dtype=np.float32), 5)
    with pytest.raises(ModelMismatch):
        big_store.add([1], np.ones((1, 3), dtype=np.float32))


def _small_store(directory: Path, count: int = 300, seed: int = 3):
    data = clustered(count, centres=10, seed=seed)
    ids = np.arange(1, count + 1, dtype=np.int64)
    store = VectorStore(directory, "model@abc", DIM)
    store.add(ids.tolist(), data)
    return store, ids, data


def test_save_and_reload_keep_results(tmp_path: Path):
    store, ids, data = _small_store(tmp_path)
    query = data[5]
    before = store.search(query, 10)
    store.remove([int(ids[0])])
    store.save()
    assert not store.dirty
    again = VectorStore(tmp_path, "model@abc", DIM)
    assert again.live_ids() == set(ids.tolist()) - {int(ids[0])}
    assert [p for p, _ in again.search(query, 10)] == [p for p, _ in store.search(query, 10)]
    assert before[0][0] == 6
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == [
        "model@abc.1.f16.npy",
        "model@abc.1.hnsw",
        "model@abc.1.ids.npy",
        "model@abc.json",
    ]
    store.mark_dirty()
    store.save()  # nothing changed: the commit point is written again, the files kept
    assert sorted(p.name for p in tmp_path.iterdir()) == files
    store.remove([int(ids[1])])
    store.save()  # a second generation replaces the first
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "model@abc.2.f16.npy",
        "model@abc.2.hnsw",
        "model@abc.2.ids.npy",
        "model@abc.json",
    ]
    assert store.size_on_disk() > 0


def test_other_models_store_is_not_loaded(tmp_path: Path):
    store, _, _ = _small_store(tmp_path)
    store.save()
    (tmp_path / "model@abc.json").rename(tmp_path / "model@xyz.json")
    other = VectorStore(tmp_path, "model@xyz", DIM)
    assert len(other) == 0  # the JSON names another identity: not trusted


def test_delete_then_search_excludes(tmp_path: Path):
    store, ids, data = _small_store(tmp_path)
    target = int(ids[42])
    assert store.search(data[42], 1)[0][0] == target
    assert store.remove([target, 10_000]) == 1
    assert store.remove([target]) == 0
    assert target not in {p for p, _ in store.search(data[42], 50)}
    assert target not in {p for p, _ in store.search(data[42], 5, {target, int(ids[1])})}
    assert len(store) == len(ids) - 1
    store.add([target], data[42][None])  # re-adding a deleted id brings it back
    assert store.search(data[42], 1)[0][0] == target


def test_sync_repairs_a_stale_saved_store(tmp_path: Path):
    store, ids, data = _small_store(tmp_path, count=200)
    store.save()
    more = clustered(50, centres=10, seed=9)
    all_ids = np.concatenate([ids, np.arange(201, 251)])
    all_data = np.concatenate([data, more])
    catalog_ids = set(all_ids.tolist()) - {1, 2, 3}  # later added 50, deleted 3
    stale = VectorStore(tmp_path, "model@abc", DIM)
    report = stale.sync(catalog_ids, fetcher(all_ids, all_data))
    assert (report.added, report.removed, report.rebuilt) == (50, 3, False)
    assert stale.live_ids() == catalog_ids
    assert stale.search(more[7], 1)[0][0] == 208
    assert stale.sync(catalog_ids, fetcher(all_ids, all_data)) == type(report)(0, 0, False)


def test_sync_rebuilds_when_many_are_deleted(tmp_path: Path):
    store, ids, data = _small_store(tmp_path, count=100)
    keep = set(range(1, 41))
    report = store.sync(keep, fetcher(ids, data))
    assert report.rebuilt and report.removed == 60
    assert store.live_ids() == keep
    assert store._index.get_current_count() == 40  # deleted entries really gone


def test_damaged_graph_file_is_rebuilt_by_sync(tmp_path: Path):
    store, ids, data = _small_store(tmp_path)
    store.save()
    graph = tmp_path / "model@abc.1.hnsw"
    graph.write_bytes(graph.read_bytes()[:1000])
    damaged = VectorStore(tmp_path, "model@abc", DIM)
    assert len(damaged) == 0
    report = damaged.sync(set(ids.tolist()), fetcher(ids, data))
    assert report.added == len(ids)
    assert damaged.search(data[9], 1)[0][0] == 10
    damaged.save()
    assert len(VectorStore(tmp_path, "model@abc", DIM)) == len(ids)


def test_damaged_json_is_rebuilt_by_sync(tmp_path: Path):
    store, ids, data = _small_store(tmp_path)
    store.save()
    (tmp_path / "model@abc.json").write_text("{not json")
    damaged = VectorStore(tmp_path, "model@abc", DIM)
    damaged.sync(set(ids.tolist()), fetcher(ids, data))
    assert damaged.live_ids() == set(ids.tolist())


def test_resize_beyond_initial_capacity(tmp_path: Path):
    store = VectorStore(tmp_path, "model@abc", 8)
    rng = np.random.default_rng(0)
    for start in range(0, 3000, 500):
        store.add(range(start, start + 500), _unit(rng.standard_normal((500, 8))))
    assert len(store) == 3000
    assert store._index.get_max_elements() >= 3000
    probe = _unit(rng.standard_normal((1, 8)))
    store.add([2999], probe)  # replace an existing vector
    assert store.search(probe[0], 1)[0][0] == 2999
    assert len(store) == 3000


def test_empty_store(tmp_path: Path):
    store = VectorStore(tmp_path, "model@abc", 8)
    assert len(store) == 0 and store.live_ids() == set()
    assert store.search(np.ones(8, dtype=np.float32), 5) == []
    assert store.get_vectors([]).shape == (0, 8)
    assert store.size_on_disk() == 0
