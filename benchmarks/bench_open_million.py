"""The parts of a 1M-photo library that need no graph (issue 18 items 1, 3, 4), measured
where building a 1M hnswlib graph (~40 min on 2 cores) is out of reach: bench_scale.py
measures whole libraries.

Builds a catalog of N photos with float32 vector BLOBs (real Flickr vectors reused with noise,
as bench_scale.py) and the float16 matrix files a save writes beside the graph, then prints from
the same run:

- what every open did before schema v5: read every vector id through the ORM (the query of
  ModelSets._vector_ids, verbatim) against what an in-step open does now (the log position
  and the rows after it);
- exact search over the memory-mapped float16 matrix for k = 10, 50, 1000 (p50/p99), the
  first one cold (the checksum verification included), and recall@k against float32 exact;
- the bytes of the catalog's BLOBs against the float16 matrix.

    nice -n 10 .venv/bin/python benchmarks/bench_open_million.py --photos 1000000 \\
        --vectors-from /path/to/indexed/flickr/library
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import tempfile
import time
from pathlib import Path

import numpy as np
from bench_scale import KS, base_vectors, library_vectors, query_vectors, recall


def build(library: Path, vectors: np.ndarray) -> None:
    from photosearch.catalog import Catalog

    count = len(vectors)
    Catalog(library / "catalog.sqlite").close()
    with sqlite3.connect(library / "catalog.sqlite") as connection:
        connection.execute(
            "INSERT INTO folders (id, path, added_at, online) VALUES "
            "(1, '/nonexistent', '2026-01-01', 1)"
        )
        connection.execute(
            "INSERT INTO models (id, identity, name, embed_dim, created_at) "
            "VALUES (1, 'bench@1', 'bench', ?, '2026-01-01')",
            (vectors.shape[1],),
        )
        for start in range(0, count, 50_000):
            ids = range(start + 1, min(count, start + 50_000) + 1)
            connection.executemany(
                "INSERT INTO photos (id, folder_id, path, size, mtime_ns, content_hash, "
                "file_time, status, added_at) VALUES (?, 1, ?, 1000, 0, ?, '2026-01-01', "
                "'ok', '2026-01-01')",
                [(i, f"/nonexistent/{i // 1000}/{i}.jpg", f"{i:032x}") for i in ids],
            )
            connection.executemany(
                "INSERT INTO vectors (photo_id, model_id, vector) VALUES (?, 1, ?)",
                [(i, vectors[i - 1].tobytes()) for i in ids],
            )
            connection.commit()
        # the rows the triggers logged are what a save prunes: prune them as a save would
        connection.execute("DELETE FROM vector_log WHERE seq < (SELECT max(seq) FROM vector_log)")


def write_matrix(directory: Path, vectors: np.ndarray) -> dict:
    from photosearch.vectors import graph_integrity

    ids = np.arange(1, len(vectors) + 1, dtype=np.int64)
    np.save(directory / "m.1.ids.npy", ids)
    np.save(directory / "m.1.f16.npy", vectors.astype(np.float16))
    return {
        "ids": "m.1.ids.npy",
        "ids_checksum": graph_integrity.checksum(directory / "m.1.ids.npy"),
        "matrix": "m.1.f16.npy",
        "matrix_checksum": graph_integrity.checksum(directory / "m.1.f16.npy"),
    }


def timed(action, runs: int = 3) -> float:
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        action()
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=1_000_000)
    parser.add_argument("--noise", type=float, default=0.6)
    parser.add_argument("--vectors-from", type=Path, help="an indexed Flickr8k-1k library")
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache/photosearch-bench")
    parser.add_argument("--work-dir", type=Path)
    args = parser.parse_args()
    from sqlalchemy import select

    from photosearch.catalog import Catalog, Photo, Vector, vector_changes
    from photosearch.vectors.vector_file import VectorFile

    base = base_vectors(args.vectors_from, args.cache)
    _, queries = query_vectors(args.cache)
    work = Path(tempfile.mkdtemp(prefix="bench-million-", dir=args.work_dir))
    try:
        vectors = library_vectors(base, args.photos, args.noise)
        started = time.perf_counter()
        build(work, vectors)
        record = write_matrix(work, vectors)
        print(
            f"{args.photos:,} photos built in {time.perf_counter() - started:.0f} s; load "
            f"average {os.getloadavg()[0]:.2f} (cpus: {os.cpu_count()})"
        )
        blobs = args.photos * vectors.shape[1] * 4 / 1e6
        print(
            f"catalog {(work / 'catalog.sqlite').stat().st_size / 1e6:,.0f} MB of which "
            f"vector BLOBs {blobs:,.0f} MB; float16 matrix "
            f"{(work / 'm.1.f16.npy').stat().st_size / 1e6:,.0f} MB"
        )

        catalog = Catalog(work / "catalog.sqlite", readonly=True)

        def every_id() -> set[int]:  # ModelSets._vector_ids before schema v5, verbatim
            with catalog.session() as session:
                return set(
                    session.scalars(
                        select(Vector.photo_id)
                        .join(Photo, Photo.id == Vector.photo_id)
                        .where(Vector.model_id == 1, Photo.present())
                    ).all()
                )

        position = vector_changes.current_position(catalog)

        def in_step() -> None:
            assert not vector_changes.changes_since(catalog, 1, position).ids

        print(f"open, before v5 (every id through the ORM): {timed(every_id, 1):.3f} s")
        print(f"open, in step now (log position + rows after it): {timed(in_step):.6f} s")
        print(
            f"open, raw SQL of every id (the fallback now): "
            f"{timed(lambda: vector_changes.present_ids(catalog, 1), 1):.3f} s"
        )
        catalog.close()

        started = time.perf_counter()
        matrix = VectorFile(work, record, vectors.shape[1])
        print(f"matrix verified (XXH3) and mapped: {time.perf_counter() - started:.2f} s")
        truth_scores = queries @ vectors.T
        import simsimd

        from photosearch.vectors.store import RESCORE_MARGIN, RESCORE_UP_TO

        print(
            "recall@k: of the float16 ranking alone; re-scored: the best k + "
            f"{RESCORE_MARGIN} re-scored in float32, as the store does for k <= "
            f"{RESCORE_UP_TO}; all cores: simsimd's dot products on every core"
        )
        print(
            f"{'k':>6} {'cold ms':>9} {'p50 ms':>8} {'p99 ms':>8} {'recall@k':>9} "
            f"{'re-scored':>10} {'all cores p50 ms':>17}"
        )
        for k in KS:
            truth = np.argpartition(-truth_scores, k, axis=1)[:, :k] + 1
            times, found, rescored, threaded = [], [], [], []
            for query in queries:
                started = time.perf_counter()
                rows, _ = matrix.top(query, k, None)
                times.append(time.perf_counter() - started)
                found.append(matrix.ids[rows])
                wider = matrix.ids[matrix.top(query, k + RESCORE_MARGIN, None)[0]]
                exact = vectors[wider - 1] @ query
                rescored.append(wider[np.argsort(-exact)[:k]])
                started = time.perf_counter()
                simsimd.cdist(
                    query.astype(np.float16)[None], matrix.matrix, metric="dot", threads=0
                )
                threaded.append(time.perf_counter() - started)
            print(
                f"{k:>6} {1000 * times[0]:9.1f} {1000 * np.percentile(times, 50):8.1f} "
                f"{1000 * np.percentile(times, 99):8.1f} {recall(found, truth):9.4f} "
                f"{recall(rescored, truth):10.4f} {1000 * np.percentile(threaded, 50):17.1f}"
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
