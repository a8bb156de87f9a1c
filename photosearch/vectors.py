"""The vector store: one hnswlib graph per model, saved atomically beside the catalog.

Labels are photo ids. Vectors are unit length and the space is inner product, so a score is the
cosine similarity. The graph is a cache of what the catalog holds: ``sync`` repairs any
disagreement (a crash between a catalog commit and a save) from the vectors stored in SQLite.

Files, for a model identity ``X``: ``X.json`` (the commit point: generation, settings, deleted
labels, and a checksum of the graph file) and ``X.<generation>.hnsw``. A save writes the new graph
file, fsyncs it, checks hnswlib wrote all of it, then replaces the JSON atomically; a crash or a
full disk at any moment leaves the previous generation intact. A load verifies the checksum
before hnswlib reads the file (see graph_integrity), so a damaged graph is rebuilt from the
catalog instead of crashing or answering wrongly.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from photosearch import graph_integrity
from photosearch.atomic_write import write_atomically
from photosearch.errors import ModelMismatch

log = logging.getLogger(__name__)

# Chosen by measurement (benchmarks/bench_vectors.py --source coco --n 20000: real MiniLM
# embeddings of 20k COCO captions): recall@10 vs exact search 0.992 at ef=64, 0.996 at ef=128
# (0.39 ms/query). ef=128 keeps a margin above the 0.99 target for a few tenths of a millisecond.
HNSW_M = 16
HNSW_EF_CONSTRUCTION = 200
HNSW_EF_SEARCH = 128
EXACT_SEARCH_BELOW = 4096  # filtered searches over fewer allowed ids are done exactly
REBUILD_DELETED_FRACTION = 0.25


@dataclass(frozen=True)
class SyncReport:
    added: int
    removed: int
    rebuilt: bool


def store_stem(identity: str) -> str:
    """The file-name stem of an identity's store files (``<stem>.json``, ``<stem>.<n>.hnsw``)."""
    return "".join(ch if ch.isalnum() or ch in "-_.@" else "_" for ch in identity)


class VectorStore:
    """An HNSW graph of one model's photo vectors. Thread-safe for concurrent search + add."""

    def __init__(self, directory: Path, identity: str, dim: int) -> None:
        self.directory = directory
        self.identity = identity
        self.dim = dim
        self.stem = store_stem(identity)
        self._lock = threading.RLock()
        self._index = self._new_index(1024)
        self._deleted: set[int] = set()
        self._generation = 0
        self._dirty = False
        self.load_problem: str | None = None  # why the saved graph was not used, if it was not
        self._load()

    # --- reading -------------------------------------------------------------------------

    @property
    def meta_path(self) -> Path:
        return self.directory / f"{self.stem}.json"

    def graph_path(self, generation: int) -> Path:
        return self.directory / f"{self.stem}.{generation}.hnsw"

    def live_ids(self) -> set[int]:
        with self._lock:
            return set(self._index.get_ids_list()) - self._deleted

    def __len__(self) -> int:
        with self._lock:
            return self._index.get_current_count() - len(self._deleted)

    @property
    def dirty(self) -> bool:
        return self._dirty

    def size_on_disk(self) -> int:
        path = self.graph_path(self._generation)
        return path.stat().st_size if self._generation and path.exists() else 0

    def search(
        self, query: np.ndarray, k: int, allowed: set[int] | None = None
    ) -> list[tuple[int, float]]:
        """Top ``k`` (photo id, cosine score) for a unit query, best first.

        ``allowed`` restricts results to those ids (filters); small sets are searched exactly.
        """
        query = np.asarray(query, dtype=np.float32).reshape(1, -1)
        if query.shape[1] != self.dim:
            raise ModelMismatch(f"query has {query.shape[1]} dimensions, the index {self.dim}")
        with self._lock:
            live = len(self)
            if live == 0 or k <= 0:
                return []
            if allowed is not None:
                allowed = allowed & self.live_ids()
                if not allowed:
                    return []
                if len(allowed) <= EXACT_SEARCH_BELOW:
                    return self._exact(query[0], sorted(allowed), k)
            k = min(k, live if allowed is None else len(allowed))
            self._index.set_ef(max(HNSW_EF_SEARCH, k))
            accept = None if allowed is None else allowed.__contains__
            try:
                labels, distances = self._index.knn_query(query, k=k, filter=accept)
            except RuntimeError:  # fewer reachable results than k: fall back to exact
                ids = sorted(allowed) if allowed is not None else sorted(self.live_ids())
                return self._exact(query[0], ids, k)
        pairs = zip(labels[0], distances[0], strict=True)
        return [(int(label), float(1.0 - distance)) for label, distance in pairs]

    def get_vectors(self, ids: list[int]) -> np.ndarray:
        with self._lock:
            if not ids:
                return np.zeros((0, self.dim), dtype=np.float32)
            return np.asarray(self._index.get_items(ids), dtype=np.float32)

    # --- writing -------------------------------------------------------------------------

    def add(self, ids: Iterable[int], vectors: np.ndarray) -> None:
        """Insert or replace vectors for the given photo ids."""
        labels = np.asarray(list(ids), dtype=np.int64)
        if len(labels) == 0:
            return
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.shape != (len(labels), self.dim):
            raise ModelMismatch(f"vectors of shape {vectors.shape} for a {self.dim}-d index")
        with self._lock:
            needed = self._index.get_current_count() + len(labels)
            if needed > self._index.get_max_elements():
                self._index.resize_index(max(needed, self._index.get_max_elements() * 2))
            for label in labels:
                if int(label) in self._deleted:
                    self._index.unmark_deleted(int(label))
                    self._deleted.discard(int(label))
            self._index.add_items(vectors, labels, num_threads=1)
            self._dirty = True

    def remove(self, ids: Iterable[int]) -> int:
        """Mark photo ids deleted; returns how many were live."""
        removed = 0
        with self._lock:
            present = set(self._index.get_ids_list())
            for label in ids:
                label = int(label)
                if label in present and label not in self._deleted:
                    self._index.mark_deleted(label)
                    self._deleted.add(label)
                    removed += 1
            self._dirty = self._dirty or removed > 0
        return removed

    def rebuild(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Replace the whole graph with these vectors (drops deleted entries for good)."""
        with self._lock:
            self._index = self._new_index(max(1024, len(ids) * 2))
            self._deleted = set()
            if len(ids):
                self._index.add_items(
                    np.asarray(vectors, dtype=np.float32), np.asarray(ids, dtype=np.int64)
                )
            self._dirty = True

    def sync(
        self,
        catalog_ids: set[int],
        fetch: Callable[[list[int]], tuple[np.ndarray, np.ndarray]],
    ) -> SyncReport:
        """Make the graph hold exactly ``catalog_ids``, fetching missing vectors from the catalog.

        ``fetch(ids)`` returns (ids, vectors) for the ids it has. Rebuilds from scratch when many
        entries are deleted, since hnswlib never reclaims them otherwise.
        """
        with self._lock:
            live = self.live_ids()
            missing = sorted(catalog_ids - live)
            extra = live - catalog_ids
            total = self._index.get_current_count()
            deleted_after = len(self._deleted) + len(extra)
            if total and deleted_after / total > REBUILD_DELETED_FRACTION:
                ids, vectors = fetch(sorted(catalog_ids))
                self.rebuild(ids, vectors)
                return SyncReport(len(missing), len(extra), True)
            if extra:
                self.remove(extra)
            if missing:
                ids, vectors = fetch(missing)
                self.add(ids.tolist(), vectors)
            return SyncReport(len(missing), len(extra), False)

    def save(self) -> None:
        """Write a new generation atomically; the previous one is removed only afterwards."""
        with self._lock:
            self.directory.mkdir(parents=True, exist_ok=True)
            generation = self._generation + 1
            graph = self.graph_path(generation)
            temporary = graph.with_suffix(".hnsw.tmp")
            try:
                # Created here first so that a read-only or full directory raises its own error
                # (hnswlib's writer fails silently and leaves no file behind).
                with temporary.open("wb"):
                    pass
                self._index.save_index(str(temporary))
                _fsync_file(temporary)
                _check_complete(temporary)
                os.replace(temporary, graph)
                meta = {
                    "identity": self.identity,
                    "dim": self.dim,
                    "generation": generation,
                    "M": HNSW_M,
                    "ef_construction": HNSW_EF_CONSTRUCTION,
                    "deleted": sorted(self._deleted),
                    "checksum": graph_integrity.checksum(graph),
                }
                _write_json_atomically(self.meta_path, meta)
            except BaseException:
                temporary.unlink(missing_ok=True)
                if self._generation != generation:
                    graph.unlink(missing_ok=True)
                raise
            _fsync_dir(self.directory)
            old = self.graph_path(self._generation)
            self._generation = generation
            if old != graph:
                old.unlink(missing_ok=True)
            self._dirty = False

    # --- internals -----------------------------------------------------------------------

    def _new_index(self, capacity: int):  # noqa: ANN202 - hnswlib has no type stubs
        import hnswlib

        index = hnswlib.Index(space="ip", dim=self.dim)
        index.init_index(
            max_elements=capacity, ef_construction=HNSW_EF_CONSTRUCTION, M=HNSW_M,
            random_seed=100, allow_replace_deleted=False,
        )
        index.set_ef(HNSW_EF_SEARCH)
        return index

    def _load(self) -> None:
        """Load the last saved generation; an unreadable, unverified or foreign one leaves an
        empty graph (``sync`` then refills it from the catalog)."""
        if not self.meta_path.exists():
            return
        try:
            meta = json.loads(self.meta_path.read_text(encoding="utf-8"))
            if meta.get("identity") != self.identity or int(meta.get("dim", -1)) != self.dim:
                log.warning("vector store %s belongs to another model; rebuilding", self.meta_path)
                return
            generation = int(meta["generation"])
            graph = self.graph_path(generation)
            if "checksum" in meta:
                graph_integrity.verify(graph, meta["checksum"])
            else:  # saved by a photosearch before checksums: bounds-check it, then re-save
                graph_integrity.check_links(graph)
            import hnswlib

            index = hnswlib.Index(space="ip", dim=self.dim)
            index.load_index(str(graph))
            index.set_ef(HNSW_EF_SEARCH)
            self._index = index
            self._deleted = {int(x) for x in meta.get("deleted", [])}
            self._generation = generation
            self._dirty = "checksum" not in meta
        except Exception as exc:  # a damaged file costs a rebuild, never the library
            log.warning("vector store %s unreadable (%s); it will be rebuilt", self.meta_path, exc)
            self.load_problem = str(exc) or type(exc).__name__
            self._index = self._new_index(1024)
            self._deleted = set()
            self._dirty = True

    def _exact(self, query: np.ndarray, ids: list[int], k: int) -> list[tuple[int, float]]:
        vectors = np.asarray(self._index.get_items(ids), dtype=np.float32)
        scores = vectors @ query
        order = np.argsort(-scores, kind="stable")[:k]
        return [(ids[i], float(scores[i])) for i in order]


def _fsync_file(path: Path) -> None:
    with path.open("rb") as handle:
        os.fsync(handle.fileno())


def _check_complete(graph: Path) -> None:
    """Raise ENOSPC when hnswlib wrote less than its own layout needs (its C++ stream ignores
    a full disk)."""
    try:
        complete = graph_integrity.expected_size(graph) == graph.stat().st_size
    except graph_integrity.GraphFileDamaged:
        complete = False
    if not complete:
        raise OSError(errno.ENOSPC, f"{os.strerror(errno.ENOSPC)} (the vector graph could not "
                      f"be written in full)", str(graph))


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_json_atomically(path: Path, data: dict) -> None:
    text = json.dumps(data)
    write_atomically(path, lambda handle: handle.write(text.encode("utf-8")))
