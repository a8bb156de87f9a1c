"""Indexing speed on real photos: first index, unchanged rescan, touched rescan.

Baselines measured in the same run: a bare sequential decode+encode loop (what the pipeline's
overlap of decoding and encoding must beat) and a bare os.walk+stat of the folder (the floor for
an unchanged rescan).

    .venv/bin/python benchmarks/bench_index.py [--photos DIR] [--model NAME] [--limit N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from photosearch.files.imaging import decode_for_model
from photosearch.library.facade import Library

DEFAULT_PHOTOS = Path(__file__).resolve().parents[2] / "shared/data/flickr8k-1k/images"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, default=DEFAULT_PHOTOS)
    parser.add_argument("--model", default=None)
    parser.add_argument("--limit", type=int, default=1000)
    args = parser.parse_args()
    if not args.photos.is_dir():
        raise SystemExit(f"no photos at {args.photos}")
    with tempfile.TemporaryDirectory(prefix="bench-index-") as tmp:
        folder = Path(tmp) / "photos"
        folder.mkdir()
        for path in sorted(args.photos.iterdir())[: args.limit]:
            shutil.copy2(path, folder / path.name)
        count = len(list(folder.iterdir()))
        with Library(Path(tmp) / "library", model=args.model) as library:
            encoder = library.encoder
            encoder.warm_up()
            library.add_folder(folder)

            sample = sorted(folder.iterdir())[:200]
            started = time.perf_counter()
            for start in range(0, len(sample), 32):
                batch = [
                    decode_for_model(p, encoder.config.preprocessing).pixels
                    for p in sample[start : start + 32]
                ]
                encoder.encode_images(np.stack(batch))
            baseline_rate = len(sample) / (time.perf_counter() - started)

            first = library.index()
            first_rate = first.encoding.encoded / first.encoding.seconds

            started = time.perf_counter()
            rescan = library.index()
            rescan_s = time.perf_counter() - started

            started = time.perf_counter()
            walked = sum(len(files) for _, _, files in os.walk(folder))
            for path in folder.iterdir():
                path.stat()
            walk_s = time.perf_counter() - started

            for path in sorted(folder.iterdir())[:100]:
                os.utime(path)
            started = time.perf_counter()
            touched = library.index()
            touched_s = time.perf_counter() - started

    print(f"photos: {count} from {args.photos}, model {encoder.identity}, {os.cpu_count()} cores")
    print(f"sequential decode+encode baseline: {baseline_rate:.1f} photos/s (200 photos)")
    print(
        f"first index (pipelined):           {first_rate:.1f} photos/s, "
        f"{first.encoding.encoded} encoded, {first.encoding.failed} failed, "
        f"scan {first.scan.seconds:.2f}s + encode {first.encoding.seconds:.1f}s "
        f"({first_rate / baseline_rate:.2f}x baseline)"
    )
    print(
        f"unchanged rescan:                  {rescan_s:.3f}s, encoded "
        f"{rescan.encoding.encoded} (bare walk+stat of {walked} files: {walk_s:.3f}s)"
    )
    print(
        f"rescan after touching 100 files:   {touched_s:.3f}s, encoded "
        f"{touched.encoding.encoded}, touched {touched.scan.changes.touched}"
    )


if __name__ == "__main__":
    main()
