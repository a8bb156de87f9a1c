"""What names and places (issue 20) add to a scan.

    python benchmarks/bench_words.py --photos 10000 100000 [--flickr ../shared/data/flickr8k-1k]

Prints, per catalog size: a full scan's name pass the first time (every photo's words written)
and again (nothing changed: the cost every later scan pays), next to the same run's read of every
photo's path (the floor any pass over the catalog pays). With --flickr: GPS header reads per
photo on real JPEGs (copies with GPS written into their EXIF) next to a full decode of the same
files, and the reverse geocoder's first-use load and per-position cost.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sqlite3
import tempfile
import time
from datetime import datetime
from pathlib import Path

from PIL import Image
from PIL.TiffImagePlugin import IFDRational

from photosearch.catalog.database import Catalog
from photosearch.files.places import Position, places_of, read_position
from photosearch.indexing.words import fill_name_words

WORDS = ["Paris", "trip", "Beach", "Holidays", "Grandma", "Birthday", "Lisbon", "Snow", "Dogs"]


def timed(action) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def build_catalog(path: Path, photos: int) -> Catalog:
    Catalog(path).close()
    rng = random.Random(1)
    now = datetime.now().isoformat(sep=" ")
    connection = sqlite3.connect(path)
    with connection:
        connection.execute(
            "INSERT INTO folders (id, path, added_at, online) VALUES "
            "(1, '/home/ana/Pictures', ?, 1)",
            (now,),
        )
        rows = []
        for index in range(photos):
            folder = f"{rng.randint(2005, 2024)} {rng.choice(WORDS)} {rng.choice(WORDS)}"
            name = rng.choice(
                [
                    f"IMG_{index:04d}.jpg",
                    f"PXL_2023010{index % 9 + 1}_{index:06d}.jpg",
                    f"{rng.choice(WORDS)}{rng.choice(WORDS)}{index}.JPG",
                ]
            )
            rows.append((index + 1, f"/home/ana/Pictures/{folder}/{name}", str(index), now, now))
        connection.executemany(
            "INSERT INTO photos (id, folder_id, path, size, mtime_ns, content_hash, file_time,"
            " status, added_at) VALUES (?, 1, ?, 1, 1, ?, ?, 'ok', ?)",
            rows,
        )
    connection.close()
    return Catalog(path)


def bench_names(sizes: list[int]) -> None:
    print("photos   first name pass   later scan's pass   read all paths (floor)")
    for size in sizes:
        with tempfile.TemporaryDirectory() as directory:
            catalog = build_catalog(Path(directory) / "catalog.sqlite", size)
            first = timed(lambda c=catalog: fill_name_words(c))
            later = timed(lambda c=catalog: fill_name_words(c))

            def floor(c: Catalog = catalog) -> None:
                with c.session() as session:
                    session.connection().exec_driver_sql("SELECT path FROM photos").fetchall()

            paths = timed(floor)
            catalog.close()
            print(f"{size:>7,}   {first:>12.2f} s   {later:>8.2f} s   {paths:>8.3f} s")


def _with_gps(source: Path, target: Path, rng: random.Random) -> None:
    image = Image.open(source)
    exif = image.getexif()
    exif[0x8825] = {
        1: "N",
        2: (IFDRational(rng.randint(30, 60), 1), IFDRational(0, 1), IFDRational(0, 1)),
        3: "E",
        4: (IFDRational(rng.randint(0, 30), 1), IFDRational(0, 1), IFDRational(0, 1)),
    }
    image.save(target, exif=exif, quality=90)


def bench_places(flickr: Path, count: int) -> None:
    sources = sorted((flickr / "images").glob("*.jpg"))[:count]
    rng = random.Random(2)
    with tempfile.TemporaryDirectory() as directory:
        copies = []
        for source in sources:
            copies.append(Path(directory) / source.name)
            _with_gps(source, copies[-1], rng)
        read = timed(lambda: [read_position(p) for p in copies])

        def decode() -> None:
            for path in copies:
                with Image.open(path) as image:
                    image.draft("RGB", (448, 448))
                    image.load()

        decoded = timed(decode)
        positions = [read_position(p) for p in copies]
        print(
            f"GPS header read: {read / len(copies) * 1000:.2f} ms/photo; draft decode of the "
            f"same photos (what encoding pays anyway): {decoded / len(copies) * 1000:.2f} "
            f"ms/photo ({len(copies)} Flickr8k JPEGs)"
        )
    load = timed(lambda: places_of([Position(38.7, -9.1)]))
    many = [Position(rng.uniform(-60, 70), rng.uniform(-180, 180)) for _ in range(10_000)]
    lookup = timed(lambda: places_of(many))
    located = sum(p is not None for p in positions)
    print(
        f"geocoder first use (loads GeoNames, two k-d trees): {load:.2f} s; "
        f"then {lookup / len(many) * 1e6:.0f} µs/position; {located}/{len(positions)} "
        "positions read back"
    )
    shutil.rmtree(directory, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--photos", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--flickr", type=Path, default=None)
    parser.add_argument("--count", type=int, default=300)
    args = parser.parse_args()
    bench_names(args.photos)
    if args.flickr is not None:
        bench_places(args.flickr, args.count)


if __name__ == "__main__":
    main()
