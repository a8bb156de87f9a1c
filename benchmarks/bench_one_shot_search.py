"""One search in a fresh process at 1M photos (issue 18 item 2, "< 1.5 s when nothing runs"):
loading the HNSW graph against exact search over the memory-mapped float16 matrix.

A cold `photosearch search` with nothing running searches once and exits. Loading a 1M graph
(1.7 GB) reads the whole file before the first query; one exact scan of the float16 matrix the
store writes beside it (vectors/vector_file.py) reads 0.77 GB and is the whole search. This
builds one store through the app's own VectorStore.save (graph, matrix, commit point), then
times the store's own open and searches, each in a new process, as the CLI's search runs them
(one search of k, then the duplicate folding's search of 2k and reading of their vectors;
folding compares perceptual hashes and reads only hash-near pairs' vectors, so this is an
upper bound on its store work):

- graph: VectorStore() as the app opens it (above EXACT_LIBRARY_ROWS searches load the graph);
- one-shot: VectorStore(one_shot=True): the matrix answers every search. Opened here without
  the library's reader of the catalog's vectors, it still checks the whole graph file on open
  (it re-scores from the graph file); `photosearch search` hands it that reader, so the graph
  is neither checked nor read: bench_million_search.py measures that, through a whole library.

The graph is built with a low ef_construction (--ef-construction, default 16) to keep the
build within minutes on 2 cores: a graph's load time depends on its size, not its quality
(the same M=16 layout as the app's). Its recall is not measured here (bench_scale.py does):
at ef_construction 16 it is poor, so "top k shared with the graph's" is low, and the exact
one-shot answer is the right one.

    nice -n 10 .venv/bin/python benchmarks/bench_one_shot_search.py --photos 1000000 \\
        --work-dir /tmp/one-shot      # built once there, reused by later runs
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from bench_scale import base_vectors, library_vectors, query_vectors

IDENTITY = "bench@1"


def build(directory: Path, photos: int, noise: float, ef_construction: int) -> None:
    import hnswlib

    from photosearch.vectors.store import HNSW_M, VectorStore

    vectors = library_vectors(
        base_vectors(None, Path.home() / ".cache/photosearch-bench"), photos, noise
    )
    started = time.perf_counter()
    graph = hnswlib.Index(space="ip", dim=vectors.shape[1])
    graph.init_index(max_elements=photos, ef_construction=ef_construction, M=HNSW_M)
    graph.add_items(vectors, np.arange(1, photos + 1), num_threads=os.cpu_count() or 1)
    store = VectorStore(directory, IDENTITY, vectors.shape[1])
    store._index = graph  # the graph built above; everything written by the store's own save
    store.save()
    print(f"built {photos:,} vectors in {time.perf_counter() - started:.0f} s")


def child(directory: Path, mode: str, k: int) -> dict:
    """One CLI-like search in this (fresh) process: open the store, search k, then the
    folding's search of twice k and the reading of those vectors (at most what
    search.duplicates.fold_similar reads). Seconds for each step, and peak RSS."""
    from photosearch.vectors.store import VectorStore

    meta = json.loads((directory / f"{IDENTITY}.json").read_text())
    query = np.load(Path.home() / ".cache/photosearch-bench/queries.npy")[7]
    steps: dict[str, float] = {}
    started = time.perf_counter()
    store = VectorStore(directory, IDENTITY, meta["dim"], one_shot=mode == "one-shot")
    steps["open"] = time.perf_counter() - started
    mark = time.perf_counter()
    found = store.search(query, k)
    steps[f"search k={k}"] = time.perf_counter() - mark
    mark = time.perf_counter()
    hits = store.search(query, 2 * k)
    store.get_vectors([pid for pid, _ in hits])  # at most: folding reads hash-near pairs' vectors
    steps[f"fold: search {2 * k}, read their vectors"] = time.perf_counter() - mark
    steps["total"] = time.perf_counter() - started
    return {
        "steps": steps,
        "graph_loaded": store.graph_loaded,
        "peak_rss_mb": _peak_rss_mb(),
        "top": [pid for pid, _ in found],
    }


def _peak_rss_mb() -> float:
    """This process's own peak (VmHWM starts afresh at exec, unlike ru_maxrss after a fork)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run_child(directory: Path, mode: str, k: int) -> dict:
    output = subprocess.run(
        [sys.executable, __file__, "--child", mode, "--work-dir", str(directory), "-k", str(k)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(output.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=1_000_000)
    parser.add_argument("--noise", type=float, default=0.6)
    parser.add_argument("--ef-construction", type=int, default=16)
    parser.add_argument("--work-dir", type=Path, required=True)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("-k", type=int, default=20)
    parser.add_argument("--child", default=None)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.work_dir, args.child, args.k)))
        return
    if not (args.work_dir / f"{IDENTITY}.json").exists():
        args.work_dir.mkdir(parents=True, exist_ok=True)
        build(args.work_dir, args.photos, args.noise, args.ef_construction)
    query_vectors(Path.home() / ".cache/photosearch-bench")  # cached query vectors
    graph = sum(p.stat().st_size for p in args.work_dir.glob("*.hnsw")) / 1e6
    matrix = sum(p.stat().st_size for p in args.work_dir.glob("*.f16.npy")) / 1e6
    print(
        f"{args.work_dir}: graph {graph:,.0f} MB, float16 matrix {matrix:,.0f} MB; "
        f"k={args.k}; {args.runs} fresh processes each (page cache warm after the first); "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    from photosearch.vectors import graph_integrity

    meta = json.loads((args.work_dir / f"{IDENTITY}.json").read_text())
    started = time.perf_counter()
    graph_integrity.verify(
        args.work_dir / f"{IDENTITY}.{meta['generation']}.hnsw", meta["checksum"]
    )
    verified = time.perf_counter() - started
    print(f"verifying the graph's checksum (part of every open): {verified:.3f} s")
    for mode in ("graph", "one-shot"):
        results = [run_child(args.work_dir, mode, args.k) for _ in range(args.runs)]
        steps = {
            name: statistics.median(r["steps"][name] for r in results)
            for name in results[0]["steps"]
        }
        shown = ", ".join(f"{name} {seconds:.3f} s" for name, seconds in steps.items())
        print(
            f"{mode:<9} {shown}; graph loaded: {results[0]['graph_loaded']}; "
            f"peak RSS {max(r['peak_rss_mb'] for r in results):,.0f} MB"
        )
        if mode == "graph":
            graph_top = results[0]["top"]
        else:
            same = len(set(graph_top) & set(results[0]["top"])) / len(graph_top)
            print(f"{'':<9} top {args.k} shared with the graph's: {same:.2f}")
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
