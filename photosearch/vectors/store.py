"""The vector store: one hnswlib graph per model, saved atomically beside the catalog.

Labels are photo ids. Vectors are unit length and the space is inner product, so a score is the
cosine similarity. The graph is a cache of what the catalog holds: its owner replays the
catalog's change log after the graph's recorded position (``apply``), or compares every id
(``sync``) when that position is unknown, so a crash between a catalog commit and a save costs
nothing but a catch-up.

Files, for a model identity ``X``: ``X.json`` (the commit point: generation, settings, deleted
labels, a checksum of the graph file, and the catalog change it reflects: see vector_changes)
and ``X.<generation>.hnsw``. A save writes the new graph file, fsyncs it, checks hnswlib wrote
all of it, then replaces the JSON atomically; a crash or a full disk at any moment leaves the
previous generation intact. A load verifies the checksum before hnswlib reads the file (see
graph_integrity), so a damaged graph is rebuilt from the catalog instead of crashing or
answering wrongly. A one-shot store given its owner's reader of the catalog's vectors
(``read_vectors``) checks the graph only when something is about to read it: its search reads
the float16 matrix (verified as it is scanned) and re-scores the best from the catalog's
vectors, each checked against its own checksum, so the graph file is never read at all
(verifying it took 1.5 s of a 2 s open at 1M: benchmarks/bench_one_shot_search.py).
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import mmap
import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from photosearch.errors import ModelMismatch, PhotosearchError
from photosearch.vectors import graph_integrity, vector_file
from photosearch.vectors.atomic_write import write_atomically
from photosearch.vectors.saved_graph_vectors import SavedGraphVectors

log = logging.getLogger(__name__)

# Chosen by measurement. benchmarks/bench_vectors.py --source coco --n 20000 (real MiniLM
# embeddings of 20k COCO captions): recall@10 0.996 at ef=128. But photo libraries hold many
# near-duplicates: benchmarks/bench_scale.py (real Flickr image vectors reused with noise) at
# 100k gives recall@10/@50 of 0.872/0.831 at ef=128 and 0.972/0.961 at ef=512 (2.4 ms p50 on a
# loaded 2-core machine), so the graph searches at ef >= 512 (and >= 2k).
HNSW_M = 16
HNSW_EF_CONSTRUCTION = 200
HNSW_EF_SEARCH = 512
EXACT_SEARCH_BELOW = 4096  # filtered searches over fewer allowed ids are done exactly
# Exact search over the float16 matrix (vector_file) instead of the graph: for libraries up to
# EXACT_LIBRARY_ROWS vectors, and for k >= EXACT_K_FROM at any size. Measured with
# benchmarks/bench_scale.py: at 20k exact takes 0.73 ms against the graph's 0.59 ms at ef=512
# (recall 1.0 against 0.996); at 100k recall@1000 is 0.94 at ef=1000 and 0.984 at ef=2000
# (26 ms), exact 1.0 (58 ms on a machine loaded 6x, ~6 ms idle). At 100k (load ~4.5 on 2
# cores) exact takes 6.5/7.0/9.0 ms p50 for k = 10/50/1000 against the graph's 1.5/1.4/4.9 ms
# at ef = max(512, 2k), with recall 1.0 against 0.972/0.961/0.984. Up to 200k the scan (~13 ms,
# under the 40+ ms the query's text encoding takes) is worth what it saves: while the matrix
# answers every search the graph is never read into memory (168 MB at 100k against the
# matrix's 77 MB: benchmarks/bench_app_memory.py), and recall is 1.0 for every k.
EXACT_LIBRARY_ROWS = 200_000
EXACT_K_FROM = 200
EXACT_BY_LOOKUP_BELOW = 256  # fewer allowed ids: their float32 vectors are read one by one
# float16 near-ties at the k-th place: for k up to RESCORE_UP_TO the best k + RESCORE_MARGIN
# are re-scored in float32 (hnswlib's get_items costs ~20-60 us a vector, too slow for 1,000)
RESCORE_UP_TO = 100
RESCORE_MARGIN = 16
REBUILD_DELETED_FRACTION = 0.25
HELD_BY_LOOKUP_UP_TO = 1000  # ids looked up one by one in the graph (~20-60 us each), not listed


class SavedGraphDamaged(PhotosearchError):
    """A one-shot store's graph failed the check deferred until it was needed; the store is
    left empty, as after a failed load (its owner refills it from the catalog)."""


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

    def __init__(
        self,
        directory: Path,
        identity: str,
        dim: int,
        *,
        one_shot: bool = False,
        read_vectors: Callable[[list[int]], tuple[np.ndarray, np.ndarray]] | None = None,
    ) -> None:
        """``one_shot``: this process runs one search and exits (`photosearch search`): the
        saved matrix answers its searches at any size while the graph is not loaded, since
        one scan of it costs far less than reading the graph at 1M
        (benchmarks/bench_one_shot_search.py); each search is a full scan, though.
        ``read_vectors(ids)``: (ids, float32 vectors) of those of ``ids`` whose vector the
        catalog holds and that pass their own checksum; a one-shot store given it reads the
        vectors it re-scores from it, and checks the graph file only before reading it."""
        self.directory = directory
        self.one_shot = one_shot
        self._read_vectors = read_vectors if one_shot else None
        # the saved graph's checksum record while its check is deferred (see _graph)
        self._unchecked_graph: dict | None = None
        self.identity = identity
        self.dim = dim
        self.stem = store_stem(identity)
        self._lock = threading.RLock()
        self._index = self._new_index(1024)
        self._deleted: set[int] = set()
        self._generation = 0
        self._dirty = False  # a save is due (new content, or only a new catalog position)
        # the graph or matrix differ from the saved files; without it a save only records the
        # catalog position in the commit point (a change log that replayed to nothing)
        self._changed = False
        self._saved_meta: dict | None = None  # the commit point of the saved generation
        self.load_problem: str | None = None  # why the saved graph was not used, if it was not
        # (epoch, seq) of the catalog's change log this graph reflects; None: unknown (compare
        # every id). Kept by the owner (model_sets), written by save.
        self.catalog_position: tuple[str, int] | None = None
        # called under the lock before a save writes (to catch up with the catalog) and after
        # it committed (to prune the change log); set by the owner that may write
        self.before_save: Callable[[], None] | None = None
        self.after_save: Callable[[], None] | None = None
        self._matrix_record: dict | None = None  # the saved matrix file (commit point entry)
        self._matrix: vector_file.VectorFile | None = None  # mapped on first exact search
        self._stale: set[int] = set()  # ids added or removed since the matrix was written
        # the saved graph's file while it is not loaded: a store with a matrix loads the graph
        # only when a search needs it or the graph changes (see _graph)
        self._unloaded_graph: Path | None = None
        self._saved_vectors: SavedGraphVectors | None = None
        # True: while the graph is not loaded the matrix answers searches of every k, and an
        # idle store of any size gives its graph back. Set by the desktop app, whose searches
        # ask for up to 1,000 results (at or above EXACT_K_FROM: the matrix answers them in
        # any case), so a resident graph would serve only its few small-k asks, for 1.7 GB at
        # 1M photos (benchmarks/bench_app_memory_1m.py; a scan there takes ~0.15-0.5 s and
        # has recall 1.0). A change still loads the graph.
        self.matrix_first = False
        self._load()

    # --- reading -------------------------------------------------------------------------

    @property
    def meta_path(self) -> Path:
        return self.directory / f"{self.stem}.json"

    def graph_path(self, generation: int) -> Path:
        return self.directory / f"{self.stem}.{generation}.hnsw"

    def live_ids(self) -> set[int]:
        with self._lock:
            matrix = self._matrix_instead_of_graph()
            if matrix is not None:
                return set(matrix.ids.tolist())
            return set(self._graph().get_ids_list()) - self._deleted

    def held(self, ids: Iterable[int]) -> list[int]:
        """Those of ``ids`` this store holds live, in order. While the matrix answers, a
        lookup in its sorted ids, not a set of every id (0.2 s at 1M, in every search that
        folds copies or explains a match)."""
        wanted = [int(pid) for pid in ids]
        with self._lock:
            matrix = self._matrix_instead_of_graph()
            if matrix is None and len(wanted) <= HELD_BY_LOOKUP_UP_TO:
                return [pid for pid in wanted if self._held_vector(pid) is not None]
            if matrix is None:
                live = self.live_ids()
                return [pid for pid in wanted if pid in live]
            known = matrix.sorted_ids
            if not len(known) or not wanted:
                return []
            at = np.minimum(np.searchsorted(known, wanted), len(known) - 1)
            found = known[at] == np.asarray(wanted, dtype=np.int64)
            return [pid for pid, inside in zip(wanted, found.tolist(), strict=True) if inside]

    def __len__(self) -> int:
        with self._lock:
            matrix = self._matrix_instead_of_graph()
            if matrix is not None:
                return len(matrix)
            return self._graph().get_current_count() - len(self._deleted)

    @property
    def graph_loaded(self) -> bool:
        """False while searches are answered from the matrix alone (the graph stays on disk)."""
        with self._lock:
            return self._index is not None

    def load_graph_if_searched(self) -> None:
        """Load the graph now when this store's searches will use it (a large library), so
        that the first one does not wait for it; a front end calls this in the background."""
        with self._lock:
            if self._open_matrix() is None or (
                len(self) > EXACT_LIBRARY_ROWS and not self.matrix_first
            ):
                self._graph()

    @property
    def lock(self) -> threading.RLock:
        """Held while the graph changes; an owner takes it to change it in several steps."""
        return self._lock

    @property
    def dirty(self) -> bool:
        return self._dirty

    def mark_dirty(self) -> None:
        """Have the next writer save this store (e.g. to record its catalog position); a store
        whose graph is as saved then rewrites only its commit point."""
        self._dirty = True

    @property
    def needs_compaction(self) -> bool:
        """True when so many entries are deleted that a rebuild is due (hnswlib never
        reclaims them)."""
        with self._lock:
            matrix = self._matrix_instead_of_graph()
            if matrix is not None:
                total = len(matrix) + len(self._deleted)
            else:
                total = self._graph().get_current_count()
            return bool(total) and len(self._deleted) / total > REBUILD_DELETED_FRACTION

    def size_on_disk(self) -> int:
        path = self.graph_path(self._generation)
        return path.stat().st_size if self._generation and path.exists() else 0

    def search(
        self,
        query: np.ndarray,
        k: int,
        allowed: set[int] | None = None,
        method: str | None = None,
        ef: int | None = None,
    ) -> list[tuple[int, float]]:
        """Top ``k`` (photo id, cosine score) for a unit query, best first.

        ``allowed`` restricts results to those ids (filters); small sets are searched exactly.
        ``method``: "exact" or "graph" to force one, ``ef`` the graph's search breadth
        (benchmarks); by default exact search over the matrix file for small libraries, large
        k and filters, the graph beyond.
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
                if len(allowed) <= EXACT_BY_LOOKUP_BELOW:
                    return self._exact(query[0], sorted(allowed), k)
            if method == "exact" or (method is None and self._exact_first(live, k, allowed)):
                found = self._exact_from_matrix(query[0], k, allowed)
                if found is not None:
                    return found
            if allowed is not None and len(allowed) <= EXACT_SEARCH_BELOW:
                return self._exact(query[0], sorted(allowed), k)
            k = min(k, live if allowed is None else len(allowed))
            graph = self._graph()
            graph.set_ef(ef or max(HNSW_EF_SEARCH, 2 * k))
            accept = None if allowed is None else allowed.__contains__
            try:
                labels, distances = graph.knn_query(query, k=k, filter=accept)
            except RuntimeError:  # fewer reachable results than k: fall back to exact
                ids = sorted(allowed) if allowed is not None else sorted(self.live_ids())
                return self._exact(query[0], ids, k)
        pairs = zip(labels[0], distances[0], strict=True)
        return [(int(label), float(1.0 - distance)) for label, distance in pairs]

    def release_memory(self) -> None:
        """Give back what an idle store holds for speed alone: the graph, when it is saved as
        it is and the matrix answers every search (it is read again on the next change), and
        the matrix's resident pages (faulted in again from the page cache by the next search).
        """
        with self._lock:
            if (
                self._index is not None
                and not self._dirty
                and not self._stale
                and self._generation
                and self._matrix_record is not None
                and self._open_matrix() is not None
                and (len(self) <= EXACT_LIBRARY_ROWS or self.matrix_first)
            ):
                self._index = None
                self._unloaded_graph = self.graph_path(self._generation)
                self._saved_vectors = None
            if self._matrix is not None:
                _drop_resident_pages(self._matrix.matrix)

    def _exact_first(self, live: int, k: int, allowed: set[int] | None) -> bool:
        """Whether a search tries the matrix before the graph: small libraries, large k,
        filters, and a one-shot process's searches until something loaded the graph."""
        if live <= EXACT_LIBRARY_ROWS or k >= EXACT_K_FROM or allowed is not None:
            return True
        return (self.one_shot or self.matrix_first) and self._index is None

    def get_vectors(self, ids: list[int]) -> np.ndarray:
        with self._lock:
            if not ids:
                return np.zeros((0, self.dim), dtype=np.float32)
            return self._float32_vectors(ids)

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
            graph = self._graph()
            needed = graph.get_current_count() + len(labels)
            if needed > graph.get_max_elements():
                graph.resize_index(max(needed, graph.get_max_elements() * 2))
            for label in labels:
                if int(label) in self._deleted:
                    graph.unmark_deleted(int(label))
                    self._deleted.discard(int(label))
            graph.add_items(vectors, labels, num_threads=1)
            self._stale.update(labels.tolist())
            self._dirty = self._changed = True

    def remove(self, ids: Iterable[int]) -> int:
        """Mark photo ids deleted; returns how many were live."""
        removed = 0
        with self._lock:
            ids = list(ids)
            if not ids:
                return 0
            graph = self._graph()
            for label in ids:
                label = int(label)
                if label in self._deleted:
                    continue
                try:
                    graph.mark_deleted(label)
                except RuntimeError:  # hnswlib: "Label not found" (never added)
                    continue
                self._deleted.add(label)
                self._stale.add(label)
                removed += 1
            if removed:
                self._dirty = self._changed = True
        return removed

    def rebuild(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Replace the whole graph with these vectors (drops deleted entries for good)."""
        with self._lock:
            self._index = self._new_index(max(1024, len(ids) * 2))
            self._unloaded_graph = None
            self._deleted = set()
            self._forget_matrix()
            if len(ids):
                self._index.add_items(
                    np.asarray(vectors, dtype=np.float32), np.asarray(ids, dtype=np.int64)
                )
            self._dirty = self._changed = True

    def apply(self, ids: np.ndarray, vectors: np.ndarray, gone: Iterable[int]) -> SyncReport:
        """Apply a catalog delta: ``ids``/``vectors`` are current, ``gone`` no longer exist.
        A vector already held unchanged is left alone (replaying a delta twice is harmless)."""
        with self._lock:
            removed = self.remove(gone)
            ids = np.asarray(ids, dtype=np.int64)
            vectors = np.asarray(vectors, dtype=np.float32)
            if self._index is None and self._read_vectors is not None:
                changed = list(range(len(ids)))  # the reader has the catalog's, not the held
            else:
                changed = [
                    i
                    for i, label in enumerate(ids.tolist())
                    if not np.array_equal(self._held_vector(label), vectors[i])
                ]
            if changed:
                self.add(ids[changed].tolist(), vectors[changed])
            return SyncReport(len(changed), removed, False)

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
            total = len(live) + len(self._deleted)
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
            if self.before_save is not None:
                self.before_save()
            if not self._changed and self._saved_meta is not None:
                self._record_position()
                return
            self.directory.mkdir(parents=True, exist_ok=True)
            generation = self._generation + 1
            graph = self.graph_path(generation)
            temporary = graph.with_suffix(".hnsw.tmp")
            try:
                # Created here first so that a read-only or full directory raises its own error
                # (hnswlib's writer fails silently and leaves no file behind).
                with temporary.open("wb"):
                    pass
                self._graph().save_index(str(temporary))
                _fsync_file(temporary)
                _check_complete(temporary)
                os.replace(temporary, graph)
                matrix_record = vector_file.write_from_graph(
                    *self._matrix_files(generation), graph, self._deleted, self.dim
                )
                meta = {
                    "identity": self.identity,
                    "dim": self.dim,
                    "generation": generation,
                    "M": HNSW_M,
                    "ef_construction": HNSW_EF_CONSTRUCTION,
                    "deleted": sorted(self._deleted),
                    "checksum": graph_integrity.checksum(graph),
                    "catalog_position": self.catalog_position,
                    "matrix": matrix_record,
                }
                _write_json_atomically(self.meta_path, meta)
            except BaseException:
                temporary.unlink(missing_ok=True)
                if self._generation != generation:
                    graph.unlink(missing_ok=True)
                    for path in self._matrix_files(generation):
                        path.unlink(missing_ok=True)
                raise
            _fsync_dir(self.directory)
            old = self.graph_path(self._generation)
            old_files = self._matrix_files(self._generation)
            self._generation = generation
            if old != graph:
                old.unlink(missing_ok=True)
                for path in old_files:
                    path.unlink(missing_ok=True)
            self._forget_matrix()
            self._matrix_record = matrix_record
            self._saved_meta = meta
            self._dirty = self._changed = False
            if self.after_save is not None:
                self.after_save()

    def _record_position(self) -> None:
        """The graph and matrix are as saved: only the commit point's catalog position moves
        on (a replayed change log that changed no vector), so that the next open does not
        replay it again; writing the graph again would cost seconds at 1M photos."""
        assert self._saved_meta is not None
        meta = {**self._saved_meta, "catalog_position": self.catalog_position}
        _write_json_atomically(self.meta_path, meta)
        _fsync_dir(self.directory)
        self._saved_meta = meta
        self._dirty = False
        if self.after_save is not None:
            self.after_save()

    # --- internals -----------------------------------------------------------------------

    def _new_index(self, capacity: int):  # noqa: ANN202 - hnswlib has no type stubs
        import hnswlib

        index = hnswlib.Index(space="ip", dim=self.dim)
        index.init_index(
            max_elements=capacity,
            ef_construction=HNSW_EF_CONSTRUCTION,
            M=HNSW_M,
            random_seed=100,
            allow_replace_deleted=False,
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
            if self._read_vectors is not None and "checksum" in meta and meta.get("matrix"):
                self._unchecked_graph = meta["checksum"]  # checked before it is read
            elif "checksum" in meta:
                graph_integrity.verify(graph, meta["checksum"])
            else:  # saved by a photosearch before checksums: bounds-check it, then re-save
                graph_integrity.check_links(graph)
            if "checksum" in meta and meta.get("matrix"):
                self._index = None  # loaded when needed: _graph
                self._unloaded_graph = graph
            else:
                self._index = self._read_graph(graph)
            self._deleted = {int(x) for x in meta.get("deleted", [])}
            self._generation = generation
            self._dirty = self._changed = "checksum" not in meta
            self._saved_meta = None if self._changed else meta
            self._matrix_record = meta.get("matrix")
            position = meta.get("catalog_position")
            if isinstance(position, list) and len(position) == 2:
                self.catalog_position = (str(position[0]), int(position[1]))
        except Exception as exc:  # a damaged file costs a rebuild, never the library
            self._forget_saved(exc)

    def _forget_saved(self, exc: Exception) -> None:
        """Start from an empty graph (the owner's ``sync`` refills it from the catalog)."""
        log.warning("vector store %s unreadable (%s); it will be rebuilt", self.meta_path, exc)
        self.load_problem = str(exc) or type(exc).__name__
        self._index = self._new_index(1024)
        self._unloaded_graph = None
        self._unchecked_graph = None
        self._saved_vectors = None
        self._deleted = set()
        self._dirty = self._changed = True
        self._saved_meta = None
        self.catalog_position = None
        self._forget_matrix()

    def _read_graph(self, graph: Path):  # noqa: ANN202 - hnswlib has no type stubs
        import hnswlib

        index = hnswlib.Index(space="ip", dim=self.dim)
        index.load_index(str(graph))
        index.set_ef(HNSW_EF_SEARCH)
        return index

    def _graph(self):  # noqa: ANN202 - hnswlib has no type stubs
        """The hnswlib graph, read from its (verified) file on first need. Raises
        SavedGraphDamaged when a deferred check fails (the store is then empty)."""
        if self._index is None:
            assert self._unloaded_graph is not None
            if self._unchecked_graph is not None:
                try:
                    graph_integrity.verify(self._unloaded_graph, self._unchecked_graph)
                except (OSError, graph_integrity.GraphFileDamaged) as exc:
                    self._forget_saved(exc)
                    raise SavedGraphDamaged(
                        f"the saved vector graph is damaged ({exc}); `photosearch index` "
                        f"rebuilds it from the catalog"
                    ) from exc
                self._unchecked_graph = None
            self._index = self._read_graph(self._unloaded_graph)
            self._unloaded_graph = None
            self._saved_vectors = None
        return self._index

    def _matrix_instead_of_graph(self) -> vector_file.VectorFile | None:
        """The matrix while the graph is not loaded (it then holds exactly the live ids)."""
        if self._index is not None:
            return None
        return self._open_matrix()

    def _float32_vectors(self, ids: list[int]) -> np.ndarray:
        """Vectors as the graph holds them: from the graph in memory, else read from its
        file. Raises RuntimeError for an id not held (as hnswlib does)."""
        matrix = self._matrix_instead_of_graph()
        if matrix is not None and self._read_vectors is not None:
            found, vectors = self._readable(ids)
            if len(found) != len(ids):
                missing = sorted(set(ids) - set(found))
                raise RuntimeError(f"Label not found: no readable vector for {missing[0]}")
            return vectors
        if matrix is not None:
            if self._saved_vectors is None:
                assert self._unloaded_graph is not None
                self._saved_vectors = SavedGraphVectors(
                    self._unloaded_graph, matrix.ids, self._deleted, self.dim
                )
            try:
                return self._saved_vectors.vectors(ids)
            except KeyError as exc:
                raise RuntimeError(f"Label not found: {exc}") from exc
        return np.asarray(self._graph().get_items(ids), dtype=np.float32)

    def _readable(self, ids: list[int]) -> tuple[list[int], np.ndarray]:
        """(ids, float32 vectors), in the order asked, of those of ``ids`` the store can
        read: all held ones from the graph; through ``read_vectors``, those whose saved vector
        passes its checksum (the reader warns about the others, left out of searches)."""
        if self._read_vectors is None or self._matrix_instead_of_graph() is None:
            return list(ids), self._float32_vectors(ids)
        found, vectors = self._read_vectors(list(ids))
        at = {pid: n for n, pid in enumerate(np.asarray(found).tolist())}
        kept = [pid for pid in ids if pid in at]
        return kept, np.asarray(vectors, dtype=np.float32)[[at[pid] for pid in kept]].reshape(
            len(kept), self.dim
        )

    def _held_vector(self, label: int) -> np.ndarray | None:
        """The live vector of ``label``, None when absent or deleted (one lookup, not a scan)."""
        if label in self._deleted:
            return None
        try:
            return self._float32_vectors([label])[0]
        except RuntimeError:  # hnswlib: "Label not found"
            return None

    def _matrix_files(self, generation: int) -> tuple[Path, Path]:
        """The ids and float16 matrix files written with graph ``generation``."""
        return (
            self.directory / f"{self.stem}.{generation}.ids.npy",
            self.directory / f"{self.stem}.{generation}.f16.npy",
        )

    def has_matrix(self) -> bool:
        """True when the saved float16 matrix verifies and is mapped (exact search uses it)."""
        with self._lock:
            return self._open_matrix() is not None

    def _forget_matrix(self) -> None:
        self._matrix_record = None
        self._matrix = None
        self._stale = set()

    def _open_matrix(self) -> vector_file.VectorFile | None:
        """The saved matrix, verified and mapped on first use; None when there is none or it
        is damaged (searches then use the graph, and the next save writes a new one)."""
        if self._matrix is None and self._matrix_record is not None:
            try:
                self._matrix = vector_file.VectorFile(
                    self.directory,
                    self._matrix_record,
                    self.dim,
                    verify_while_scanning=self.one_shot,
                )
                # beyond EXACT_LIBRARY_ROWS the graph answers most searches: the matrix
                # (732 MB at 1M) is not kept resident after the large-k ones it answers
                self._matrix.keep_pages = len(self._matrix) <= EXACT_LIBRARY_ROWS
            except Exception as exc:
                self._matrix_unusable(exc)
        return self._matrix

    def _matrix_unusable(self, exc: Exception) -> None:
        """Searches use the graph (the next save writes a new matrix)."""
        record = self._matrix_record or {}
        log.warning(
            "vector matrix %s unusable (%s); searching the graph", record.get("matrix"), exc
        )
        self._matrix_record = None
        self._matrix = None
        self._dirty = self._changed = True
        if self._index is None:  # searches need the graph after all
            self._graph()

    def _exact_from_matrix(
        self, query: np.ndarray, k: int, allowed: set[int] | None
    ) -> list[tuple[int, float]] | None:
        """Exact top ``k``: every saved vector scored from the float16 matrix, the best
        re-scored in float32, merged with the vectors changed since the save (float32). None
        without a matrix or when much of it is out of date."""
        matrix = self._open_matrix()
        if matrix is None or len(self._stale) * 4 > len(matrix):
            return None
        keep = None
        if self._stale:
            keep = ~np.isin(matrix.ids, np.fromiter(self._stale, np.int64, len(self._stale)))
        if allowed is not None:
            inside = np.isin(matrix.ids, np.fromiter(allowed, np.int64, len(allowed)))
            keep = inside if keep is None else keep & inside
        changed = [
            i for i in self._stale if i not in self._deleted and (allowed is None or i in allowed)
        ]
        try:
            rows, _ = matrix.top(query, k + RESCORE_MARGIN, keep)
        except graph_integrity.GraphFileDamaged as exc:  # a one-shot store's first scan
            self._matrix_unusable(exc)
            return None
        if not len(rows) and not changed:
            return []
        # the best (up to RESCORE_UP_TO) re-scored in float32 from the graph, so they match
        # what any other search path reports; the rest summed in float32 from float16 rows
        head = min(k, RESCORE_UP_TO)
        cut = head + RESCORE_MARGIN
        best = self._exact(query, matrix.ids[rows[:cut]].tolist() + changed, k)
        exact_ids = {pid for pid, _ in best}
        found = best[:head]
        rest = list(best[head:])
        tail = rows[cut:]
        if len(tail):
            scores = matrix.summed_in_float32(np.sort(tail), query)
            rest += [
                (pid, float(score))
                for pid, score in zip(
                    matrix.ids[np.sort(tail)].tolist(), scores.tolist(), strict=True
                )
                if pid not in exact_ids
            ]
        rest.sort(key=lambda hit: -hit[1])
        return found + rest[: k - head]

    def _exact(self, query: np.ndarray, ids: list[int], k: int) -> list[tuple[int, float]]:
        ids, vectors = self._readable(ids)
        scores = vectors @ query
        order = np.argsort(-scores, kind="stable")[:k]
        return [(ids[i], float(scores[i])) for i in order]


def _drop_resident_pages(array: np.ndarray) -> None:
    """Unmap the resident pages of a read-only memory-mapped array (they stay in the page
    cache; the process's RSS no longer counts them)."""
    mapping = getattr(array, "_mmap", None)
    if mapping is not None and hasattr(mmap, "MADV_DONTNEED"):
        with contextlib.suppress(OSError, ValueError):  # only memory is at stake
            mapping.madvise(mmap.MADV_DONTNEED)


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
        raise OSError(
            errno.ENOSPC,
            f"{os.strerror(errno.ENOSPC)} (the vector graph could not be written in full)",
            str(graph),
        )


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
