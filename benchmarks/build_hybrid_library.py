"""Build the constructed library of issue 20's measurement, and its query set, from Flickr8k-1k.

The 1,000 Flickr8k-1k photos (../shared/data/flickr8k-1k, never committed) are copied into named
folders ("2019 Paris trip", "Christmas at grandma's 2021", "Receipts", ...) with camera-style
file names; EXIF capture dates and GPS positions of real cities are written into the copies
(the originals are only read); 100 copies carry rendered sign text (words in varied fonts, sizes,
colours and angles); 100 photos get flipped, resized or recompressed near-duplicates beside
them. Everything is drawn from one seeded random generator, so a rerun builds the same library.

Written to OUT (default .bench/hybrid, git-ignored):
  photos/<folder>/<file>.jpg   the library to index
  manifest.json                every file's truth: source image, folder, date, place, text,
                               and which file it is a near-duplicate of; the duplicate groups
  queries.json                 queries with known answers, per kind (text, place, date, folder,
                               combined, visual), split "val" / "test"

Visual queries are Flickr captions of the photos: test photos' captions are test queries, train
and val photos' are validation queries; the other kinds are split by a seeded shuffle of the
queries. Tune on "val" only.

    .venv/bin/python benchmarks/build_hybrid_library.py [--out DIR] [--seed 20]
"""

from __future__ import annotations

import argparse
import io
import json
import math
import random
import re
import shutil
import sys
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont, ImageOps

ROOT = Path(__file__).resolve().parent.parent
# ../shared/data beside the project; from a git worktree under another folder, the nearest one up
_SHARED = next(
    (
        parent / "shared" / "data"
        for parent in ROOT.parents
        if (parent / "shared" / "data").is_dir()
    ),
    ROOT.parent / "shared" / "data",
)
FLICKR = _SHARED / "flickr8k-1k"

EXIF_IFD, GPS_IFD = 0x8769, 0x8825
DATETIME, DATETIME_ORIGINAL, MAKE, MODEL = 0x0132, 36867, 271, 272


@dataclass(frozen=True)
class City:
    """A real city at its GeoNames point (cities1000, the data offline reverse geocoders ship),
    so that a position a few tens of metres away is geocoded back to this city."""

    name: str
    country: str
    lat: float
    lon: float


PARIS = City("Paris", "France", 48.85341, 2.3488)
LISBON = City("Lisbon", "Portugal", 38.71667, -9.13333)
PORTO = City("Porto", "Portugal", 41.14961, -8.61099)
LAGOS = City("Lagos", "Portugal", 37.10202, -8.67422)
BARCELONA = City("Barcelona", "Spain", 41.38879, 2.15899)
ROME = City("Rome", "Italy", 41.89193, 12.51133)
NEW_YORK = City("New York City", "United States", 40.71427, -74.00597)
TOKYO = City("Tokyo", "Japan", 35.6895, 139.69171)
LONDON = City("London", "United Kingdom", 51.50853, -0.12574)
EDINBURGH = City("Edinburgh", "United Kingdom", 55.95206, -3.19648)
INNSBRUCK = City("Innsbruck", "Austria", 47.26266, 11.39454)
SYDNEY = City("Sydney", "Australia", -33.86785, 151.20732)
AMSTERDAM = City("Amsterdam", "Netherlands", 52.37403, 4.88969)
MANCHESTER = City("Manchester", "United Kingdom", 53.48095, -2.23743)


@dataclass(frozen=True)
class FolderPlan:
    name: str
    query: str  # how a person would name the folder in a search
    city: City | None
    start: datetime
    days: int  # capture dates fall in [start, start + days)
    weight: int  # relative share of the photos
    naming: str  # file name style: img, dsc, pxl, scan


FOLDERS = [
    FolderPlan("2019 Paris trip", "paris trip", PARIS, datetime(2019, 6, 8), 6, 6, "img"),
    FolderPlan(
        "Christmas at grandma's 2021",
        "christmas at grandma's",
        MANCHESTER,
        datetime(2021, 12, 24),
        3,
        5,
        "pxl",
    ),
    FolderPlan("Lisbon summer", "lisbon summer", LISBON, datetime(2022, 7, 20), 12, 6, "img"),
    FolderPlan("Receipts", "receipts", None, datetime(2023, 1, 3), 300, 2, "scan"),
    FolderPlan("Porto weekend 2023", "porto weekend", PORTO, datetime(2023, 3, 17), 3, 4, "img"),
    FolderPlan(
        "Summer holiday 2018", "summer holiday", BARCELONA, datetime(2018, 8, 4), 14, 7, "dsc"
    ),
    FolderPlan("Rome 2017", "rome", ROME, datetime(2017, 4, 12), 5, 5, "dsc"),
    FolderPlan(
        "New York marathon", "new york marathon", NEW_YORK, datetime(2016, 11, 5), 4, 5, "img"
    ),
    FolderPlan(
        "Tokyo cherry blossom", "tokyo cherry blossom", TOKYO, datetime(2020, 3, 28), 7, 5, "pxl"
    ),
    FolderPlan(
        "Kids birthday party 2020",
        "kids birthday party",
        LONDON,
        datetime(2020, 9, 12),
        1,
        4,
        "pxl",
    ),
    FolderPlan("Dog park", "dog park", LONDON, datetime(2021, 4, 1), 180, 5, "pxl"),
    FolderPlan("Beach house 2020", "beach house", LAGOS, datetime(2020, 8, 1), 10, 6, "img"),
    FolderPlan(
        "Wedding Anna & Tom", "anna and tom wedding", EDINBURGH, datetime(2019, 9, 21), 1, 5, "dsc"
    ),
    FolderPlan("Ski week 2022", "ski week", INNSBRUCK, datetime(2022, 2, 12), 7, 5, "img"),
    FolderPlan("Camera uploads", "camera uploads", LONDON, datetime(2015, 1, 1), 2500, 12, "pxl"),
    FolderPlan("Sydney 2015", "sydney", SYDNEY, datetime(2015, 12, 20), 10, 5, "dsc"),
    FolderPlan("Amsterdam bikes", "amsterdam bikes", AMSTERDAM, datetime(2018, 5, 3), 4, 4, "img"),
    FolderPlan("Screenshots", "screenshots", None, datetime(2021, 1, 1), 700, 2, "shot"),
    FolderPlan("Old family scans", "old family scans", None, datetime(2005, 6, 1), 900, 3, "scan"),
]

# Sign texts rendered into photos: each on two photos. Words chosen to look like real signs
# and not to be place or folder words of this library.
SIGNS = [
    "BAKERY",
    "PHARMACY",
    "NO PARKING",
    "EMERGENCY EXIT",
    "FREE WIFI",
    "OPEN 24 HOURS",
    "CAFE LUNA",
    "GATE 12",
    "PLATFORM 9",
    "CLEARANCE SALE",
    "HOTEL ASTORIA",
    "BUS STOP",
    "FRESH FLOWERS",
    "ICE CREAM",
    "BOOKSHOP",
    "TICKETS",
    "RESTROOMS",
    "DANGER HIGH VOLTAGE",
    "KEEP OFF THE GRASS",
    "PIZZERIA NAPOLI",
    "LAUNDROMAT",
    "CAR WASH",
    "POST OFFICE",
    "MUSEUM ENTRANCE",
    "FARMERS MARKET",
    "WIFI PASSWORD",
    "TAXI RANK",
    "BICYCLE REPAIR",
    "SUSHI BAR",
    "CINEMA",
    "HARDWARE STORE",
    "BARBER SHOP",
    "LIBRARY",
    "SWIMMING POOL",
    "PETROL STATION",
    "FISH AND CHIPS",
    "VEGAN KITCHEN",
    "JAZZ CLUB",
    "DENTIST",
    "FLORIST",
    "TATTOO STUDIO",
    "YOGA CLASSES",
    "TOY SHOP",
    "OPTICIAN",
    "BUTCHER",
    "CHEMIST",
    "ANTIQUES",
    "SURF SCHOOL",
    "VINYL RECORDS",
    "PET GROOMING",
]
FONT_CANDIDATES = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSerif-Bold.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSansCondensed-Bold.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSansMono-Bold.ttf",
    "/usr/share/fonts/opentype/urw-base35/NimbusSans-Bold.otf",
    "/usr/share/fonts/opentype/urw-base35/NimbusRoman-Regular.otf",
    "/usr/share/fonts/opentype/urw-base35/URWGothic-Demi.otf",
    "/usr/share/fonts/opentype/urw-base35/C059-Bold.otf",
    "/usr/share/fonts/opentype/urw-base35/P052-Roman.otf",
    "/usr/share/fonts/opentype/urw-base35/NimbusSansNarrow-Bold.otf",
    "/usr/share/fonts/truetype/noto/NotoSansMono-Regular.ttf",
]
VISUAL_WORDS = [
    "dog",
    "dogs",
    "beach",
    "snow",
    "water",
    "child",
    "children",
    "girl",
    "boy",
    "man",
    "woman",
    "bike",
    "ball",
    "grass",
    "street",
    "people",
    "running",
    "red",
]
MONTHS = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
]
DUPLICATED = 100
TEXT_PHOTOS = 100
VAL_SHARE = 0.4  # of the non-visual queries


@dataclass
class FileTruth:
    path: str  # relative to photos/
    source: str  # the Flickr8k image name
    split: str  # the source image's split
    folder: str
    taken_at: str
    city: str | None
    country: str | None
    lat: float | None
    lon: float | None
    text: str | None = None  # rendered sign text, readable in this file
    duplicate_of: str | None = None
    variant: str | None = None  # flip, resize, recompress
    captions: list[str] = field(default_factory=list)


def _fonts() -> list[Path]:
    found = [Path(p) for p in FONT_CANDIDATES if Path(p).is_file()]
    if not found:
        sys.exit("no TrueType/OpenType fonts found (install fonts-dejavu-core)")
    return found


def _file_name(style: str, number: int, when: datetime) -> str:
    if style == "dsc":
        return f"DSC{number:05d}.JPG"
    if style == "pxl":
        return f"PXL_{when:%Y%m%d_%H%M%S}{number % 1000:03d}.jpg"
    if style == "scan":
        return f"scan{number:04d}.jpg"
    if style == "shot":
        return f"Screenshot_{when:%Y-%m-%d-%H-%M-%S}.jpg"
    return f"IMG_{number:04d}.jpg"


def _dms(value: float) -> tuple[float, float, float]:
    value = abs(value)
    degrees = math.floor(value)
    minutes = math.floor((value - degrees) * 60)
    seconds = round(((value - degrees) * 60 - minutes) * 60, 4)
    return (float(degrees), float(minutes), seconds)


def _exif(
    when: datetime, lat: float | None, lon: float | None, camera: tuple[str, str]
) -> Image.Exif:
    exif = Image.Exif()
    exif[MAKE], exif[MODEL] = camera
    exif[DATETIME] = when.strftime("%Y:%m:%d %H:%M:%S")
    exif.get_ifd(EXIF_IFD)[DATETIME_ORIGINAL] = when.strftime("%Y:%m:%d %H:%M:%S")
    if lat is not None and lon is not None:
        gps = exif.get_ifd(GPS_IFD)
        gps[0] = b"\x02\x02\x00\x00"
        gps[1] = "N" if lat >= 0 else "S"
        gps[2] = _dms(lat)
        gps[3] = "E" if lon >= 0 else "W"
        gps[4] = _dms(lon)
    return exif


def _render_sign(
    image: Image.Image, text: str, fonts: list[Path], rng: random.Random
) -> Image.Image:
    """Draw ``text`` as a sign or a painted word: font, size, colours, angle and place drawn
    from ``rng``; kept inside the photo."""
    width, height = image.size
    size = int(min(width, height) * rng.uniform(0.07, 0.16))
    font = ImageFont.truetype(str(rng.choice(fonts)), size)
    probe = ImageDraw.Draw(Image.new("L", (1, 1)))
    left, top, right, bottom = probe.textbbox((0, 0), text, font=font)
    text_w, text_h = right - left, bottom - top
    pad = max(4, size // 3)
    layer = Image.new("RGBA", (text_w + 2 * pad, text_h + 2 * pad), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    background = tuple(rng.randrange(256) for _ in range(3))
    light = sum(background) / 3 > 128
    ink = (rng.randrange(0, 60),) * 3 if light else (rng.randrange(200, 256),) * 3
    if rng.random() < 0.7:  # a sign board
        draw.rounded_rectangle(
            (0, 0, layer.width - 1, layer.height - 1), radius=pad // 2, fill=(*background, 255)
        )
        draw.text((pad - left, pad - top), text, font=font, fill=(*ink, 255))
    else:  # painted letters with an outline
        draw.text(
            (pad - left, pad - top),
            text,
            font=font,
            fill=(*ink, 255),
            stroke_width=max(1, size // 15),
            stroke_fill=(*background, 255),
        )
    layer = layer.rotate(rng.uniform(-25, 25), expand=True, resample=Image.Resampling.BICUBIC)
    if layer.width > width * 0.95 or layer.height > height * 0.95:
        scale = min(width * 0.95 / layer.width, height * 0.95 / layer.height)
        layer = layer.resize(
            (max(1, int(layer.width * scale)), max(1, int(layer.height * scale))),
            Image.Resampling.LANCZOS,
        )
    x = rng.randrange(0, max(1, width - layer.width))
    y = rng.randrange(0, max(1, height - layer.height))
    out = image.convert("RGBA")
    out.alpha_composite(layer, (x, y))
    return out.convert("RGB")


def _variant(image: Image.Image, kind: str) -> tuple[Image.Image, int]:
    """A near-duplicate and the JPEG quality to save it at."""
    if kind == "flip":
        return ImageOps.mirror(image), 90
    if kind == "resize":
        size = (max(1, int(image.width * 0.6)), max(1, int(image.height * 0.6)))
        return image.resize(size, Image.Resampling.LANCZOS), 90
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=30)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"), 35


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9]+", text.lower()))


def build(out: Path, seed: int) -> tuple[list[FileTruth], list[dict]]:
    rng = random.Random(seed)
    fonts = _fonts()
    records = [json.loads(line) for line in (FLICKR / "captions.jsonl").read_text().splitlines()]
    records.sort(key=lambda r: r["image"])
    rng.shuffle(records)
    weights = [plan.weight for plan in FOLDERS]
    folder_of = rng.choices(range(len(FOLDERS)), weights=weights, k=len(records))
    for i in range(len(FOLDERS)):  # every folder gets photos
        folder_of[i] = i
    text_for = {}
    signs = [s for s in SIGNS for _ in range(2)][:TEXT_PHOTOS]
    rng.shuffle(signs)
    for index, sign in zip(rng.sample(range(len(records)), TEXT_PHOTOS), signs, strict=True):
        text_for[index] = sign
    duplicated = set(rng.sample(range(len(records)), DUPLICATED))
    cameras = [
        ("Apple", "iPhone 12"),
        ("Google", "Pixel 7"),
        ("Canon", "Canon EOS 80D"),
        ("SONY", "ILCE-6400"),
    ]

    photos = out / "photos"
    if photos.exists():
        shutil.rmtree(photos)
    truths: list[FileTruth] = []
    numbers: dict[int, int] = defaultdict(lambda: 100)
    for index, record in enumerate(records):
        plan = FOLDERS[folder_of[index]]
        numbers[folder_of[index]] += rng.randrange(1, 7)
        when = plan.start + timedelta(seconds=rng.randrange(plan.days * 86400))
        when = when.replace(hour=rng.randrange(8, 22)) if plan.days > 1 else when
        lat = lon = None
        if plan.city is not None:
            lat = plan.city.lat + rng.uniform(-0.0007, 0.0007)
            lon = plan.city.lon + rng.uniform(-0.0007, 0.0007)
        name = _file_name(plan.naming, numbers[folder_of[index]], when)
        relative = f"{plan.name}/{name}"
        target = photos / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        with Image.open(FLICKR / record["image"]) as original:
            image = original.convert("RGB")
        text = text_for.get(index)
        if text:
            image = _render_sign(image, text, fonts, rng)
        camera = rng.choice(cameras)
        image.save(target, "JPEG", quality=92, exif=_exif(when, lat, lon, camera))
        base = FileTruth(
            path=relative,
            source=Path(record["image"]).name,
            split=record["split"],
            folder=plan.name,
            taken_at=when.isoformat(),
            city=plan.city.name if plan.city else None,
            country=plan.city.country if plan.city else None,
            lat=lat,
            lon=lon,
            text=text,
            captions=record["captions"],
        )
        truths.append(base)
        if index in duplicated:
            kinds = ["resize", "recompress"] if text else ["flip", "resize", "recompress"]
            for copy, kind in enumerate(rng.sample(kinds, rng.choice([1, 1, 2])), 1):
                variant, quality = _variant(image, kind)
                stem, suffix = name.rsplit(".", 1)
                copy_path = f"{plan.name}/{stem} ({copy}).{suffix}"
                variant.save(
                    photos / copy_path, "JPEG", quality=quality, exif=_exif(when, lat, lon, camera)
                )
                truths.append(
                    FileTruth(
                        path=copy_path,
                        source=base.source,
                        split=base.split,
                        folder=base.folder,
                        taken_at=base.taken_at,
                        city=base.city,
                        country=base.country,
                        lat=lat,
                        lon=lon,
                        text=text if kind != "flip" else None,
                        duplicate_of=relative,
                        variant=kind,
                        captions=base.captions,
                    )
                )
    return truths, make_queries(truths, rng)


def make_queries(truths: list[FileTruth], rng: random.Random) -> list[dict]:
    """Queries with their known answers (relative paths), per kind."""
    queries: list[dict] = []

    def add(kind: str, text: str, relevant: list[FileTruth], split: str | None = None) -> None:
        if relevant:
            queries.append(
                {
                    "kind": kind,
                    "text": text,
                    "split": split,
                    "relevant": sorted(t.path for t in relevant),
                }
            )

    # text in photo: the sign's words
    for sign in sorted({t.text for t in truths if t.text}):
        add("text", sign.lower(), [t for t in truths if t.text == sign])
    # places: cities and countries (with GPS), and "WORD in PLACE"
    by_city: dict[str, list[FileTruth]] = defaultdict(list)
    by_country: dict[str, list[FileTruth]] = defaultdict(list)
    for t in truths:
        if t.city:
            by_city[t.city].append(t)
            by_country[t.country].append(t)  # type: ignore[index]
    for place, group in [*sorted(by_city.items()), *sorted(by_country.items())]:
        add("place", place.lower(), group)
        for word in VISUAL_WORDS:
            hits = [t for t in group if any(word in _words(c) for c in t.captions)]
            if 3 <= len(hits) <= 15:
                add("place+visual", f"{word} in {place.lower()}", hits)
    # dates: years, month + year, and "WORD YEAR"
    by_year: dict[int, list[FileTruth]] = defaultdict(list)
    by_month: dict[tuple[int, int], list[FileTruth]] = defaultdict(list)
    for t in truths:
        when = datetime.fromisoformat(t.taken_at)
        by_year[when.year].append(t)
        by_month[(when.year, when.month)].append(t)
    for year, group in sorted(by_year.items()):
        add("date", str(year), group)
        for word in VISUAL_WORDS:
            hits = [t for t in group if any(word in _words(c) for c in t.captions)]
            if 3 <= len(hits) <= 15:
                add("date+visual", f"{word} {year}", hits)
    for (year, month), group in sorted(by_month.items()):
        if len(group) >= 10:
            add("date", f"{MONTHS[month - 1]} {year}", group)
    # folder names, alone and with a visual word
    for plan in FOLDERS:
        group = [t for t in truths if t.folder == plan.name]
        add("folder", plan.query, group)
        for word in VISUAL_WORDS:
            hits = [t for t in group if any(word in _words(c) for c in t.captions)]
            if 3 <= len(hits) <= 15:
                add("folder+visual", f"{word} {plan.query}", hits)
    rng.shuffle(queries)
    for number, query in enumerate(queries):
        query["split"] = "val" if number < len(queries) * VAL_SHARE else "test"
    # plain visual queries: one caption of each photo (its copies are answers too); test
    # photos' captions are test queries, train and val photos' are validation queries (both
    # splits are for tuning), so the rule "plain visual queries must not get worse" is checked
    # on 700 validation queries rather than 100
    by_source: dict[str, list[FileTruth]] = defaultdict(list)
    for t in truths:
        by_source[t.source].append(t)
    for _source, group in sorted(by_source.items()):
        split = "test" if group[0].split == "test" else "val"
        add("visual", rng.choice(group[0].captions).strip(" ."), group, split)
    for number, query in enumerate(queries):
        query["id"] = number
    return queries


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / ".bench" / "hybrid")
    parser.add_argument("--seed", type=int, default=20)
    args = parser.parse_args(argv)
    if not (FLICKR / "captions.jsonl").is_file():
        print(f"skipped: Flickr8k-1k is not at {FLICKR} (see ../shared/data/README.md)")
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    truths, queries = build(args.out, args.seed)
    groups: dict[str, list[str]] = defaultdict(list)
    for t in truths:
        if t.duplicate_of:
            groups[t.duplicate_of].append(t.path)
    manifest = {
        "seed": args.seed,
        "files": [asdict(t) for t in truths],
        "duplicate_groups": [[original, *copies] for original, copies in sorted(groups.items())],
    }
    (args.out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    (args.out / "queries.json").write_text(json.dumps(queries, indent=1))
    kinds: dict[tuple[str, str], int] = defaultdict(int)
    for query in queries:
        kinds[(query["kind"], query["split"])] += 1
    print(
        f"{len(truths)} files ({sum(1 for t in truths if t.text)} with text, "
        f"{len(groups)} duplicate groups) in {args.out / 'photos'}"
    )
    for (kind, split), count in sorted(kinds.items()):
        print(f"  {kind:14s} {split:5s} {count:4d} queries")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
