"""Large libraries (issue 18 item 7): open time, cold and warm search, RSS and recall@k at 100k
(and 1M) photos, side by side with a baseline tree's code in the same run.

The vectors are real: the default model's image vectors of the Flickr8k photos in
../shared/data (taken from an indexed library, ``--vectors-from``, or indexed here once and
cached), each reused with Gaussian noise (``--noise``: the norm of the noise relative to the
unit vector) and normalised, so there are N distinct vectors around 1,000 real ones. Queries are
the default model's text vectors of captions of the `val` split (never `test`).

A library is built the way the app stores one: catalog rows (folder, photos, model, float32
vector BLOBs) written with SQL, the graph built and saved through the code's own VectorStore.
It is built once with the baseline's code (its schema), measured with the baseline, then
upgraded by this tree (the first writable open: a full comparison, once) and measured again.
Each measurement runs in a fresh process:

- open: ``Library()`` + the active model's store (the encoder is opened first and reported
  apart), peak and current RSS after it;
- cold search: the first text search (k=1000) in that process; warm: p50/p99 of vector searches;
- CLI: wall time of ``photosearch search TEXT -k 1000`` in a new process (imports included);
- recall@k for k = 10, 50, 1000 against exact float32 search over the same vectors.

The photo files do not exist (rescans are measured by bench_rescan.py). 1M needs ~4 GB of
memory and many minutes to build; it is never part of the test suite.

    nice -n 10 .venv/bin/python benchmarks/bench_scale.py --photos 100000 \\
        --baseline-code /tmp/base --vectors-from /path/to/indexed/flickr/library
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent.parent
FLICKR = HERE.parent.parent / "shared/data/flickr8k-1k"
if not FLICKR.exists():
    FLICKR = Path("/work/shared/data/flickr8k-1k")
KS = (10, 50, 1000)
QUERIES = 100
CLI_TEXT = "a dog running on the grass"


# --- inputs ----------------------------------------------------------------------------------


def base_vectors(source: Path | None, cache: Path) -> np.ndarray:
    """The default model's vectors of the Flickr photos: from an indexed library, else indexed
    here (once; cached)."""
    cached = cache / "flickr-vectors.npy"
    if cached.exists():
        return np.load(cached)
    cache.mkdir(parents=True, exist_ok=True)
    if source is None:
        from photosearch.library.facade import Library

        source = cache / "flickr-library"
        with Library(source) as library:
            library.add_folder(FLICKR / "images")
            library.index()
    from photosearch.library import saved_vectors
    from photosearch.vectors import vector_slots

    with sqlite3.connect(f"file:{source / 'catalog.sqlite'}?mode=ro", uri=True) as connection:
        rows = connection.execute(
            "SELECT m.identity, m.embed_dim, v.vector FROM vectors v "
            "JOIN models m ON m.id = v.model_id "
            "WHERE m.name = 'conse-lite0-minilm' ORDER BY v.photo_id"
        ).fetchall()
    identity, dim = rows[0][0], rows[0][1]
    slots = saved_vectors.slots_for(source / "vectors", identity, dim)  # schema v6 references
    found, vectors = vector_slots.decode([blob for _, _, blob in rows], dim, slots)
    vectors = vectors[found]
    np.save(cached, vectors)
    return vectors


def query_vectors(cache: Path) -> tuple[list[str], np.ndarray]:
    cached = cache / "queries.npy"
    texts = []
    for line in (FLICKR / "captions.jsonl").read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        if record["split"] == "val":
            texts.append(record["captions"][0])
    texts = texts[:QUERIES]
    if not cached.exists():
        from photosearch.library.facade import Library

        with tempfile.TemporaryDirectory() as tmp, Library(Path(tmp)) as library:
            np.save(cached, library.encoder.encode_texts(texts))
    return texts, np.load(cached)


def library_vectors(base: np.ndarray, count: int, noise: float, seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.empty((count, base.shape[1]), np.float32)
    for start in range(0, count, 65536):
        stop = min(count, start + 65536)
        chunk = base[np.arange(start, stop) % len(base)].copy()
        jitter = rng.standard_normal(chunk.shape).astype(np.float32)
        jitter *= noise / np.linalg.norm(jitter, axis=1, keepdims=True)
        chunk += jitter
        out[start:stop] = chunk / np.linalg.norm(chunk, axis=1, keepdims=True)
    return out


def exact_top(vectors: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    scores = queries @ vectors.T
    top = np.argpartition(-scores, k, axis=1)[:, :k]
    return top + 1  # photo ids start at 1


# --- children (run with the code under test first on the path) ---------------------------------


def child_build(library: Path, vectors_path: Path) -> dict:
    from photosearch.catalog import Catalog
    from photosearch.library.facade import CATALOG_FILE, VECTORS_DIR, default_models_dir
    from photosearch.models.bundle import bundle_identity
    from photosearch.vectors.store import VectorStore

    vectors = np.load(vectors_path, mmap_mode="r")
    count, dim = vectors.shape
    library.mkdir(parents=True)
    Catalog(library / CATALOG_FILE).close()
    identity = bundle_identity(default_models_dir() / "conse-lite0-minilm")
    started = time.perf_counter()
    with sqlite3.connect(library / CATALOG_FILE) as connection:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute(
            "INSERT INTO folders (id, path, added_at, online) VALUES "
            "(1, '/nonexistent/photos', '2026-01-01', 1)"
        )
        connection.execute(
            "INSERT INTO models (id, identity, name, embed_dim, created_at) "
            "VALUES (1, ?, 'conse-lite0-minilm', ?, '2026-01-01')",
            (identity, dim),
        )
        connection.execute("INSERT INTO meta VALUES ('active_model', 'conse-lite0-minilm')")
        for start in range(0, count, 50_000):
            ids = range(start + 1, min(count, start + 50_000) + 1)
            connection.executemany(
                "INSERT INTO photos (id, folder_id, path, size, mtime_ns, content_hash, "
                "file_time, status, added_at) VALUES (?, 1, ?, 1000, 0, ?, '2026-01-01', "
                "'ok', '2026-01-01')",
                [(i, f"/nonexistent/photos/{i // 1000}/{i}.jpg", f"{i:032x}") for i in ids],
            )
            connection.executemany(
                "INSERT INTO vectors (photo_id, model_id, vector) VALUES (?, 1, ?)",
                [(i, np.asarray(vectors[i - 1]).tobytes()) for i in ids],
            )
            connection.commit()
    catalog_s = time.perf_counter() - started
    started = time.perf_counter()
    store = VectorStore(library / VECTORS_DIR, identity, dim)
    store.rebuild(np.arange(1, count + 1), np.asarray(vectors))
    store.save()
    return {"catalog_s": catalog_s, "graph_s": time.perf_counter() - started}


def child_upgrade(library: Path) -> dict:
    """The first writable open by this tree: schema upgrade, one full comparison, a save."""
    from photosearch.library.facade import Library

    started = time.perf_counter()
    with Library(library) as opened, opened.lock.holding():
        store = opened.store
        if store.dirty:
            store.save()
    return {"upgrade_s": time.perf_counter() - started}


def rss_mb() -> tuple[float, float]:
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    with open("/proc/self/status", encoding="ascii") as status:
        now = next(int(line.split()[1]) for line in status if line.startswith("VmRSS")) / 1024
    return now, peak


def child_measure(library: Path, queries_path: Path, out: Path) -> dict:
    started = time.perf_counter()
    from photosearch.library.facade import Library
    from photosearch.search.query import SearchQuery

    figures: dict = {"import_s": time.perf_counter() - started}
    queries = np.load(queries_path)
    started = time.perf_counter()
    opened = Library(library, readonly=True)
    figures["library_s"] = time.perf_counter() - started
    started = time.perf_counter()
    opened.encoder  # noqa: B018 - opened apart, so the store's own open is timed alone
    figures["encoder_s"] = time.perf_counter() - started
    started = time.perf_counter()
    store = opened.store
    figures["store_open_s"] = time.perf_counter() - started
    figures["rss_after_open_mb"], figures["peak_after_open_mb"] = rss_mb()
    started = time.perf_counter()
    opened.search(SearchQuery(text=CLI_TEXT, k=1000))
    figures["cold_search_s"] = time.perf_counter() - started
    import inspect

    methods = [("warm", {})]
    if "method" in inspect.signature(store.search).parameters:  # this tree: each path alone
        methods += [
            ("exact", {"method": "exact"}),
            ("graph", {"method": "graph"}),
            ("graph-ef512", {"method": "graph", "ef": 512}),
            ("graph-ef2000", {"method": "graph", "ef": 2000}),
        ]
    for name, options in methods:
        for k in KS:
            times, found = [], []
            for query in queries:
                started = time.perf_counter()
                hits = store.search(query, k, **options)
                times.append(time.perf_counter() - started)
                found.append([pid for pid, _ in hits] + [0] * (k - len(hits)))
            np.save(out / f"found-{name}-{k}.npy", np.asarray(found, np.int64))
            figures[f"{name}_k{k}_p50_ms"] = 1000 * float(np.percentile(times, 50))
            figures[f"{name}_k{k}_p99_ms"] = 1000 * float(np.percentile(times, 99))
    figures["rss_end_mb"], figures["peak_end_mb"] = rss_mb()
    opened.close()
    return figures


def run_child(code: Path, *args: str) -> dict:
    env = dict(os.environ, PYTHONPATH=f"{code}{os.pathsep}{code / 'plugins'}")
    done = subprocess.run(
        [sys.executable, __file__, "--child", *args],
        env=env,
        cwd=code,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"{args[0]} with the code in {code} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def cli_search_s(code: Path, library: Path, runs: int = 3) -> float:
    env = dict(os.environ, PYTHONPATH=f"{code}{os.pathsep}{code / 'plugins'}")
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "photosearch",
                "--library",
                str(library),
                "search",
                CLI_TEXT,
                "-k",
                "1000",
            ],
            env=env,
            cwd=code,
            check=True,
            capture_output=True,
        )
        best = min(best, time.perf_counter() - started)
    return best


# --- main ------------------------------------------------------------------------------------


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    hits = [len(set(f) & set(t)) / len(t) for f, t in zip(found, truth, strict=True)]
    return float(np.mean(hits))


def measure(label: str, code: Path, library: Path, work: Path, truths: dict) -> dict:
    out = work / f"found-{label}"
    out.mkdir(exist_ok=True)
    figures = run_child(code, "measure", str(library), str(work / "queries.npy"), str(out))
    figures["cli_search_s"] = cli_search_s(code, library)
    for name in ("warm", "exact", "graph", "graph-ef512", "graph-ef2000"):
        for k in KS:
            if (out / f"found-{name}-{k}.npy").exists():
                figures[f"{name}_recall@{k}"] = recall(
                    np.load(out / f"found-{name}-{k}.npy"), truths[k]
                )
    return figures


def float16_recall(library: Path, queries: np.ndarray, truth: np.ndarray) -> float | None:
    """recall@10 of ranking by the float16 matrix alone (before the float32 re-scoring)."""
    files = sorted((library / "vectors").glob("*.f16.npy"))
    if not files:
        return None
    matrix = np.load(files[-1]).astype(np.float32)
    ids = np.load(str(files[-1]).replace(".f16.npy", ".ids.npy"))
    top = np.argsort(-(queries.astype(np.float16).astype(np.float32) @ matrix.T), axis=1)
    return recall(ids[top[:, : truth.shape[1]]], truth)


def sizes_mb(library: Path) -> str:
    def total(pattern: str) -> float:
        return sum(p.stat().st_size for p in library.glob(pattern)) / 1e6

    catalog = total("catalog.sqlite") + total("catalog.sqlite-wal")
    return (
        f"catalog {catalog:,.0f} MB, graph {total('vectors/*.hnsw'):,.0f} MB, "
        f"float16 matrix {total('vectors/*.f16.npy'):,.0f} MB, "
        f"float16 slots {total('vectors/*.slots'):,.0f} MB"
    )


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        kind, args = sys.argv[2], sys.argv[3:]
        if kind == "build":
            result = child_build(Path(args[0]), Path(args[1]))
        elif kind == "upgrade":
            result = child_upgrade(Path(args[0]))
        else:
            result = child_measure(Path(args[0]), Path(args[1]), Path(args[2]))
        print(json.dumps(result))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, nargs="+", default=[100_000])
    parser.add_argument("--noise", type=float, default=0.6)
    parser.add_argument("--baseline-code", type=Path, help="a tree with the code to compare")
    parser.add_argument("--vectors-from", type=Path, help="an indexed Flickr8k-1k library")
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache/photosearch-bench")
    parser.add_argument("--work-dir", type=Path, help="where to build (default: tmp)")
    args = parser.parse_args()

    base = base_vectors(args.vectors_from, args.cache)
    _, queries = query_vectors(args.cache)
    print(
        f"{len(base)} real vectors ({base.shape[1]}-d), {len(queries)} caption queries, noise "
        f"{args.noise}; load average {os.getloadavg()[0]:.2f} (cpus: {os.cpu_count()})"
    )
    for count in args.photos:
        work = Path(tempfile.mkdtemp(prefix="bench-scale-", dir=args.work_dir))
        try:
            vectors = library_vectors(base, count, args.noise)
            np.save(work / "vectors.npy", vectors)
            np.save(work / "queries.npy", queries)
            truths = {k: exact_top(vectors, queries, k) for k in KS}
            del vectors
            library = work / "library"
            builder = args.baseline_code.resolve() if args.baseline_code else HERE
            kept = args.cache / f"library-{count}-{args.noise}-{builder.name}"
            if not kept.exists():
                built = run_child(builder, "build", str(kept), str(work / "vectors.npy"))
                print(
                    f"built {count:,} photos: catalog {built['catalog_s']:.1f} s, graph "
                    f"{built['graph_s']:.1f} s (kept in {kept})"
                )
            shutil.copytree(kept, library)
            print(f"\n{count:,} photos as built: {sizes_mb(library)}")
            rows = []
            if args.baseline_code:
                rows.append(("baseline", measure("baseline", builder, library, work, truths)))
            upgrade = run_child(HERE, "upgrade", str(library))
            print(
                f"first writable open by this tree (schema upgrade + one full comparison + "
                f"save): {upgrade['upgrade_s']:.2f} s"
            )
            print(f"after it: {sizes_mb(library)}")
            rows.append(("this tree", measure("this", HERE, library, work, truths)))
            f16 = float16_recall(library, queries, truths[10])
            if f16 is not None:
                print(
                    f"recall@10 ranking by the float16 matrix alone: {f16:.4f} (float32 exact: 1.0)"
                )
            keys = list(dict.fromkeys(key for _, figures in rows for key in figures))
            print(
                f"{'':<22}"
                + "".join(f"{label:>14}" for label, _ in rows)
                + ("         ratio" if len(rows) == 2 else "")
            )
            for key in keys:
                values = [figures.get(key) for _, figures in rows]
                line = f"{key:<22}" + "".join(
                    f"{v:14.3f}" if v is not None else f"{'-':>14}" for v in values
                )
                if len(rows) == 2 and values[0] and values[1] is not None:
                    line += f"{values[1] / values[0]:14.2f}"
                print(line)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    print(f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
