"""Watcher figures: time from a photo landing in a watched folder to being searchable (p50/p95,
200 files copied at once and files arriving one by one), and the CPU an idle watcher uses over a
10,000-photo library.

    .venv/bin/python benchmarks/bench_watch.py [--model tiny|NAME] [--idle-files 10000]

``tiny`` (default) builds the test bundle; another name uses an installed bundle from
$PHOTOSEARCH_MODELS (e.g. the default model after `photosearch models build`).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from photosearch.catalog import Photo
from photosearch.library.facade import Library, default_models_dir
from photosearch.library.watch_service import WatchService, WatchStatus


def make_images(folder: Path, count: int, size: int, seed: int, per_dir: int = 0) -> list[Path]:
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(count):
        sub = folder / f"d{i // per_dir:03d}" if per_dir else folder
        sub.mkdir(parents=True, exist_ok=True)
        path = sub / f"img{i:05d}.jpg"
        Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


class SearchableClock:
    """Records when each landed path first has a vector in the live store."""

    def __init__(self, library: Library):
        self.library = library
        self.landed: dict[str, float] = {}
        self.searchable: dict[str, float] = {}
        self.lock = threading.Lock()
        self.done = threading.Event()

    def on_status(self, status: WatchStatus) -> None:
        if status.last_batch is None:
            return
        now = time.monotonic()
        with self.lock:
            waiting = [p for p in self.landed if p not in self.searchable]
        stores = self.library.models.open_stores()
        if not waiting or not stores:
            return
        live = stores[0].live_ids()  # the active model's
        with self.library.catalog.session() as session:
            rows = session.execute(select(Photo.path, Photo.id).where(Photo.path.in_(waiting)))
            for path, pid in rows:
                if pid in live:
                    self.searchable.setdefault(path, now)
        if len(self.searchable) >= len(self.landed):
            self.done.set()

    def latencies(self) -> list[float]:
        return sorted(
            self.searchable[p] - t for p, t in self.landed.items() if p in self.searchable
        )


def percentiles(values: list[float]) -> str:
    if not values:
        return "no data"
    p95 = values[min(len(values) - 1, int(round(0.95 * (len(values) - 1))))]
    return (
        f"p50 {statistics.median(values) * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms, "
        f"max {values[-1] * 1000:.0f} ms (n={len(values)})"
    )


def open_library(base: Path, args: argparse.Namespace) -> Library:
    return Library(base / "library", models_dir=args.models_dir, model=args.model, threads=1)


def bench_latency(base: Path, args: argparse.Namespace) -> None:
    photos = base / "photos"
    photos.mkdir()
    staging = base / "staging"
    burst = make_images(staging / "burst", 200, 96, seed=1)
    trickle = make_images(staging / "trickle", args.trickle, 96, seed=2)
    with open_library(base, args) as library:
        library.add_folder(photos)
        clock = SearchableClock(library)
        service = WatchService(library, on_status=clock.on_status)
        service.start()
        assert service.wait_idle(60)
        (photos / "burst").mkdir()
        for source in burst:  # a copy of 200 files, as fast as the disk takes it
            target = photos / "burst" / source.name
            shutil.copyfile(source, target)
            clock.landed[str(target)] = time.monotonic()
        clock.done.wait(120)
        print(f"200 files copied at once -> searchable: {percentiles(clock.latencies())}")
        clock.landed.clear()
        clock.searchable.clear()
        clock.done.clear()
        for source in trickle:  # one every 1.5 s, each copied in place
            target = photos / source.name
            shutil.copyfile(source, target)
            with clock.lock:
                clock.landed[str(target)] = time.monotonic()
            time.sleep(1.5)
        clock.done.wait(30)
        print(
            f"{args.trickle} files one by one (1.5 s apart) -> searchable: "
            f"{percentiles(clock.latencies())}"
        )
        service.stop()


def bench_idle(base: Path, args: argparse.Namespace) -> None:
    photos = base / "idle-photos"
    started = time.monotonic()
    make_images(photos, args.idle_files, 8, seed=3, per_dir=100)
    print(f"generated {args.idle_files} images in {time.monotonic() - started:.1f}s")
    with Library(
        base / "idle-library", models_dir=args.models_dir, model=args.model, threads=1
    ) as library:
        library.add_folder(photos)
        started = time.monotonic()
        report = library.index()
        print(f"indexed {report.encoding.encoded} in {time.monotonic() - started:.1f}s")
        service = WatchService(library)
        started = time.monotonic()
        service.start()
        assert service.wait_idle(300)
        print(
            f"watcher start + catch-up over {args.idle_files} photos: "
            f"{time.monotonic() - started:.2f}s"
        )
        time.sleep(1.0)
        before, wall = os.times(), time.monotonic()
        time.sleep(args.idle_seconds)
        after, elapsed = os.times(), time.monotonic() - wall
        cpu = (after.user - before.user) + (after.system - before.system)
        print(
            f"idle watcher over {args.idle_files} photos: {cpu * 1000:.0f} ms CPU in "
            f"{elapsed:.1f}s ({100 * cpu / elapsed:.2f}% of one core)"
        )
        service.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--idle-files", type=int, default=10_000)
    parser.add_argument("--idle-seconds", type=float, default=20.0)
    parser.add_argument("--trickle", type=int, default=20)
    parser.add_argument("--skip-idle", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-watch-") as tmp:
        base = Path(tmp)
        if args.model == "tiny":
            from tests.support.tiny_bundle import build_tiny_bundle

            args.models_dir = base / "models"
            build_tiny_bundle(args.models_dir / "tiny", name="tiny")
        else:
            args.models_dir = default_models_dir()
        print(f"model {args.model}, {os.cpu_count()} CPUs")
        bench_latency(base, args)
        if not args.skip_idle:
            bench_idle(base, args)


if __name__ == "__main__":
    main()
