"""Rescan cost against the file-system floor (issue 18, items 5 and 7).

Builds N tiny real JPEG files (one 8x8 image, each copy made unique by a JPEG comment so every
file has its own content hash) spread over folders in a temporary directory, then prints, from
the same run:

- the walk+stat floor: ``os.scandir`` over every folder and one ``stat`` per file;
- a first scan of the new files (``Library.scan()``: walk, hash, catalog; no encoding);
- an unchanged rescan (``Library.scan()`` again);
- each as a ratio to the floor, and first-scan files per second.

``--baseline-code DIR`` runs the same scans with the photosearch package found in DIR (e.g. a
checkout of main before a change) in a separate process, on the same files, so before and after
are measured side by side. Everything written is deleted at the end.

    nice -n 10 .venv/bin/python benchmarks/bench_rescan.py --files 100000 --baseline-code /work/main
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent


def tiny_jpeg() -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (120, 80, 40)).save(buffer, "JPEG", quality=80)
    return buffer.getvalue()


def build_files(root: Path, count: int, per_folder: int) -> None:
    """``count`` unique tiny JPEGs, ``per_folder`` to a folder, folders two levels deep."""
    jpeg = tiny_jpeg()
    for number in range(count):
        folder = root / f"year{number // (per_folder * 20):03d}" / f"day{number // per_folder:05d}"
        if number % per_folder == 0:
            folder.mkdir(parents=True, exist_ok=True)
        comment = b"photo %d" % number
        segment = b"\xff\xfe" + (len(comment) + 2).to_bytes(2, "big") + comment
        (folder / f"IMG_{number:07d}.jpg").write_bytes(jpeg[:2] + segment + jpeg[2:])


def walk_stat_floor(root: Path) -> tuple[float, int]:
    """Seconds to list every folder and stat every file (best of three), and the file count."""
    best, files = float("inf"), 0
    for _ in range(3):
        started = time.perf_counter()
        files, stack = 0, [str(root)]
        while stack:
            with os.scandir(stack.pop()) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=True):
                        stack.append(entry.path)
                    else:
                        entry.stat(follow_symlinks=True)
                        files += 1
        best = min(best, time.perf_counter() - started)
    return best, files


def child(photos: Path, library_dir: Path, rescans: int) -> None:
    """Runs in the process whose PYTHONPATH picks the code under test; prints one JSON line."""
    from photosearch.library.facade import Library

    with Library(library_dir) as library:
        library.add_folder(photos)
        started = time.perf_counter()
        first = library.scan()
        first_s = time.perf_counter() - started
        rescan_s = float("inf")
        for _ in range(rescans):
            started = time.perf_counter()
            again = library.scan()
            rescan_s = min(rescan_s, time.perf_counter() - started)
            assert not again.changes.any, "an unchanged rescan changed something"
    print(
        json.dumps(
            {
                "first_s": first_s,
                "added": len(first.changes.added),
                "rescan_s": rescan_s,
            }
        )
    )


def run_scans(code: Path, photos: Path, work: Path, rescans: int) -> dict[str, float]:
    library_dir = Path(tempfile.mkdtemp(prefix="lib-", dir=work))
    env = dict(os.environ, PYTHONPATH=f"{code}{os.pathsep}{code / 'plugins'}")
    done = subprocess.run(
        [sys.executable, __file__, "--child", str(photos), str(library_dir), str(rescans)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        cwd=code,
    )
    shutil.rmtree(library_dir, ignore_errors=True)
    if done.returncode != 0:
        raise SystemExit(f"scan with the code in {code} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        child(Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--per-folder", type=int, default=250)
    parser.add_argument("--rescans", type=int, default=2, help="unchanged rescans (best kept)")
    parser.add_argument("--baseline-code", type=Path, help="a tree with the code to compare")
    parser.add_argument("--work-dir", type=Path, help="where to build the files (default: tmp)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-rescan-", dir=args.work_dir))
    try:
        photos = work / "photos"
        started = time.perf_counter()
        build_files(photos, args.files, args.per_folder)
        print(
            f"built {args.files:,} tiny JPEGs in {time.perf_counter() - started:.1f} s; "
            f"load average {os.getloadavg()[0]:.2f} (cpus: {os.cpu_count()})"
        )
        trees = [("this tree", HERE)]
        if args.baseline_code:
            trees.insert(0, ("baseline", args.baseline_code.resolve()))
        print(
            f"{'code':<10} {'floor s':>8} {'first s':>8} {'files/s':>9} {'first/floor':>12} "
            f"{'rescan s':>9} {'rescan/floor':>13}"
        )
        for label, code in trees:
            floor_s, files = walk_stat_floor(photos)
            assert files == args.files, (files, args.files)
            got = run_scans(code, photos, work, args.rescans)
            assert got["added"] == args.files, got
            print(
                f"{label:<10} {floor_s:8.3f} {got['first_s']:8.2f} "
                f"{args.files / got['first_s']:9,.0f} {got['first_s'] / floor_s:12.1f} "
                f"{got['rescan_s']:9.3f} {got['rescan_s'] / floor_s:13.2f}"
            )
        print(f"load average at the end {os.getloadavg()[0]:.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
