"""HNSW store vs exact search: recall@10 and query time at the store's settings (M, ef).

Two sources: real embeddings (the default model's text tower over the COCO captions in
../shared/data, the closest stand-in for a library's vectors we have offline) or synthetic
low-rank vectors. The exact numpy search in the same run is the baseline; --ef sweeps the
search breadth to show where recall crosses 0.99.

    .venv/bin/python benchmarks/bench_vectors.py --source coco --n 20000
    .venv/bin/python benchmarks/bench_vectors.py --source synthetic --n 100000
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from photosearch.vectors import store as vectors
from photosearch.vectors.store import HNSW_M, VectorStore

COCO = Path(__file__).resolve().parents[2] / "shared/data/coco-captions/captions_val2017.txt"


def synthetic(n: int, dim: int, rng: np.random.Generator, latent: int = 32) -> np.ndarray:
    basis = np.random.default_rng(1).standard_normal((latent, dim)).astype(np.float32)
    points = rng.standard_normal((n, latent)).astype(np.float32) @ basis
    points += 0.05 * np.sqrt(latent) * rng.standard_normal((n, dim)).astype(np.float32)
    return points / np.linalg.norm(points, axis=1, keepdims=True)


def coco_embeddings(n: int) -> np.ndarray:
    from photosearch.library.facade import Library

    texts = [t for t in COCO.read_text(encoding="utf-8").splitlines() if t.strip()][:n]
    with tempfile.TemporaryDirectory() as tmp, Library(Path(tmp)) as library:
        encoder = library.encoder
        return np.concatenate(
            [encoder.encode_texts(texts[i : i + 256]) for i in range(0, len(texts), 256)]
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--source", choices=("coco", "synthetic"), default="synthetic")
    parser.add_argument("--ef", type=int, nargs="*", default=[32, 64, 128, 256])
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    if args.source == "coco":
        everything = coco_embeddings(args.n + args.queries)
        data, queries = everything[: -args.queries], everything[-args.queries :]
        args.n, args.dim = data.shape
    else:
        data = synthetic(args.n, args.dim, rng)
        queries = synthetic(args.queries, args.dim, rng)
    exact_started = time.perf_counter()
    exact_top = [set(np.argpartition(-(data @ q), 10)[:10].tolist()) for q in queries]
    exact_ms = 1000 * (time.perf_counter() - exact_started) / len(queries)
    with tempfile.TemporaryDirectory() as tmp:
        store = VectorStore(Path(tmp), "bench", args.dim)
        started = time.perf_counter()
        store.add(range(args.n), data)
        build_s = time.perf_counter() - started
        started = time.perf_counter()
        store.save()
        save_s = time.perf_counter() - started
        started = time.perf_counter()
        store = VectorStore(Path(tmp), "bench", args.dim)
        load_s = time.perf_counter() - started
        print(
            f"{args.source}: {args.n} x {args.dim}, M={HNSW_M}; build {build_s:.1f}s, "
            f"save {save_s:.2f}s, load {load_s:.2f}s; exact numpy {exact_ms:.3f} ms/query"
        )
        for ef in args.ef:
            vectors.HNSW_EF_SEARCH = ef
            times, hits = [], 0
            for query, exact in zip(queries, exact_top, strict=True):
                started = time.perf_counter()
                found = {pid for pid, _ in store.search(query, 10)}
                times.append(time.perf_counter() - started)
                hits += len(found & exact)
            print(
                f"ef={ef:4d}: recall@10 {hits / (10 * len(queries)):.4f}, "
                f"query p50 {1000 * np.median(times):.3f} ms"
            )


if __name__ == "__main__":
    main()
