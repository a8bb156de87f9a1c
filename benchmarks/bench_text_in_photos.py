"""Text in photos: what the gate costs and lets through, OCR word precision/recall, and indexing
throughput with and without the reading stage.

Data (rebuilt by this script, nothing is saved): Flickr8k-1k photos of the train and val splits
only (tuning data; never test). ``--rendered`` of them get words drawn on them (recipe below:
seeded, so every run draws the same words); ``--plain`` others are used as they are (real
photos, a few of which show real text: signs, shirts, numbers). For each gate size the script
reports the gate's cost per photo, the share of plain photos it passes (the full pass then
runs on them) and the share of rendered photos it passes (what it misses is lost text); then the
full pass's cost and the word precision/recall on the rendered photos, with and without the
gate. Last, a library of ``--library-photos`` photos is indexed with the default model, then
read: encoding alone vs encoding plus reading, in photos per second.

    nice .venv/bin/python benchmarks/bench_text_in_photos.py [--data DIR] [--plain 300]
        [--rendered 100] [--gates 256,320,480] [--library-photos 200]
    nice .venv/bin/python benchmarks/bench_text_in_photos.py --constructed DIR [--plain 200]

``--constructed DIR`` measures on issue 20's constructed library instead (built by
benchmarks/build_hybrid_library.py, whose manifest.json gives each photo's rendered text): the
gate's verdict and the plugin's words for its photos with text, the gate alone for ``--plain``
of the others. Its photos come from every split; nothing is tuned on them.

Recipe of a rendered photo (seed = photo index): 1-3 words from WORDS; a font from the DejaVu
and Noto families found on the machine (else Pillow's own); a text height of 5-14% of the
photo's height; an angle of -20..20 degrees; either dark words on a pale sign (60%) or pale
words with a dark outline straight on the photo (40%); placed at random inside the photo.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from photosearch_ocr.extractor import FULL_MIN_SIDE, GATE_SIDE, RapidOcrExtractor
from PIL import Image, ImageDraw, ImageFont

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "flickr8k-1k"
_WORD_LIST = """open closed exit entrance sale coffee hotel parking station market bakery pizza bank
pharmacy museum library school police taxi airport welcome danger stop cafe restaurant
garden beach river park street avenue road bridge tower castle church theatre cinema music
festival summer winter spring autumn holiday birthday wedding party family friends happy
love paris london berlin tokyo rome madrid lisbon vienna prague dublin oslo zurich boston
chicago denver seattle sydney toronto montreal fresh bread cheese wine beer tea juice milk
fruit flowers books toys shoes fashion sport fitness dance yoga surf ski hiking camping
fishing sailing harbour island mountain valley forest desert north south east west centre
platform gate ticket office information toilets lift stairs floor room kitchen password wifi
router receipt total invoice amount cash card change thanks visit again"""
WORDS = _WORD_LIST.split()
FONT_DIRS = [Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/truetype/noto")]
_WORD = re.compile(r"\w+", re.UNICODE)


def fonts() -> list[Path | None]:
    found: list[Path | None] = [
        p for d in FONT_DIRS if d.is_dir() for p in sorted(d.glob("*.ttf")) if "Math" not in p.name
    ]
    return found or [None]  # None: Pillow's own font


def render(
    photo: Image.Image, seed: int, font_files: list[Path | None]
) -> tuple[Image.Image, set[str], float]:
    """The recipe above: ``photo`` with 1-3 words drawn on it, the words, and the text height
    as a share of the photo's height."""
    rng = random.Random(seed)
    words = [rng.choice(WORDS) for _ in range(rng.randint(1, 3))]
    text = " ".join(words).upper() if rng.random() < 0.5 else " ".join(words)
    height = max(12, int(photo.height * rng.uniform(0.05, 0.14)))
    font_file = rng.choice(font_files)
    font = (
        ImageFont.truetype(str(font_file), height)
        if font_file
        else ImageFont.load_default(size=height)
    )
    left, top, right, bottom = font.getbbox(text)
    pad = height // 3
    layer = Image.new("RGBA", (right - left + 2 * pad, bottom - top + 2 * pad), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    if rng.random() < 0.6:
        plate = tuple(rng.randint(200, 255) for _ in range(3)) + (255,)
        ink = tuple(rng.randint(0, 60) for _ in range(3))
        draw.rectangle((0, 0, *layer.size), fill=plate)
        draw.text((pad - left, pad - top), text, font=font, fill=ink)
    else:
        ink = tuple(rng.randint(210, 255) for _ in range(3))
        draw.text(
            (pad - left, pad - top),
            text,
            font=font,
            fill=ink,
            stroke_width=max(1, height // 15),
            stroke_fill=(0, 0, 0),
        )
    layer = layer.rotate(rng.uniform(-20, 20), expand=True, resample=Image.Resampling.BICUBIC)
    scale = min(1.0, 0.95 * photo.width / layer.width, 0.95 * photo.height / layer.height)
    if scale < 1.0:
        layer = layer.resize(
            (max(1, int(layer.width * scale)), max(1, int(layer.height * scale))),
            Image.Resampling.LANCZOS,
        )
    out = photo.convert("RGB").copy()
    x = rng.randint(0, max(0, out.width - layer.width))
    y = rng.randint(0, max(0, out.height - layer.height))
    out.paste(layer, (x, y), layer)
    return out, {w.lower() for w in words}, height / photo.height


def words_in(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if len(w) > 1}


def tuning_photos(data: Path) -> list[Path]:
    rows = [json.loads(line) for line in (data / "captions.jsonl").read_text().splitlines()]
    return [data / r["image"] for r in rows if r["split"] in ("train", "val")]


def bgr(image: Image.Image) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(image.convert("RGB"))[:, :, ::-1])


def timed(function, *args):
    started = time.perf_counter()
    result = function(*args)
    return result, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--plain", type=int, default=300)
    parser.add_argument("--rendered", type=int, default=100)
    parser.add_argument("--gates", default="256,320,480")
    parser.add_argument(
        "--full-sides",
        default="480,736",
        help="full pass: short side the detection input is enlarged to",
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--library-photos", type=int, default=200)
    parser.add_argument("--constructed", type=Path, default=None, metavar="DIR")
    args = parser.parse_args()
    if args.constructed is not None:
        constructed(args.constructed, args.plain, args.threads)
        return
    if not (args.data / "captions.jsonl").is_file():
        raise SystemExit(f"no Flickr8k-1k data at {args.data} (see ../shared/data/README.md)")
    photos = tuning_photos(args.data)
    random.Random(0).shuffle(photos)
    font_files = fonts()
    rendered = [render(Image.open(p), i, font_files) for i, p in enumerate(photos[: args.rendered])]
    plain = [
        Image.open(p).convert("RGB") for p in photos[args.rendered : args.rendered + args.plain]
    ]
    print(
        f"{len(rendered)} rendered-word photos, {len(plain)} plain photos (train+val), "
        f"{len(font_files)} fonts; timings on a shared, busy machine: compare within the run"
    )
    ocr = RapidOcrExtractor(threads=args.threads)
    ocr.finds_text(bgr(plain[0]))  # load the models outside the timings

    print("\ngate (detection model at N px, long side)")
    print(f"{'N':>5} {'ms/photo':>9} {'plain passed':>13} {'rendered passed':>16}")
    gate_passes: dict[int, list[bool]] = {}
    for side in [int(s) for s in args.gates.split(",")]:
        ocr.gate_side = side
        costs, plain_pass, text_pass = [], [], []
        for image in plain:
            passed, seconds = timed(ocr.finds_text, bgr(image))
            costs.append(seconds)
            plain_pass.append(passed)
        for image, _, _ in rendered:
            passed, seconds = timed(ocr.finds_text, bgr(image))
            costs.append(seconds)
            text_pass.append(passed)
        gate_passes[side] = text_pass
        missed = [
            100 * frac for (_, _, frac), ok in zip(rendered, text_pass, strict=True) if not ok
        ]
        print(
            f"{side:>5} {1000 * statistics.median(costs):>9.1f} "
            f"{100 * np.mean(plain_pass):>12.1f}% {100 * np.mean(text_pass):>15.1f}%"
            + (
                f"   missed: text {min(missed):.0f}-{max(missed):.0f}% of the photo's height "
                f"(rendered: 5-14%)"
                if missed
                else ""
            )
        )
    ocr.gate_side = GATE_SIDE

    gate = gate_passes.get(ocr.gate_side) or [True] * len(rendered)
    for side in [int(s) for s in args.full_sides.split(",")]:
        ocr.full_min_side = side
        full_pass(ocr, rendered, gate)
    ocr.full_min_side = FULL_MIN_SIDE

    library_throughput(photos[args.rendered :], rendered, args.library_photos)


def constructed(folder: Path, plain_count: int, threads: int) -> None:
    """The plugin as the app runs it (gate, then full pass) on the constructed library."""
    from photosearch.files.imaging import load_image
    from photosearch.indexing.text_reading import DECODE_MIN_SIDE

    files = json.loads((folder / "manifest.json").read_text())["files"]
    with_text = [f for f in files if f.get("text")]
    plain = [f for f in files if not f.get("text")][:plain_count]
    ocr = RapidOcrExtractor(threads=threads)
    print(
        f"constructed library {folder}: {len(with_text)} photos with rendered text, "
        f"{len(plain)} without; timings on a shared, busy machine"
    )
    gate_costs, passed_plain = [], 0
    for item in plain:
        image, _ = load_image(folder / "photos" / item["path"], min_size=DECODE_MIN_SIDE)
        passed, seconds = timed(ocr.finds_text, bgr(image))
        gate_costs.append(seconds)
        passed_plain += passed
    truth_total = found_total = hit_total = passed_text = 0
    read_costs = []
    for item in with_text:
        image, _ = load_image(folder / "photos" / item["path"], min_size=DECODE_MIN_SIDE)
        before = ocr.passed
        text, seconds = timed(ocr.read_text, image)
        read_costs.append(seconds)
        passed_text += ocr.passed > before
        truth, found = words_in(item["text"]), words_in(text)
        truth_total += len(truth)
        found_total += len(found)
        hit_total += len(found & truth)
    print(
        f"  gate: {1000 * statistics.median(gate_costs):.0f} ms/photo median; passes "
        f"{passed_plain}/{len(plain)} photos without rendered text "
        f"({100 * passed_plain / max(1, len(plain)):.1f}%) and {passed_text}/{len(with_text)} "
        f"with ({100 * passed_text / max(1, len(with_text)):.1f}%)"
    )
    print(
        f"  gate + full pass on the photos with text: "
        f"{1000 * statistics.median(read_costs):.0f} ms/photo median"
    )
    print(
        f"  words: precision {hit_total / max(found_total, 1):.3f}, recall "
        f"{hit_total / max(truth_total, 1):.3f} ({hit_total}/{truth_total})"
    )


def full_pass(ocr: RapidOcrExtractor, rendered: list, gate: list[bool]) -> None:
    """Detection + recognition on every rendered photo: cost, and word precision/recall with
    and without the gate's verdicts."""
    print(
        f"\nfull pass (detection at short side >= {ocr.full_min_side} px + recognition) on "
        f"every rendered photo"
    )
    truth_total = found_total = hit_total = gated_found = gated_hit = 0
    costs = []
    for (image, truth, _), passed in zip(rendered, gate, strict=True):
        lines, seconds = timed(ocr.read_lines, bgr(image))
        costs.append(seconds)
        found = words_in(" ".join(text for text, _ in lines))
        truth_total += len(truth)
        found_total += len(found)
        hit_total += len(found & truth)
        if passed:
            gated_found += len(found)
            gated_hit += len(found & truth)
    print(
        f"  {1000 * statistics.median(costs):.0f} ms/photo median "
        f"({1000 * np.mean(costs):.0f} mean)"
    )
    print(
        f"  words without the gate: precision {hit_total / max(found_total, 1):.3f}, "
        f"recall {hit_total / max(truth_total, 1):.3f} ({hit_total}/{truth_total})"
    )
    print(
        f"  words with the {ocr.gate_side} px gate: precision "
        f"{gated_hit / max(gated_found, 1):.3f}, recall {gated_hit / max(truth_total, 1):.3f}"
    )


def library_throughput(plain_paths: list[Path], rendered: list, count: int) -> None:
    """Index ``count`` photos (a tenth of them with rendered words) with the default model,
    then read their text: photos per second for each stage and for both."""
    import os

    from photosearch.library.facade import Library

    os.environ.pop("PHOTOSEARCH_READ_TEXT", None)
    with tempfile.TemporaryDirectory(prefix="bench-text-") as tmp:
        folder = Path(tmp) / "photos"
        folder.mkdir()
        with_text = min(len(rendered), count // 10)
        for i, (image, _, _) in enumerate(rendered[:with_text]):
            image.save(folder / f"text-{i:03d}.jpg", quality=90)
        for path in plain_paths[: count - with_text]:
            shutil.copy2(path, folder / path.name)
        with Library(Path(tmp) / "library") as library:
            library.add_folder(folder)
            started = time.perf_counter()
            report = library.index()
            encode_s = time.perf_counter() - started
            started = time.perf_counter()
            reading = library.text.read()
            read_s = time.perf_counter() - started
        n = report.encoding.encoded
        print(f"\nlibrary of {n} photos ({with_text} with rendered words), default model:")
        print(f"  index (scan + encode): {encode_s:.1f}s, {n / encode_s:.1f} photos/s")
        if reading is None:
            print(
                "  reading text: not run (no extractor found: install the ocr extra and the "
                "package so its entry point is registered)"
            )
            return
        print(
            f"  reading text: {read_s:.1f}s, {reading.read / read_s:.1f} photos/s, "
            f"{reading.with_text} with text"
        )
        print(
            f"  index + reading: {n / (encode_s + read_s):.1f} photos/s "
            f"({(encode_s + read_s) / encode_s:.2f}x the time of index alone)"
        )


if __name__ == "__main__":
    main()
