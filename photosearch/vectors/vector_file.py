"""A model's vectors as a memory-mapped float16 matrix beside its graph, for exact search.

hnswlib answers a query by walking its graph; for a large k (the app asks for 1,000), a small
library or a filter that allows many photos, reading every vector is as fast and exact. Half
precision halves what is read, and simsimd's SIMD kernels take the dot products in float16
directly (NumPy converts float16 element by element, and its float32 product over the same
rows took 24 ms against simsimd's 0.6 ms at 20k on this machine). The store re-scores the best
few in float32 for small k and ranks large k by the float16 scores; benchmarks/bench_scale.py
measures the recall of the float16 ranking alone against float32.

Two NumPy ``.npy`` files per graph generation: the photo ids (int64) and the matrix (float16,
one row per id). Each is written atomically beside the graph, listed with an XXH3 checksum in
the graph's commit point (see vectors.py), verified before first use and mapped read-only. A
process that searches once (``verify_while_scanning``) verifies the matrix during its first scan
instead, a chunk hashed right before it is scored: the scan reads every byte anyway, and hashing
the same pages while they are in cache costs almost nothing more (at 1M, 768 MB: hashing alone
~0.5 s, the scan ~0.6 s, both together ~0.55 s on this machine under load 3.5), where verifying
first read the file twice. A mismatch raises before any score is returned.

A file-backed page stays in the process's RSS once a scan has read it: at 1M the desktop app
held the whole 732 MB matrix after its first search, beside the graph it keeps loaded. A
``VectorFile`` with ``keep_pages`` False (a store whose graph answers most searches) hands each
chunk's pages back right after scoring it (madvise MADV_DONTNEED: they stay in the page cache,
so the next scan maps them again without reading the disk; benchmarks/bench_app_memory_1m.py
measures the cost), and the rows ``summed_in_float32`` read after it.
"""

from __future__ import annotations

import contextlib
import mmap
from functools import cached_property
from pathlib import Path

import numpy as np

from photosearch.vectors import graph_integrity
from photosearch.vectors.atomic_write import write_atomically

ROWS_PER_CHUNK = 65_536  # rows converted at a time while writing (100 MB at 384-d)
ROWS_PER_SCAN_CHUNK = 8_192  # rows hashed then scored at a time (6 MB at 384-d: still cached)


def write_from_graph(
    ids_path: Path, matrix_path: Path, graph: Path, deleted: set[int], dim: int
) -> dict:
    """Write the live ids and vectors of a just-saved hnswlib graph file, read straight from
    its level-0 block (hnswlib's get_items costs ~20-60 us a vector: a minute at 1M). Returns
    the record a commit point keeps: file names and checksums."""
    level0 = _level0(graph)
    if level0.dtype["vector"].shape != (dim,):
        raise graph_integrity.GraphFileDamaged(f"{graph.name} holds vectors of another size")
    labels = level0["label"]
    live = ~np.isin(labels, np.fromiter(deleted, np.int64, len(deleted))) if deleted else None
    ids = np.asarray(labels if live is None else labels[live], dtype=np.int64)
    rows = np.arange(len(labels)) if live is None else np.flatnonzero(live)
    write_atomically(ids_path, lambda handle: np.save(handle, ids))

    def fill(handle) -> None:  # noqa: ANN001 - a binary file handle
        header = {
            "descr": np.lib.format.dtype_to_descr(np.dtype("<f2")),
            "fortran_order": False,
            "shape": (len(ids), dim),
        }
        np.lib.format.write_array_header_1_0(handle, header)
        for start in range(0, len(rows), ROWS_PER_CHUNK):
            part = level0["vector"][rows[start : start + ROWS_PER_CHUNK]]
            handle.write(part.astype("<f2").tobytes())

    write_atomically(matrix_path, fill)
    return {
        "ids": ids_path.name,
        "ids_checksum": graph_integrity.checksum(ids_path),
        "matrix": matrix_path.name,
        "matrix_checksum": graph_integrity.checksum(matrix_path),
    }


def _level0(graph: Path) -> np.ndarray:
    """hnswlib's level-0 elements of ``graph`` as a mapped record array (label, vector)."""
    with graph.open("rb") as handle:
        fields = graph_integrity._HEADER.unpack(handle.read(graph_integrity._HEADER.size))
    count, per_element, label_offset, data_offset = fields[2], fields[3], fields[4], fields[5]
    element = np.dtype(
        {
            "names": ["vector", "label"],
            "formats": [("<f4", ((label_offset - data_offset) // 4,)), "<i8"],
            "offsets": [data_offset, label_offset],
            "itemsize": per_element,
        }
    )
    return np.memmap(
        graph, dtype=element, mode="r", offset=graph_integrity._HEADER.size, shape=(count,)
    )


class VectorFile:
    """A verified, read-only mapping of one generation's ids and float16 matrix."""

    def __init__(
        self,
        directory: Path,
        record: dict,
        dim: int,
        *,
        verify_while_scanning: bool = False,
        keep_pages: bool = True,
    ) -> None:
        """``verify_while_scanning``: the matrix's checksum is checked by the first scan
        (``scores``) instead of here; nothing reads its rows before that scan.
        ``keep_pages``: False to give the matrix's pages back after every read of them."""
        self.keep_pages = keep_pages
        ids_path, matrix_path = directory / record["ids"], directory / record["matrix"]
        graph_integrity.verify(ids_path, record["ids_checksum"])
        recorded = record["matrix_checksum"]
        if not verify_while_scanning or recorded.get("algorithm") != graph_integrity.ALGORITHM:
            graph_integrity.verify(matrix_path, recorded)
            self._unverified: dict | None = None
        elif matrix_path.stat().st_size != recorded.get("size"):
            raise graph_integrity.GraphFileDamaged(
                f"{matrix_path.name} is {matrix_path.stat().st_size} bytes, "
                f"{recorded.get('size')} were saved"
            )
        else:
            self._unverified = recorded
        self._path = matrix_path
        self.ids = np.load(ids_path)
        self.matrix = np.load(matrix_path, mmap_mode="r")
        if self.matrix.dtype != np.float16 or self.matrix.shape != (len(self.ids), dim):
            raise graph_integrity.GraphFileDamaged(
                f"{matrix_path.name} holds {self.matrix.dtype} {self.matrix.shape}, "
                f"not {len(self.ids)} float16 rows of {dim}"
            )

    def __len__(self) -> int:
        return len(self.ids)

    @cached_property
    def sorted_ids(self) -> np.ndarray:
        """The ids in ascending order (as written, for a graph built in id order)."""
        ids = np.asarray(self.ids)
        return ids if bool(np.all(ids[1:] > ids[:-1])) else np.sort(ids)

    def scores(self, query: np.ndarray) -> np.ndarray:
        """Every row's dot product with ``query``. On CPUs with AVX-512 FP16 simsimd sums in
        float16 (scores up to ~2e-4 off, 5x faster than its float32-sum kernels): the store
        re-scores the best of a small k in float32, where near-ties matter."""
        import simsimd

        if self._unverified is not None or not self.keep_pages:
            return self._scores_in_chunks(query)
        if not len(self.ids):
            return np.zeros(0)
        query16 = np.asarray(query, dtype=np.float16).reshape(1, -1)
        return np.asarray(simsimd.cdist(query16, self.matrix, metric="dot"))[0]

    def _scores_in_chunks(self, query: np.ndarray) -> np.ndarray:
        """``scores`` a chunk at a time: while the checksum is unverified, each chunk hashed
        right before it is scored (the same XXH3 digest ``graph_integrity.checksum`` made;
        raises GraphFileDamaged on a mismatch); without ``keep_pages``, each chunk's pages
        given back once scored."""
        import simsimd
        import xxhash

        checking = self._unverified
        hasher = xxhash.xxh3_128() if checking is not None else None
        if hasher is not None:
            with self._path.open("rb") as handle:
                hasher.update(handle.read(self.matrix.offset))  # the .npy header
        query16 = np.asarray(query, dtype=np.float16).reshape(1, -1)
        scores = np.empty(len(self.ids), dtype=np.float64)
        released = 0  # bytes of the mapping given back so far
        for start in range(0, len(self.ids), ROWS_PER_SCAN_CHUNK):
            rows = self.matrix[start : start + ROWS_PER_SCAN_CHUNK]
            if hasher is not None:
                hasher.update(rows)
            scores[start : start + len(rows)] = np.asarray(
                simsimd.cdist(query16, rows, metric="dot")
            )[0]
            if not self.keep_pages:
                released = self._give_back_pages(released, self._byte_at(start + len(rows)))
        if checking is not None:
            assert hasher is not None
            if hasher.hexdigest() != checking.get("digest"):
                raise graph_integrity.GraphFileDamaged(
                    f"{self._path.name} does not match its checksum"
                )
            self._unverified = None
        if not self.keep_pages:
            self.give_back_pages()
        return scores

    def give_back_pages(self) -> None:
        """Drop the matrix's resident pages from this process (they stay in the page cache,
        where the next read finds them)."""
        self._give_back_pages(0, None)

    def _byte_at(self, row: int) -> int:
        """Where ``row`` starts in the mapping (the .npy header comes first; NumPy maps from
        the allocation boundary below it)."""
        header = self.matrix.offset % mmap.ALLOCATIONGRANULARITY
        return header + row * self.matrix.shape[1] * self.matrix.itemsize

    def _give_back_pages(self, start: int, end: int | None) -> int:
        """MADV_DONTNEED over whole pages of the mapping from ``start`` to ``end`` (the end of
        the mapping when None); returns where the next call should start."""
        mapping = getattr(self.matrix, "_mmap", None)
        if mapping is None or not hasattr(mmap, "MADV_DONTNEED"):
            return start
        end = len(mapping) if end is None else end - end % mmap.PAGESIZE
        if end > start:
            with contextlib.suppress(OSError, ValueError):  # only memory is at stake
                mapping.madvise(mmap.MADV_DONTNEED, start, end - start)
        return max(start, end)

    def top(
        self, query: np.ndarray, k: int, keep: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Row numbers and scores of the best ``k`` rows (best first) among those where
        ``keep`` is True (all when None); ``self.ids[rows]`` are their photo ids."""
        scores = self.scores(query)
        if keep is not None:
            scores[~keep] = -np.inf
            k = min(k, int(np.count_nonzero(keep)))
        k = min(k, len(scores))
        if k <= 0:
            return np.zeros(0, np.int64), np.zeros(0)
        rows = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(k)
        rows = rows[np.argsort(-scores[rows], kind="stable")]
        return rows, scores[rows]

    def summed_in_float32(self, rows: np.ndarray, query: np.ndarray) -> np.ndarray:
        """Scores of ``rows`` summed in float32 (only the float16 rounding of the vectors
        left, ~1e-4 at most), for results the store does not re-score from the graph."""
        scores = np.asarray(self.matrix[rows], dtype=np.float32) @ np.asarray(query, np.float32)
        if not self.keep_pages:
            self.give_back_pages()
        return scores
