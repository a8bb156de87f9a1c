"""What storing vectors in 16 bits costs in recall (issue 18 item 3: keep it < 0.002 at k=10).

Since schema v6 the one copy of a vector at rest is a slot of int16 steps of a power-of-two
scale (vectors/vector_slots.py), and the encoder's output is rounded to it before anything
stores or searches it, so every search ranks rounded vectors. This measures that rounding, and
float16's (the other compact form considered), against float32 on the vectors of
bench_scale.py (real Flickr8k image vectors of the default model reused with noise, caption
queries of the `val` split): recall@k of the exact top k over the rounded vectors (float32
queries and sums, as the store scores) against the exact top k over the float32 vectors.
``--graph N`` also builds the app's own HNSW graph (VectorStore) over the first N vectors from
float32 and from the stored form and compares their recall against the same float32 truth.

    nice -n 10 .venv/bin/python benchmarks/bench_stored_vectors.py --photos 100000 --graph 20000
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_scale

from photosearch.vectors.vector_slots import as_stored

KS = (10, 50, 1000)


def top(vectors: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    scores = queries @ vectors.T
    part = np.argpartition(-scores, k, axis=1)[:, :k]
    return part


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(
        np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth, strict=True)])
    )


def built_store(vectors: np.ndarray, work: Path, name: str):
    from photosearch.vectors.store import VectorStore

    store = VectorStore(work / name, "bench@1", vectors.shape[1])
    store.rebuild(np.arange(len(vectors)), vectors)
    return store


def graph_found(store, queries: np.ndarray, k: int) -> np.ndarray:
    return np.asarray([[pid for pid, _ in store.search(q, k, method="graph")] for q in queries])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=100_000)
    parser.add_argument("--noise", type=float, default=0.6)
    parser.add_argument("--graph", type=int, default=0, help="also compare HNSW graphs of N")
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache/photosearch-bench")
    args = parser.parse_args()

    base = bench_scale.base_vectors(None, args.cache)
    _, queries = bench_scale.query_vectors(args.cache)
    queries = np.asarray(queries, dtype=np.float32)
    vectors = bench_scale.library_vectors(base, args.photos, args.noise)
    rounded = as_stored(vectors)
    print(
        f"{args.photos:,} vectors ({vectors.shape[1]}-d, noise {args.noise}), {len(queries)} "
        f"caption queries; load average {os.getloadavg()[0]:.2f} (cpus: {os.cpu_count()})"
    )
    truths = {k: top(vectors, queries, k) for k in KS}
    exact = queries @ vectors.T
    forms = [("stored (int16 x scale)", rounded), ("float16", vectors.astype(np.float16))]
    for name, form in forms:
        form = np.asarray(form, dtype=np.float32)
        gap = np.abs(queries @ form.T - exact)
        found = "  ".join(f"recall@{k} {recall(top(form, queries, k), truths[k]):.4f}" for k in KS)
        print(
            f"{name:<23} largest value change {np.abs(form - vectors).max():.1e}, score "
            f"change mean {gap.mean():.1e} max {gap.max():.1e}; exact {found}"
        )
    if args.graph:
        n = args.graph
        with tempfile.TemporaryDirectory() as tmp:
            started = time.perf_counter()
            f32 = built_store(vectors[:n], Path(tmp), "f32")
            stored = built_store(rounded[:n], Path(tmp), "stored")
            print(f"two graphs of {n:,} built in {time.perf_counter() - started:.0f} s")
            for k in KS:
                truth = top(vectors[:n], queries, k)
                full = recall(graph_found(f32, queries, k), truth)
                kept = recall(graph_found(stored, queries, k), truth)
                print(f"graph ({n:,}) recall@{k:<4} float32 {full:.4f}, stored form {kept:.4f}")
    print(f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
