"""Cold `photosearch search` latency with and without a running process serving the library.

Runs the real CLI as a subprocess (a cold process each time, as a user typing in a shell),
first with the search service switched off (PHOTOSEARCH_NO_SERVICE=1: the baseline, in the
same run), then with `photosearch watch` running on the same library, and prints wall-clock
p50/p95, the searching process's own CPU time (user+sys, which other load on the machine
barely changes) and its peak RSS. Same-run baselines beside the served search: a bare
`python -c pass` (the floor of any Python command) and the served search asked after
importing the app, as the CLI did before it asked first (photosearch.cli.served_search).
Beside the in-process search, the floor of any in-process search: a fresh Python that only
loads the model's text tower through the app's own Encoder (numpy, ONNX Runtime, the
tokenizer, the session, unoptimised as a one-shot search makes it) and encodes the query,
with no catalog, no store and no search, then ends as the search command does (os._exit).

    python benchmarks/bench_search_service.py --library DIR [--runs 10] [--query TEXT] \
        [--bundle MODEL_DIR]      # default: the offline default model in the user's models

DIR must be an indexed library (e.g. one made by `photosearch index` on a photo folder).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from photosearch.paths import default_models_dir

# How each row starts Python: the CLI, the CLI importing the app before it asks, or nothing.
CLI = ["-m", "photosearch"]
APP_FIRST = [
    "-c",
    "import sys; import photosearch.library.facade, photosearch.cli.main as m; "
    "m.build_parser(); sys.exit(m.main(sys.argv[1:]))",
]
NOTHING = ["-c", "pass"]
QUERY_ONLY = [  # as a one-shot search opens it, and ending as `photosearch search` ends
    "-c",
    "import os, sys; from pathlib import Path; from photosearch.models.runtime import Encoder; "
    "Encoder(Path(sys.argv[1]), optimize_graphs=False).encode_texts([sys.argv[2]]); os._exit(0)",
]


@dataclass
class Runs:
    times: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    peak_rss_kb: int = 0


def _search(
    library: Path, query: str, served: bool, start: list[str], arguments: list[str] | None = None
) -> tuple[float, Any]:
    env = dict(os.environ)
    if not served:
        env["PHOTOSEARCH_NO_SERVICE"] = "1"
    if arguments is None:
        arguments = ["--library", str(library), "search", query, "-k", "20"]
    started = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, *start, *arguments],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _pid, status, usage = os.wait4(child.pid, 0)  # this child's own peak RSS (KB on Linux)
    elapsed = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"search failed with exit status {child.returncode}")
    return elapsed, usage


def _measure(
    library: Path,
    query: str,
    runs: int,
    served: bool,
    start: list[str] = CLI,
    arguments: list[str] | None = None,
) -> Runs:
    _search(library, query, served, start, arguments)  # page cache, the server's first search
    measured = Runs()
    for _ in range(runs):
        elapsed, usage = _search(library, query, served, start, arguments)
        measured.times.append(elapsed)
        measured.cpu.append(usage.ru_utime + usage.ru_stime)
        measured.peak_rss_kb = max(measured.peak_rss_kb, usage.ru_maxrss)
    return measured


def _row(label: str, runs: Runs) -> str:
    ordered = sorted(runs.times)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return (
        f"{label:<46} p50 {statistics.median(runs.times) * 1000:6.0f} ms  "
        f"p95 {p95 * 1000:6.0f} ms  CPU p50 {statistics.median(runs.cpu) * 1000:5.0f} ms  "
        f"peak RSS {runs.peak_rss_kb / 1024:4.0f} MB"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--library", type=Path, required=True)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--query", default="two dogs playing in the snow")
    parser.add_argument(
        "--bundle",
        type=Path,
        default=default_models_dir() / "conse-lite0-minilm",  # the offline default model
        help="the model bundle the library searches with (for the query-encoding floor)",
    )
    args = parser.parse_args()
    alone = _measure(args.library, args.query, args.runs, served=False)
    query_only = _measure(
        args.library, args.query, args.runs, False, QUERY_ONLY, [str(args.bundle), args.query]
    )
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
        served = _measure(args.library, args.query, args.runs, served=True)
        app_first = _measure(args.library, args.query, args.runs, True, APP_FIRST)
        floor = _measure(args.library, args.query, args.runs, True, NOTHING, [])
    finally:
        watcher.terminate()
        watcher.wait(timeout=60)
    print(f"library {args.library}, {args.runs} cold searches each, query {args.query!r}")
    print(_row("in-process (nothing running)", alone))
    print(_row("  encoding the query alone (its floor)", query_only))
    print(_row("answered by `photosearch watch`", served))
    print(_row("  the same, the app imported before asking", app_first))
    print(_row("  `python -c pass` (the floor)", floor))
    print(
        f"speed-up at p50: {statistics.median(alone.times) / statistics.median(served.times):.1f}x"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
