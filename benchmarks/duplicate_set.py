"""Recipe for the near-duplicate measurement set (benchmarks/bench_duplicates.py).

From the Flickr8k-1k ``train`` and ``val`` photos in ../shared/data (never ``test``): a seeded
third of each split become "originals" and each gets three copies in the same folder,

- ``NAME__mirrored.jpg``: left-right mirror image, JPEG quality 90;
- ``NAME__resized.jpg``: half the width and height (Lanczos), quality 90;
- ``NAME__recompressed.jpg``: the original pixels recompressed at JPEG quality 30;
- ``NAME__cropped.jpg``: the central 90% of the width and height, quality 90 (an edit that
  perceptual hashes are known to miss, to see whether the vectors find it);

and every other photo of the split is copied unchanged as a distractor (Flickr8k has many
distinct-but-similar dog, beach and snow photos, which is what measures false merges). The true
groups are an original with its copies; every distractor is alone.

    .venv/bin/python benchmarks/duplicate_set.py OUT_DIR
"""

from __future__ import annotations

import json
import os
import random
import shutil
import sys
from pathlib import Path

from PIL import Image, ImageOps

# ../shared/data beside the checkout; PHOTOSEARCH_SHARED_DATA points elsewhere (a worktree)
SHARED = Path(__file__).resolve().parents[2] / "shared/data"
DATA = Path(os.environ.get("PHOTOSEARCH_SHARED_DATA") or SHARED) / "flickr8k-1k"
SPLITS = ("train", "val")
SEED = 20
ORIGINAL_SHARE = 1 / 3
COPIES = ("mirrored", "resized", "recompressed", "cropped")


def split_names(split: str) -> list[str]:
    """The image file names of one of the project's splits, sorted."""
    with (DATA / "captions.jsonl").open() as lines:
        rows = [json.loads(line) for line in lines]
    return sorted(Path(row["image"]).name for row in rows if row["split"] == split)


def make_copy(source: Path, kind: str, target: Path) -> None:
    with Image.open(source) as image:
        image = ImageOps.exif_transpose(image).convert("RGB")
        if kind == "mirrored":
            ImageOps.mirror(image).save(target, quality=90)
        elif kind == "resized":
            half = (max(1, image.width // 2), max(1, image.height // 2))
            image.resize(half, Image.Resampling.LANCZOS).save(target, quality=90)
        elif kind == "recompressed":
            image.save(target, quality=30)
        elif kind == "cropped":
            dx, dy = image.width // 20, image.height // 20
            image.crop((dx, dy, image.width - dx, image.height - dy)).save(target, quality=90)
        else:
            raise ValueError(kind)


def build(out: Path) -> dict[str, list[list[str]]]:
    """Write ``out/<split>/`` for each split; returns each split's true groups (file names,
    singletons included) and writes them to ``out/groups.json``."""
    if not DATA.is_dir():
        raise SystemExit(f"no Flickr8k-1k data at {DATA}")
    rng = random.Random(SEED)
    groups: dict[str, list[list[str]]] = {}
    for split in SPLITS:
        names = split_names(split)
        originals = set(rng.sample(names, round(len(names) * ORIGINAL_SHARE)))
        folder = out / split
        folder.mkdir(parents=True, exist_ok=True)
        groups[split] = []
        for name in names:
            shutil.copy2(DATA / "images" / name, folder / name)
            group = [name]
            if name in originals:
                for kind in COPIES:
                    copy = f"{Path(name).stem}__{kind}.jpg"
                    make_copy(DATA / "images" / name, kind, folder / copy)
                    group.append(copy)
            groups[split].append(group)
    (out / "groups.json").write_text(json.dumps(groups, indent=1))
    return groups


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    built = build(Path(sys.argv[1]))
    for split, split_groups in built.items():
        photos = sum(len(g) for g in split_groups)
        print(f"{split}: {photos} photos, {sum(len(g) > 1 for g in split_groups)} groups of 5")
