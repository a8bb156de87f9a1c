"""Extra rows for the frozen student's ridge fit: random crops of the distillation photos,
each paired with the teacher's vector of the same crop.

Why: the ridge map of the trunk's 1,280 pooled features is fitted on a few hundred photos and
generalises short of the photos it was fitted on (issue 19: held-out cosine to T' 0.840, 0.955
on its own photos). Crops are new inputs with their own teacher targets, so they fill in the
feature space the map is fitted over without any caption. With T' as the teacher and 8 crops a
photo (5-fold cross-validation over the 700 Flickr8k train+val photos, docs/training.md): the
held-out cosine rose from 0.835 to 0.864, but recall on the photos whose captions T' was not
fitted on only by about a point at R@1 (t2i 38.0 -> 39.2 on the 100 `val` photos).

Crops are a pure function of (seed, crop number, photo index) (``CropPairs``), so a resumed run
reads the rows it had cached instead of drawing different ones.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from photosearch.models.bundle import Preprocessing
from photosearch_train.crops import CropPairs
from photosearch_train.data import cached, corpus_key

CROP_BATCH = 32

Encode = Callable[[torch.Tensor], torch.Tensor]


def crop_rows(
    photos: Sequence[Path],
    crops_per_photo: int,
    teacher: tuple[Encode, Preprocessing, int],
    student: tuple[Encode, Preprocessing],
    min_scale: float,
    seed: int,
    cache_dir: Path,
) -> tuple[np.ndarray, np.ndarray]:
    """(student features [N, F], teacher vectors [N, D]) of ``crops_per_photo`` random crops
    of each photo (N = photos x crops), the teacher and the student each seeing the crop at its
    own preprocessing; ``teacher`` is (encode, preprocessing, embedding width). Each crop
    number is cached on its own in ``cache_dir``."""
    (encode_teacher, teacher_pre, dim), (encode_student, student_pre) = teacher, student
    pairs = CropPairs(photos, teacher_pre, student_pre, min_scale, seed)
    features, targets = [], []
    for number in range(crops_per_photo):
        key = corpus_key(f"crop-rows-{number}", photos, (teacher_pre, student_pre, min_scale, seed))

        def compute(number: int = number) -> np.ndarray:
            rows = []
            for start in range(0, len(photos), CROP_BATCH):
                idx = range(start, min(len(photos), start + CROP_BATCH))
                big, small = pairs.batch(idx, number)
                with torch.no_grad():
                    t = encode_teacher(torch.from_numpy(big)).float().cpu().numpy()
                    s = encode_student(torch.from_numpy(small)).float().cpu().numpy()
                rows.append(np.concatenate([t, s], axis=1))
            return np.concatenate(rows)

        both = cached(cache_dir / f"{key}.npy", compute)  # [photos, D + F]: teacher | student
        targets.append(both[:, :dim])
        features.append(both[:, dim:])
    if not features:
        return np.zeros((0, 0), np.float32), np.zeros((0, 0), np.float32)
    return np.concatenate(features), np.concatenate(targets)
