"""Training on photos alone, without captions: what most users have. This module holds the
mode's data rules (which photos are held out, which recipe parts are refused); its stages are
``stages.photos_student`` and ``stages.photos_export``.

With no paired data there is no T' (the teacher stays as it is), no head fit and no recall to
measure. The student (the teacher's own image tower at a lower resolution) learns the
teacher's image vectors of random crops of the user's photos; a held-out sample of those
photos picks the epoch by the mean cosine between the student's and the teacher's vectors,
and the int8 copy is kept only while its vectors stay within a cosine bound of the fp32
student's. The text tower is the teacher's, so a query gets the teacher's vector: the
student gives the teacher's kind of results at the student's speed.
"""

from __future__ import annotations

import logging
from importlib.resources import files
from pathlib import Path

from photosearch.errors import UnsupportedImage
from photosearch.files.imaging import load_image
from photosearch_train.config import ConfigError, RecipeConfig

PHOTOS_ONLY_RECIPE = "photos-144"
HELD_OUT_FRACTION = 0.1  # of the photos listed, every k-th held out for validation ...
MAX_HELD_OUT = 100  # ... up to this many
MIN_PHOTOS = 10
QUERIES_FILE = "sample_queries.txt"  # package data: queries for text speed and the int8 check

log = logging.getLogger(__name__)


def split_photos(photos: list[Path]) -> tuple[list[Path], list[Path]]:
    """(photos to distil on, held-out photos): every k-th photo of the listing held out, so
    the held-out sample spans the library's folders as the listing does."""
    if len(photos) < MIN_PHOTOS:
        raise ConfigError(
            f"only {len(photos)} readable-looking photos to train on; at least {MIN_PHOTOS} "
            "are needed (a tenth of them is held out to check the student)"
        )
    count = min(MAX_HELD_OUT, max(1, round(len(photos) * HELD_OUT_FRACTION)))
    step = len(photos) / count
    held = {int(i * step) for i in range(count)}
    return (
        [p for i, p in enumerate(photos) if i not in held],
        [photos[i] for i in sorted(held)],
    )


def readable(photos: list[Path]) -> list[Path]:
    """``photos`` less those that cannot be decoded (each reported once): a library's odd
    file must not stop a run, and the held-out photos are read again at every check."""
    kept = []
    for path in photos:
        try:
            load_image(path)
        except UnsupportedImage as exc:
            log.warning("not holding out %s to check the student: %s", path, exc)
            continue
        kept.append(path)
    if not kept:
        raise ConfigError(f"none of the {len(photos)} photos held out for checking is readable")
    return kept


def check_photos_only(config: RecipeConfig) -> None:
    """Refuse, before any work, the parts of a recipe that learn from captions."""
    needs = []
    # A truncated student learns on photos alone only from an ONNX teacher (stage 1 checked
    # by cosine to the teacher; texts from the shipped corpus).
    if config.student.image_tower != "teacher" and config.teacher.kind != "onnx":
        needs.append("a truncated student (student.image_tower 'truncated')")
    ft = config.finetune_teacher
    if ft.enabled and (ft.towers or ft.head):
        needs.append("fine-tuning the teacher (finetune_teacher.towers / .head)")
    if config.stage2.crop_select != "cos_to_teacher":
        needs.append(f"checkpoints chosen by stage2.crop_select {config.stage2.crop_select!r}")
    if needs:
        raise ConfigError(
            f"this recipe needs captions for {'; '.join(needs)}: pass --captions FILE, or "
            f"train on photos alone with --recipe {PHOTOS_ONLY_RECIPE}"
        )


def sample_queries() -> list[str]:
    """Everyday search queries shipped with the plugin (no user text is needed)."""
    text = (files("photosearch_train") / QUERIES_FILE).read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip()]
