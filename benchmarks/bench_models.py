"""Speed, memory and size of installed models, measured through the app, side by side.

For every model named, in the same run and alternating model by model each round:

- indexing: ``photosearch index`` as a subprocess on the same N photos, in a fresh library
  each time (after ``folders add`` and ``models use NAME``, which are not timed). images/s is
  N over the wall time of that process (start-up, model load, scan, decode, encode, save), and
  the encode rate the app prints itself ("encoded N in S s") is shown beside it;
- peak RSS of that index process: the kernel's high-water mark from ``wait4`` (ru_maxrss; the
  index process starts no children, so this is the whole tree);
- text query latency: in-process through the Library API, ``Library.search(SearchQuery(text,
  k=20))`` one query at a time, as ``photosearch search`` does after start-up (text encoding +
  vector search + catalog lookup), on the library the last round indexed, after 5 warm-up
  queries; queries are the first caption of each ``val`` photo in captions.jsonl, interleaved
  model by model. The text encoder alone (``encode_texts([query])``) is timed too;
- bundle size: the bytes of every file in the bundle directory.

The machine's load average is printed before and after: figures taken while other work shares
the cores are slower than on an idle machine; compare models within one run.

    PYTHONPATH=.:plugins nice -n 5 .venv/bin/python benchmarks/bench_models.py \\
        conse-lite0-minilm ViT-B-32__random \\
        --models-dir ~/.local/share/photosearch/models --models-dir /tmp/measure/models
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# ../shared beside the main checkout, or two levels up from a worktree under wt/
DATA = next(
    (
        base / "shared" / "data" / "flickr8k-1k"
        for base in (ROOT.parent, ROOT.parent.parent)
        if (base / "shared" / "data" / "flickr8k-1k").is_dir()
    ),
    ROOT.parent / "shared" / "data" / "flickr8k-1k",
)
ENCODED = re.compile(r"encoded (\d+) in ([\d.]+)s")


@dataclass
class Figures:
    """Everything measured for one model; lists hold one entry per round or query."""

    name: str
    models_dir: Path
    size_bytes: int = 0
    index_rates: list[float] = field(default_factory=list)
    encode_rates: list[float] = field(default_factory=list)
    peak_rss: list[int] = field(default_factory=list)
    search_ms: list[float] = field(default_factory=list)
    text_ms: list[float] = field(default_factory=list)
    library: Path | None = None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("models", nargs="+", help="installed model names")
    parser.add_argument(
        "--models-dir",
        type=Path,
        action="append",
        default=None,
        help="where to look for the models (repeatable; default: the app's)",
    )
    parser.add_argument("--photos", type=Path, default=DATA / "images")
    parser.add_argument("--captions", type=Path, default=DATA / "captions.jsonl")
    parser.add_argument("-n", "--count", type=int, default=200, help="photos indexed per run")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument(
        "--threads", type=int, default=None, help="encoder threads (default: the app's default)"
    )
    args = parser.parse_args()

    from photosearch.library.facade import default_models_dir

    dirs = [d.expanduser() for d in (args.models_dir or [default_models_dir()])]
    figures = [Figures(name, _find(name, dirs)) for name in args.models]
    for entry in figures:
        entry.size_bytes = sum(
            p.stat().st_size for p in (entry.models_dir / entry.name).rglob("*") if p.is_file()
        )
    queries = _queries(args.captions, args.queries)
    load_before = os.getloadavg()
    print(
        f"{len(os.sched_getaffinity(0))} cores; load average before "
        f"{load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}; "
        f"{args.count} photos x {args.rounds} rounds; {len(queries)} queries"
    )

    with tempfile.TemporaryDirectory(prefix="bench-models-") as scratch:
        photos = Path(scratch) / "photos"
        photos.mkdir()
        for path in sorted(args.photos.glob("*.jpg"))[: args.count]:
            shutil.copy2(path, photos / path.name)
        for round_no in range(args.rounds):
            for entry in figures:
                library = Path(scratch) / f"lib-{entry.name}-{round_no}"
                rate, encode_rate, rss = _index(entry, library, photos, args.threads)
                entry.index_rates.append(rate)
                entry.encode_rates.append(encode_rate)
                entry.peak_rss.append(rss)
                entry.library = library
                print(
                    f"  round {round_no + 1} {entry.name}: {rate:.2f} images/s "
                    f"(encode {encode_rate:.2f}/s), peak RSS {rss / 2**20:.0f} MiB",
                    flush=True,
                )
        _query_latency(figures, queries, args.threads)

    load_after = os.getloadavg()
    _print_table(figures)
    print(f"load average after {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}")


def _find(name: str, dirs: list[Path]) -> Path:
    for directory in dirs:
        if (directory / name).is_dir():
            return directory
    raise SystemExit(f"{name} is not installed in {', '.join(map(str, dirs))}")


def _queries(captions: Path, count: int) -> list[str]:
    """The first caption of each val photo (never the test split)."""
    found = []
    with captions.open(encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            if record.get("split") == "val" and record.get("captions"):
                found.append(record["captions"][0])
    return found[:count]


def _cli(entry: Figures, library: Path, threads: int | None) -> list[str]:
    command = [
        sys.executable,
        "-m",
        "photosearch",
        "--models-dir",
        str(entry.models_dir),
        "--library",
        str(library),
    ]
    return command + (["--threads", str(threads)] if threads else [])


def _index(
    entry: Figures, library: Path, photos: Path, threads: int | None
) -> tuple[float, float, int]:
    """images/s of a fresh ``photosearch index``, the app's own encode rate, peak RSS bytes."""
    base = _cli(entry, library, threads)
    for setup in (["folders", "add", str(photos)], ["models", "use", entry.name]):
        subprocess.run(base + setup, check=True, capture_output=True)
    count = sum(1 for _ in photos.iterdir())
    started = time.perf_counter()
    # --no-read-text: an installed OCR plugin reads text after the encoding, the same cost for
    # every model, which would dilute the models' ratio (and its model's memory the peak RSS)
    process = subprocess.Popen(
        base + ["index", "--no-read-text"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output = process.stdout.read()  # type: ignore[union-attr]
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"index with {entry.name} failed:\n{output}")
    match = ENCODED.search(output)
    if not match or int(match.group(1)) != count:
        raise SystemExit(f"index with {entry.name} did not encode {count} photos:\n{output}")
    encode_rate = int(match.group(1)) / float(match.group(2))
    return count / seconds, encode_rate, usage.ru_maxrss * 1024


def _query_latency(figures: list[Figures], queries: list[str], threads: int | None) -> None:
    """Search one query at a time, model after model, on each model's indexed library."""
    from photosearch.library.facade import Library
    from photosearch.search.query import SearchQuery

    libraries = [
        Library(entry.library, models_dir=entry.models_dir, threads=threads) for entry in figures
    ]  # type: ignore[arg-type]
    try:
        encoders = [library.active().encoder for library in libraries]
        for query in queries[:5]:  # warm-up: sessions, arenas, hnsw pages
            for library, encoder in zip(libraries, encoders, strict=True):
                library.search(SearchQuery(text=query, k=20))
                encoder.encode_texts([query])
        for query in queries:
            for entry, library, encoder in zip(figures, libraries, encoders, strict=True):
                started = time.perf_counter()
                results = library.search(SearchQuery(text=query, k=20))
                entry.search_ms.append((time.perf_counter() - started) * 1000)
                if not results:
                    raise SystemExit(f"{entry.name} found nothing for {query!r}")
                started = time.perf_counter()
                encoder.encode_texts([query])
                entry.text_ms.append((time.perf_counter() - started) * 1000)
    finally:
        for library in libraries:
            library.close()


def _p(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def _print_table(figures: list[Figures]) -> None:
    header = (
        f"{'model':<22} {'bundle':>9} {'index img/s':>12} {'encode img/s':>13} "
        f"{'peak RSS':>9} {'search p50/p95 ms':>18} {'text enc p50/p95 ms':>20}"
    )
    print(header)
    print("-" * len(header))
    for entry in figures:
        rates = "/".join(f"{r:.1f}" for r in entry.index_rates)
        encode = "/".join(f"{r:.1f}" for r in entry.encode_rates)
        search = f"{_p(entry.search_ms, 0.5):.1f} / {_p(entry.search_ms, 0.95):.1f}"
        text = f"{_p(entry.text_ms, 0.5):.1f} / {_p(entry.text_ms, 0.95):.1f}"
        print(
            f"{entry.name:<22} {entry.size_bytes / 1e6:>6.1f} MB {rates:>12} {encode:>13} "
            f"{max(entry.peak_rss) / 2**20:>5.0f} MiB {search:>18} {text:>20}"
        )
    print(
        "index img/s and encode img/s: one figure per round; peak RSS: the highest round; "
        f"latency over {len(figures[0].search_ms)} queries per model"
    )


if __name__ == "__main__":
    main()
