"""What each catalog and graph check costs at a given library size, to choose what runs on every
open and what runs on a schedule.

    python benchmarks/bench_catalog_check.py --photos 1000 100000

Prints, per size: catalog bytes; the header check and a full open (header + schema read, what
every command pays); PRAGMA quick_check and integrity_check; one backup (copy + quick_check);
and for the vector graph of the same size: save, checksum, verify and hnswlib's own load.
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
from datetime import datetime
from pathlib import Path

import numpy as np

from photosearch.catalog.backup import make_backup
from photosearch.catalog.database import Catalog, check_header, integrity_problem
from photosearch.vectors import graph_integrity
from photosearch.vectors.store import VectorStore

DIM = 384


def timed(action) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def build_catalog(path: Path, photos: int, rng: np.random.Generator) -> None:
    Catalog(path).close()
    now = datetime.now().isoformat(sep=" ")
    connection = sqlite3.connect(path)
    with connection:
        connection.execute(
            "INSERT INTO folders (id, path, added_at, online) VALUES (1, '/photos', ?, 1)", (now,)
        )
        connection.execute(
            "INSERT INTO models (id, identity, name, embed_dim, created_at) "
            "VALUES (1, 'bench@1', 'bench', ?, ?)",
            (DIM, now),
        )
        for start in range(0, photos, 10_000):
            ids = range(start + 1, min(start + 10_000, photos) + 1)
            connection.executemany(
                "INSERT INTO photos (id, folder_id, path, size, mtime_ns, content_hash, width, "
                "height, file_time, status, added_at) VALUES (?, 1, ?, 1000, 1, ?, 640, 480, ?, "
                "'ok', ?)",
                [(i, f"/photos/{i:08d}.jpg", f"{i:032x}", now, now) for i in ids],
            )
            vectors = rng.standard_normal((len(ids), DIM)).astype(np.float32)
            connection.executemany(
                "INSERT INTO vectors (photo_id, model_id, vector) VALUES (?, 1, ?)",
                [(i, vectors[n].tobytes()) for n, i in enumerate(ids)],
            )
    connection.close()  # checkpoints the WAL into the file


def measure(photos: int, root: Path) -> None:
    rng = np.random.default_rng(0)
    path = root / f"catalog-{photos}.sqlite"
    build_catalog(path, photos, rng)
    size_mb = path.stat().st_size / 1e6
    header = timed(lambda: check_header(path, expect_data=True))
    opening = timed(lambda: Catalog(path).close())
    quick = timed(lambda: integrity_problem(path, quick=True))
    full = timed(lambda: integrity_problem(path, quick=False))
    backup = timed(lambda: make_backup(path, root / f"backups-{photos}"))
    print(
        f"{photos:>8} photos, catalog {size_mb:7.1f} MB: header {header * 1e6:6.0f} us, "
        f"open {opening * 1e3:6.1f} ms, quick_check {quick * 1e3:7.1f} ms, "
        f"integrity_check {full * 1e3:7.1f} ms, backup+check {backup * 1e3:7.1f} ms"
    )

    store = VectorStore(root / f"vectors-{photos}", "bench@1", DIM)
    vectors = rng.standard_normal((photos, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    store.add(range(1, photos + 1), vectors)
    save = timed(store.save)
    graph = store.graph_path(1)
    record = graph_integrity.checksum(graph)
    verify = timed(lambda: graph_integrity.verify(graph, record))
    walk = timed(lambda: graph_integrity.expected_size(graph))
    load = timed(lambda: VectorStore(root / f"vectors-{photos}", "bench@1", DIM))

    def hnswlib_only() -> None:
        import hnswlib

        hnswlib.Index(space="ip", dim=DIM).load_index(str(graph))

    raw = timed(hnswlib_only)
    print(
        f"{'':>8} graph {graph.stat().st_size / 1e6:7.1f} MB: save {save * 1e3:7.1f} ms "
        f"(of which size walk {walk * 1e3:6.1f} ms), verify {verify * 1e3:7.1f} ms, "
        f"load with verify {load * 1e3:7.1f} ms, hnswlib load alone {raw * 1e3:7.1f} ms"
    )


def measure_hashing(gigabytes: float, root: Path) -> None:
    """Verify cost of a graph file of this size (1M photos at 384-d: 1.7 GB), without building
    the graph: XXH3-128 (what is recorded) against one SHA-256 stream (same-run baseline)."""
    import hashlib
    import os

    path = root / "graph.bin"
    block = os.urandom(64 * 1024 * 1024)
    with path.open("wb") as handle:
        for _ in range(max(1, round(gigabytes * 1e9 / len(block)))):
            handle.write(block)
    record = graph_integrity.checksum(path)
    xxh = timed(lambda: graph_integrity.verify(path, record))

    def one_stream() -> None:
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            while block := handle.read(8 * 1024 * 1024):
                digest.update(block)

    single = timed(one_stream)
    print(
        f"graph file {path.stat().st_size / 1e9:.2f} GB: verify (XXH3-128) {xxh:.2f} s, "
        f"SHA-256 of the same file {single:.2f} s"
    )
    path.unlink()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--photos", type=int, nargs="*", default=[1000, 100_000])
    parser.add_argument(
        "--hash-gb",
        type=float,
        default=None,
        help="also time verifying a graph file of this many GB (e.g. 1.7)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for photos in args.photos:
            measure(photos, Path(tmp))
        if args.hash_gb:
            measure_hashing(args.hash_gb, Path(tmp))


if __name__ == "__main__":
    main()
