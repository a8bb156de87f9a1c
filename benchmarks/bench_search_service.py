"""Cold `photosearch search` latency with and without a running process serving the library.

Runs the real CLI as a subprocess (a cold process each time, as a user typing in a shell),
first with the search service switched off (PHOTOSEARCH_NO_SERVICE=1: the baseline, in the
same run), then with `photosearch watch` running on the same library, and prints wall-clock
p50/p95 and peak RSS of the searching process for both.

    python benchmarks/bench_search_service.py --library DIR [--runs 10] [--query TEXT]

DIR must be an indexed library (e.g. one made by `photosearch index` on a photo folder).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path


def _search(library: Path, query: str, served: bool) -> tuple[float, int]:
    env = dict(os.environ)
    if not served:
        env["PHOTOSEARCH_NO_SERVICE"] = "1"
    started = time.perf_counter()
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "photosearch",
            "--library",
            str(library),
            "search",
            query,
            "-k",
            "20",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _pid, status, usage = os.wait4(child.pid, 0)  # this child's own peak RSS (KB on Linux)
    elapsed = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"search failed with exit status {child.returncode}")
    return elapsed, usage.ru_maxrss


def _measure(library: Path, query: str, runs: int, served: bool) -> tuple[list[float], int]:
    _search(library, query, served)  # page cache and the server's first search warmed
    times, peak = [], 0
    for _ in range(runs):
        elapsed, rss = _search(library, query, served)
        times.append(elapsed)
        peak = max(peak, rss)
    return times, peak


def _row(label: str, times: list[float], rss_kb: int) -> str:
    ordered = sorted(times)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return (
        f"{label:<34} p50 {statistics.median(times) * 1000:7.0f} ms   "
        f"p95 {p95 * 1000:7.0f} ms   peak RSS {rss_kb / 1024:6.0f} MB"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--library", type=Path, required=True)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--query", default="two dogs playing in the snow")
    args = parser.parse_args()
    alone, alone_rss = _measure(args.library, args.query, args.runs, served=False)
    watcher = subprocess.Popen(
        [sys.executable, "-m", "photosearch", "--library", str(args.library), "watch"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert watcher.stdout is not None
        for line in watcher.stdout:  # serving starts once the watcher has caught up
            if "watching:" in line:
                break
        served, served_rss = _measure(args.library, args.query, args.runs, served=True)
    finally:
        watcher.terminate()
        watcher.wait(timeout=60)
    print(f"library {args.library}, {args.runs} cold searches each, query {args.query!r}")
    print(_row("in-process (nothing running)", alone, alone_rss))
    print(_row("answered by `photosearch watch`", served, served_rss))
    print(f"speed-up at p50: {statistics.median(alone) / statistics.median(served):.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
