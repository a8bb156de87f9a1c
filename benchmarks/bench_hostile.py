"""Indexing a folder of hostile files beside normal photos: peak memory, wall time, slowest photo.

The hostile files: four 16-bit greyscale PNGs of ~9400x9400 (~180 KB each on disk, 177 MB each
decoded), progressive JPEGs with 6,000 scans (one decodes in seconds, one takes longer than the
time limit), a sparse 20 GB file named .jpg, a FIFO named .jpg and a 100 Mpx camera-sized JPEG.
They sit beside 100 normal photos (Flickr8k when ../shared/data is present, else copies of
resources/samples). The same run's baseline indexes the 100 normal photos alone.

Each index is a real `photosearch index` process with the default model; its whole process
tree (the CLI, the forkserver, the decode workers) is sampled every 20 ms for the peak of the
summed RSS. The slowest single photo is timed afterwards by decoding each hostile file alone
through the same DecodePool, under the same limits. Last, the cost of decoding in worker
processes (what makes the time limit possible) is compared with decoding in threads, on the
normal photos.

    .venv/bin/python benchmarks/bench_hostile.py [--photos DIR] [--workers N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.hostile_files import (  # noqa: E402
    write_flat_png,
    write_large_jpeg,
    write_many_scans_jpeg,
    write_sparse,
)

FLICKR = ROOT.parent / "shared/data/flickr8k-1k/images"
SAMPLES = ROOT / "resources/samples"


def normal_photos(target: Path, source: Path | None, count: int = 100) -> None:
    target.mkdir(parents=True)
    if source is None:
        source = FLICKR if FLICKR.is_dir() else SAMPLES
    photos = sorted(p for p in source.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    for number in range(count):
        original = photos[number % len(photos)]
        copy = target / f"{number:03d}-{original.name}"
        if number < len(photos):
            os.symlink(original, copy)
        else:  # fewer samples than wanted: copies with one changed byte, so none are duplicates
            data = bytearray(original.read_bytes())
            data[-3] ^= number & 0xFF
            copy.write_bytes(bytes(data))


def hostile_files(target: Path) -> dict[str, Path]:
    target.mkdir(parents=True)
    made = {}
    for i in range(4):
        made[f"16-bit PNG {9400 + i}px"] = write_flat_png(
            target / f"bomb16-{i}.png", 9400 + i, 9400 + i
        )
    made["6,000-scan JPEG 4096px"] = write_many_scans_jpeg(target / "scans-4k.jpg", 4096, 6000)
    made["6,000-scan JPEG 8192px"] = write_many_scans_jpeg(target / "scans-8k.jpg", 8192, 6000)
    made["sparse 20 GB .jpg"] = write_sparse(target / "sparse-20gb.jpg", 20 * 10**9)
    fifo = target / "fifo.jpg"
    os.mkfifo(fifo)
    made["FIFO .jpg"] = fifo
    made["100 Mpx JPEG"] = write_large_jpeg(target / "P1000001.jpg", 12_240, 8_160, mode="RGB")
    return made


def tree_rss_bytes(pid: int) -> int:
    """Summed RSS of ``pid`` and all its descendants (Linux /proc)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(entry))
            rss[int(entry)] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, IndexError, ValueError):
            continue
    total, stack = 0, [pid]
    while stack:
        current = stack.pop()
        total += rss.get(current, 0)
        stack.extend(children.get(current, []))
    return total


def index_once(folders: list[Path], work: Path) -> dict[str, float]:
    library = work / f"library-{time.monotonic_ns()}"
    command = [sys.executable, "-m", "photosearch", "--library", str(library)]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "plugins")]))
    for folder in folders:
        subprocess.run(
            [*command, "folders", "add", str(folder)],
            check=True,
            env=env,
            stdout=subprocess.DEVNULL,
        )
    started = time.perf_counter()
    process = subprocess.Popen(
        [*command, "index", "--json"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    peak = 0
    while process.poll() is None:
        peak = max(peak, tree_rss_bytes(process.pid))
        time.sleep(0.02)
    seconds = time.perf_counter() - started
    out = process.stdout.read()  # type: ignore[union-attr]
    if process.returncode != 0:
        raise SystemExit(f"index failed ({process.returncode}): {out}")
    status = subprocess.run(
        [*command, "status", "--failures", "20"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    import json

    summary = json.loads(out)
    return {
        "seconds": seconds,
        "peak_mb": peak / 2**20,
        "encoded": summary["encoded"],
        "failed": summary["failed"],
        "status": status,
    }


def slowest_photos(files: dict[str, Path], workers: int) -> list[tuple[str, float, str]]:
    from photosearch.files.decode_pool import DecodePool
    from photosearch.models.bundle import Preprocessing

    timings = []
    with DecodePool(workers, Preprocessing()) as pool:
        for name, path in files.items():
            started = time.perf_counter()
            result = pool.submit(str(path)).result()
            outcome = "decoded" if hasattr(result, "pixels") else f"refused: {result}"
            timings.append((name, time.perf_counter() - started, outcome))
    return sorted(timings, key=lambda row: -row[1])


def decode_throughput(folder: Path, workers: int) -> tuple[float, float, float]:
    """Photos/s decoding the normal photos in threads vs in the process pool; and the slowest
    normal photo in the pool."""
    from photosearch.files.decode_pool import DecodePool
    from photosearch.files.imaging import decode_for_model
    from photosearch.models.bundle import Preprocessing

    photos = sorted(str(p) for p in folder.iterdir())
    pre = Preprocessing()
    started = time.perf_counter()
    with ThreadPoolExecutor(workers) as threads:
        list(threads.map(lambda p: decode_for_model(Path(p), pre), photos))
    in_threads = len(photos) / (time.perf_counter() - started)
    with DecodePool(workers, pre) as pool:
        pool.submit(photos[0]).result()  # workers started, as in a real run
        started = time.perf_counter()
        for future in [pool.submit(p) for p in photos]:
            future.result()
        in_processes = len(photos) / (time.perf_counter() - started)
        slowest = 0.0
        for p in photos:  # one at a time: the latency of each photo alone
            one = time.perf_counter()
            pool.submit(p).result()
            slowest = max(slowest, time.perf_counter() - one)
    return in_threads, in_processes, slowest


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, default=None, help="normal photos to copy from")
    parser.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1))
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-hostile-"))
    try:
        normal, hostile = work / "normal", work / "hostile"
        normal_photos(normal, args.photos)
        files = hostile_files(hostile)
        on_disk = sum(p.stat().st_blocks * 512 for p in hostile.iterdir() if p.is_file())
        print(
            f"{len(files)} hostile files, {on_disk / 2**20:.1f} MB on disk; "
            f"decode workers: {args.workers} (cpu count {os.cpu_count()})"
        )

        baseline = index_once([normal], work)
        worst = index_once([normal, hostile], work)
        for name, run in (
            ("100 normal photos (baseline)", baseline),
            ("100 normal + hostile files", worst),
        ):
            print(
                f"{name:32s} wall {run['seconds']:6.1f} s  peak RSS (process tree) "
                f"{run['peak_mb']:6.0f} MB  encoded {run['encoded']:.0f}, "
                f"failed {run['failed']:.0f}"
            )
        print(
            f"ratio: wall x{worst['seconds'] / baseline['seconds']:.2f}, "
            f"peak RSS x{worst['peak_mb'] / baseline['peak_mb']:.2f}"
        )
        print("status of the hostile run, failures:")
        for line in worst["status"].splitlines():
            if line.startswith(("failed:", "skipped:", "photos:")):
                print("  " + line)

        print("each hostile file decoded alone through the DecodePool (same limits):")
        for name, seconds, outcome in slowest_photos(files, args.workers):
            print(f"  {seconds:6.2f} s  {name:24s} {outcome[:100]}")

        threads, processes, slowest = decode_throughput(normal, args.workers)
        print(
            f"decoding the 100 normal photos: {threads:.1f} photos/s in threads, "
            f"{processes:.1f} photos/s in worker processes (x{processes / threads:.2f}); "
            f"slowest normal photo alone in the pool: {slowest:.2f} s"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
