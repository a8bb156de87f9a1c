"""Check and time the frozen app (packaging/build.sh -> dist/photosearch/) with the real model.

    packaging/build.sh && .venv/bin/python benchmarks/bench_frozen.py [--models-dir DIR]

Runs the binary's CLI: --version, then indexes resources/samples into a temporary library with
the default model (already built in the models dir; the frozen app has no torch to build it)
and checks that "a cat" finds the cat photo first. Prints the timings and the dist size.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "packaging"))

from frozen_check import FROZEN, index_and_search  # noqa: E402

MODELS = Path.home() / ".local" / "share" / "photosearch" / "models"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binary", type=Path, default=FROZEN)
    parser.add_argument("--models-dir", type=Path, default=MODELS)
    parser.add_argument("--model", default="conse-lite0-minilm")
    parser.add_argument("--photos", type=Path, default=ROOT / "resources" / "samples")
    args = parser.parse_args()
    if not args.binary.is_file():
        print(f"no frozen app at {args.binary}; build it with packaging/build.sh")
        return 1
    size = subprocess.run(
        ["du", "-sh", str(args.binary.parent)], capture_output=True, text=True
    ).stdout.split()[0]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    with tempfile.TemporaryDirectory(prefix="frozen-") as work:
        run = index_and_search(
            args.binary,
            Path(work) / "library",
            args.models_dir,
            args.photos,
            "a cat",
            model=args.model,
            env=env,
        )
    print(f"binary: {args.binary} ({size} folder)")
    print(f"--version: {run.version}")
    print(f"index {args.photos} ({args.model}): {run.index_s:.1f} s (process start included)")
    print(f'search "a cat": {run.search_s:.2f} s (process start + model load included)')
    for rank, hit in enumerate(run.results, 1):
        print(f"  {rank}. {hit['score']:.3f} {Path(hit['path']).name}")
    best = Path(run.results[0]["path"]).name if run.results else None
    ok = best is not None and "cat" in best
    print("OK: the cat photo comes first" if ok else f"FAILED: first result is {best}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
