"""Crop rows for the frozen student's ridge fit (``photosearch_train.crop_rows``): each row pairs
the student's features and the teacher's vector of the same random crop, drawn as
``CropPairs`` draws it, and a second run reads the rows back instead of drawing new ones."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

torch = pytest.importorskip("torch")
from photosearch_train.crop_rows import crop_rows  # noqa: E402
from photosearch_train.crops import CropPairs  # noqa: E402

from photosearch.models.bundle import Preprocessing  # noqa: E402

TEACHER = Preprocessing(size=32, mean=(0.5,) * 3, std=(0.5,) * 3)
STUDENT = Preprocessing(size=16, mean=(0.5,) * 3, std=(0.5,) * 3)


def _photos(folder: Path, count: int) -> list[Path]:
    folder.mkdir()
    rng = np.random.default_rng(0)
    paths = []
    for i in range(count):
        path = folder / f"p{i}.jpg"
        Image.fromarray(rng.integers(0, 255, (60, 80, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


class Counting:
    """A fixed function of pixels that counts the pixels it was given."""

    def __init__(self, reduce: Callable[[torch.Tensor], torch.Tensor]) -> None:
        self.reduce, self.calls = reduce, 0

    def __call__(self, pixels: torch.Tensor) -> torch.Tensor:
        self.calls += len(pixels)
        return self.reduce(pixels)


def test_each_row_is_the_same_crop_seen_by_both_and_a_rerun_reads_them_back(
    tmp_path: Path,
) -> None:
    photos = _photos(tmp_path / "photos", 5)
    teacher = Counting(lambda x: x.mean(dim=(2, 3)))  # [N, 3]
    student = Counting(lambda x: torch.cat([x.amax(dim=(2, 3)), x.amin(dim=(2, 3))], 1))

    features, targets = crop_rows(
        photos, 3, (teacher, TEACHER, 3), (student, STUDENT), 0.35, 7, tmp_path / "cache"
    )
    assert features.shape == (15, 6) and targets.shape == (15, 3)
    assert teacher.calls == student.calls == 15

    pairs = CropPairs(photos, TEACHER, STUDENT, 0.35, 7)
    for number in range(3):
        big, small = pairs.batch(range(5), number)
        rows = slice(5 * number, 5 * number + 5)
        np.testing.assert_allclose(targets[rows], big.mean(axis=(2, 3)), atol=1e-6)
        np.testing.assert_allclose(features[rows, :3], small.max(axis=(2, 3)), atol=1e-6)
    assert not np.allclose(targets[:5], targets[5:10])  # each crop number draws new crops

    again = crop_rows(
        photos, 3, (teacher, TEACHER, 3), (student, STUDENT), 0.35, 7, tmp_path / "cache"
    )
    assert teacher.calls == student.calls == 15  # read from the cache, not computed again
    np.testing.assert_array_equal(again[0], features)
    np.testing.assert_array_equal(again[1], targets)

    other_seed = crop_rows(
        photos, 1, (teacher, TEACHER, 3), (student, STUDENT), 0.35, 8, tmp_path / "cache"
    )
    assert teacher.calls == 20 and not np.allclose(other_seed[1], targets[:5])


def test_no_crops_gives_no_rows(tmp_path: Path) -> None:
    photos = _photos(tmp_path / "photos", 2)
    teacher, student = Counting(lambda x: x.mean(dim=(2, 3))), Counting(lambda x: x.amax((2, 3)))
    features, targets = crop_rows(
        photos, 0, (teacher, TEACHER, 3), (student, STUDENT), 0.35, 0, tmp_path / "cache"
    )
    assert len(features) == len(targets) == 0 and teacher.calls == 0
