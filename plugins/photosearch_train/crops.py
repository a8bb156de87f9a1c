"""Crop distillation: the "teacher" student's whole image tower learns to reproduce T''s image
vectors of the same random crop, T' seeing it at its own resolution and the student at its
lower one (MoTIS's L_v2v towards T', on augmented unpaired photos).

Why: the student is T''s image tower run at fewer pixels, and its head alone cannot undo what
the lower resolution loses (Flickr8k test t2i R@10 58.5 vs T''s 70.9). Fine-tuning the tower on
the 600 paired photos overfits at once, but the distillation targets need no captions and
every epoch sees new crops, so the tower can move without memorising the pairs.

Crops are a pure function of (seed, epoch, image index) and the optional mixup of (seed, epoch,
batch), so a resumed phase sees exactly the inputs an uninterrupted one would.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from photosearch.errors import UnsupportedImage
from photosearch.files.imaging import load_image, to_model_input
from photosearch.models.bundle import Preprocessing
from photosearch_train import losses
from photosearch_train.heads import HeadedImageTower, image_features

log = logging.getLogger(__name__)


def random_crop(image: Image.Image, rng: np.random.Generator, min_scale: float) -> Image.Image:
    """A random crop covering ``min_scale``..1 of the area, aspect 3:4..4:3, maybe mirrored;
    the whole image when no such crop fits (ten tries)."""
    width, height = image.size
    crop = image
    for _ in range(10):
        area = width * height * rng.uniform(min_scale, 1.0)
        ratio = math.exp(rng.uniform(math.log(3 / 4), math.log(4 / 3)))
        w, h = round(math.sqrt(area * ratio)), round(math.sqrt(area / ratio))
        if 0 < w <= width and 0 < h <= height:
            x, y = int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1))
            crop = image.crop((x, y, x + w, y + h))
            break
    if rng.random() < 0.5:
        crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    return crop


class CropPairs:
    """Model inputs of one random crop per photo at two preprocessings (teacher, student).

    Photos are decoded from disk at every call (JPEG draft mode keeps that cheap), so memory
    does not grow with the library. A photo that cannot be decoded (corrupt, vanished,
    unreadable: a real library has some) is reported once and the next readable photo stands
    in for it, so hours of training do not end on one bad file."""

    def __init__(
        self,
        paths: Sequence[Path],
        teacher: Preprocessing,
        student: Preprocessing,
        min_scale: float,
        seed: int,
        mixup: float = 0.0,
    ) -> None:
        self.paths, self.teacher, self.student = list(paths), teacher, student
        self.min_scale, self.seed, self.mixup = min_scale, seed, mixup
        self.decode_size = round(max(teacher.size, student.size) * 1.5)
        self._unreadable: set[int] = set()

    def batch(self, idx: Sequence[int], epoch: int) -> tuple[np.ndarray, np.ndarray]:
        big, small = [], []
        for i in idx:
            image = self._readable_image(int(i))
            rng = np.random.default_rng([self.seed, epoch, int(i)])
            crop = random_crop(image, rng, self.min_scale)
            big.append(to_model_input(crop, self.teacher))
            small.append(to_model_input(crop, self.student))
        big_batch, small_batch = np.stack(big), np.stack(small)
        if self.mixup > 0 and len(idx) > 1:
            # Both models see the same blend of two crops (same weight, same partner): more
            # distinct inputs to match T' on than a few hundred photos give.
            rng = np.random.default_rng([self.seed, epoch, *map(int, idx)])
            weight = rng.beta(self.mixup, self.mixup, size=len(idx)).astype(np.float32)
            partner = rng.permutation(len(idx))
            w = weight[:, None, None, None]
            big_batch = w * big_batch + (1 - w) * big_batch[partner]
            small_batch = w * small_batch + (1 - w) * small_batch[partner]
        return big_batch, small_batch

    def _readable_image(self, index: int) -> Image.Image:
        for step in range(len(self.paths)):
            i = (index + step) % len(self.paths)
            if i in self._unreadable:
                continue
            try:
                return load_image(self.paths[i], min_size=self.decode_size)[0]
            except UnsupportedImage as exc:
                self._unreadable.add(i)
                log.warning("skipping %s in distillation: %s", self.paths[i], exc)
        raise UnsupportedImage(f"none of the {len(self.paths)} distillation photos is readable")


class TowerWithFeatures(nn.Module):
    """An image tower (headed, or a teacher's own without a head) returning (unit vector,
    pooled features) from one pass, so both loss terms go through one forward (and through
    DDP's, when distributed)."""

    def __init__(self, tower: nn.Module) -> None:
        super().__init__()
        self.tower = tower

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if not isinstance(self.tower, HeadedImageTower):
            return image_features(self.tower, image)
        vec, features = image_features(self.tower.tower, image)
        return self.tower.head(vec, features), features


def crop_distillation_loss(
    student: tuple[torch.Tensor, torch.Tensor],
    teacher: tuple[torch.Tensor, torch.Tensor],
    temperature: float,
    cosine_weight: float,
    feature_weight: float,
) -> dict[str, torch.Tensor]:
    """L_v2v (the student's vector of crop i must pick T''s vector of crop i among the batch's)
    + weighted cosine distance to it + weighted MSE between the pooled features (for ConSE:
    Lite0's 1280-d activations, which the head also reads). Arguments: (vectors, features)."""
    (out, s_feat), (target, t_feat) = student, teacher
    terms = {"v2v": losses.intra_modal_contrastive(out, target, temperature)}
    if cosine_weight:
        terms["cos"] = cosine_weight * (1.0 - (out * target).sum(dim=-1)).mean()
    if feature_weight:
        terms["feat"] = feature_weight * F.mse_loss(s_feat.float(), t_feat.float())
    terms["loss"] = sum(terms.values())
    return terms
