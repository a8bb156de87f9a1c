"""Corpus-level hard negatives (MoTIS HN): the nearest items of the other modality, found in an
hnswlib index of the whole training corpus, minus the query's own positives."""

from __future__ import annotations

import hnswlib
import numpy as np


class HardNegativeMiner:
    """An inner-product hnswlib index over ``vectors``; ``owners[j]`` is the image a corpus item
    belongs to (a caption's image, or an image's own index), so positives can be excluded.

    Built single-threaded with ``ef`` >= the corpus size for small corpora, so results are
    exact and reproducible (a resumed run mines the same negatives).
    """

    def __init__(
        self, vectors: np.ndarray, owners: np.ndarray, ef: int = 200, seed: int = 0
    ) -> None:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.owners = np.asarray(owners, dtype=np.int64)
        if len(vectors) != len(self.owners):
            raise ValueError("one owner per corpus vector is needed")
        self.size = len(vectors)
        self.max_per_owner = int(np.bincount(self.owners).max()) if self.size else 0
        self.index = hnswlib.Index(space="ip", dim=vectors.shape[1])
        self.index.init_index(
            max_elements=max(1, self.size), ef_construction=max(ef, 100), M=16, random_seed=seed
        )
        self.index.add_items(vectors, np.arange(self.size), num_threads=1)
        self.index.set_ef(max(ef, min(self.size, 2000)))

    def mine(self, queries: np.ndarray, query_owners: np.ndarray, k: int) -> np.ndarray:
        """[Q, k] corpus indices: each query's top-k by inner product, skipping items owned by
        its own image. Raises ValueError when the corpus has fewer than k other items."""
        if self.size - self.max_per_owner < k:
            raise ValueError(f"corpus of {self.size} items too small for {k} hard negatives")
        want = min(self.size, k + self.max_per_owner)
        labels, _ = self.index.knn_query(
            np.ascontiguousarray(queries, np.float32), k=want, num_threads=1
        )
        out = np.empty((len(queries), k), dtype=np.int64)
        for row, (found, owner) in enumerate(zip(labels, query_owners, strict=True)):
            keep = found[self.owners[found] != owner][:k]
            out[row] = keep
        return out
