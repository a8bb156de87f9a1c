"""Memory of an indexing run: process peak and RSS left afterwards, per encoder batch size.

Each variant indexes the same photos into a fresh library in its own process (so peaks do not
mix). The baseline in the same run is batch 32 without releasing the encoder's arena (the
behaviour before the arena release); the shipped setting is the default batch with release.

    .venv/bin/python benchmarks/bench_memory.py [--photos DIR] [--model NAME]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PHOTOS = ROOT.parent / "shared/data/flickr8k-1k/images"


def rss_mb() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) // 1024
    return -1


def child(photos: Path, model: str | None, batch: int | None, release: bool) -> None:
    """Index ``photos`` once and print one JSON line of figures."""
    from photosearch.library.facade import Library
    from photosearch.models.runtime import Encoder

    if not release:
        Encoder.release_memory = lambda self: None  # the baseline: arena kept
    with tempfile.TemporaryDirectory() as work, Library(Path(work), model=model) as library:
        library.add_folder(photos)
        started = time.perf_counter()
        report = library.index(batch_size=batch)
        seconds = time.perf_counter() - started
        print(
            json.dumps(
                {
                    "encoded": report.encoding.encoded,
                    "seconds": round(seconds, 1),
                    "rss_after_mb": rss_mb(),
                    "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
                }
            )
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, default=DEFAULT_PHOTOS)
    parser.add_argument("--model")
    parser.add_argument("--child", nargs=2, metavar=("BATCH", "RELEASE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        batch = int(args.child[0]) or None
        child(args.photos, args.model, batch, args.child[1] == "1")
        return 0
    if not args.photos.is_dir():
        print(f"no photos at {args.photos}")
        return 1
    variants = [
        ("baseline: batch 32, arena kept", "32", "0"),
        ("batch 32, arena released", "32", "1"),
        ("shipped: default batch, arena released", "0", "1"),
    ]
    print(f"indexing {args.photos} in a fresh library per variant")
    for label, batch, release in variants:
        command = [
            sys.executable,
            __file__,
            "--photos",
            str(args.photos),
            "--child",
            batch,
            release,
        ] + (["--model", args.model] if args.model else [])
        run = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
        if run.returncode != 0:
            print(f"{label}: failed\n{run.stderr[-2000:]}")
            return 1
        figures = json.loads(run.stdout.strip().splitlines()[-1])
        print(
            f"{label:42s} {figures['encoded']:5d} photos in {figures['seconds']:5.1f} s  "
            f"peak {figures['peak_mb']:5d} MB  RSS after {figures['rss_after_mb']:5d} MB"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
