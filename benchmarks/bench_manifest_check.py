"""What checking a pulled bundle costs at every load: manifest (stat) vs hashing every file.

Builds an Immich-layout bundle whose visual weights sit in one external-data file of --mb
megabytes (random bytes: the cost of hashing does not depend on the values), installs it the
way `models pull` does (manifest.json with size, mtime and sha256 of every file), then times:

- ``read_bundle_config`` + ``bundle_identity`` with the manifest: one stat per file;
- the same after touching the large file (its mtime changed): that file is re-hashed;
- hashing every file, what an identity covering all files costs without a manifest.

    PYTHONPATH=.:plugins python benchmarks/bench_manifest_check.py [--mb 600]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mb", type=int, default=600)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    from photosearch.models.bundle import bundle_identity, read_bundle_config, sha256_file
    from photosearch.models.installing import write_manifest
    from tests.support.fake_hub import immich_style_bundle

    with tempfile.TemporaryDirectory() as scratch:
        bundle = immich_style_bundle(Path(scratch) / "bundle", ballast_bytes=1000)
        weights = bundle / "visual" / "ballast"
        with weights.open("wb") as handle:
            for _ in range(args.mb):
                handle.write(os.urandom(1_000_000))
        write_manifest(bundle, "bench", {"kind": "benchmark"})
        files = [p for p in bundle.rglob("*") if p.is_file() and p.name != "manifest.json"]
        total = sum(p.stat().st_size for p in files)

        def load() -> None:
            bundle_identity(bundle, read_bundle_config(bundle))

        manifest_s = _time(load, args.repeats)
        os.utime(weights)  # same bytes, new mtime: the next loads re-hash this one file
        touched_s = _time(load, args.repeats)
        hash_all_s = _time(lambda: [sha256_file(p) for p in files], args.repeats)
        print(f"bundle: {len(files)} files, {total / 1e6:.0f} MB")
        print(f"load with manifest (stat per file):  {manifest_s * 1e3:8.2f} ms")
        print(
            f"load after touching the {args.mb} MB file: {touched_s * 1e3:8.1f} ms "
            "(that file re-hashed)"
        )
        print(f"hash every file (no manifest):        {hash_all_s * 1e3:8.1f} ms")
        print(f"manifest check / hash all: {manifest_s / hash_all_s:.4f}")


def _time(work, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


if __name__ == "__main__":
    main()
