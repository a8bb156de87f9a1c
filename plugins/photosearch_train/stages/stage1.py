"""Stage 1: task-agnostic distillation of T into the student on unpaired images and texts
(L_v2v, L_t2t), image tower first, then text tower; the "infonce" ablation trains inter-modally
on the paired train split instead.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from photosearch_train import losses
from photosearch_train.config import ConfigError, Stage1Config
from photosearch_train.corpus import distillation_texts
from photosearch_train.crop_rows import crop_rows
from photosearch_train.data import load_texts
from photosearch_train.dual_encoder import DualEncoder
from photosearch_train.phases import captions_of, finished_fit, save_fit
from photosearch_train.results import FitResult, PhaseResult, StageResult
from photosearch_train.ridge import choose_ridge, scale_residual
from photosearch_train.teachers import make_student
from photosearch_train.towers import PooledFeatures
from photosearch_train.trainer import Validate, train_phase
from photosearch_train.validation import (
    cosine_checks,
    fixed,
    recall_check,
    val_image_vectors,
    val_text_vectors,
)
from photosearch_train.workspace import STAGE1, Workspace

Terms = dict[str, torch.Tensor]
FROZEN_IMAGE_PHASE = "stage1-image"  # the frozen student's fit: same folder as the phase


def run(ws: Workspace, stop_after: int | None = None) -> StageResult:
    """Distil the image tower, then the text tower; the student is saved as ``stage1``."""
    cfg, s1 = ws.config, ws.config.stage1
    if cfg.student.image_tower == "teacher":
        return StageResult(STAGE1, note="not used: the student starts from T''s towers")
    teacher = ws.teacher()
    student = make_student(teacher, cfg.student, cfg.export.name)
    if not s1.enabled:
        ws.save(STAGE1, student)
        return StageResult(STAGE1, note="disabled")
    data = _Data.of(ws, s1)
    t_images = ws.tensor(ws.cached_images(teacher, teacher.visual, data.images, "T-img"))
    t_texts = ws.tensor(ws.cached_texts(teacher, teacher.textual, data.texts, "T-txt"))
    image_check, text_check, select_on = _checks(ws, teacher, student)
    tau = s1.optim.temperature

    def distil(s: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if s1.loss == "mse":
            loss = losses.mse_distillation(s, t)
        else:
            loss = losses.intra_modal_contrastive(s, t, tau)
        if s1.cosine_weight:
            loss = loss + s1.cosine_weight * losses.cosine_distance(s, t)
        return loss

    def image_loss(module: nn.Module, idx: np.ndarray, epoch: int) -> Terms:
        s = ws.images_of(student, module, [data.images[i] for i in idx])
        if data.paired:
            return {"loss": losses.clip_loss(t_texts[captions_of(ws, idx, epoch)], s, tau)}
        return {"loss": distil(s, t_images[idx])}

    def text_loss(module: nn.Module, idx: np.ndarray, epoch: int) -> Terms:
        if data.paired:
            caps = captions_of(ws, idx, epoch)
            s = ws.texts_of(student, module, [data.texts[i] for i in caps])
            return {"loss": losses.clip_loss(s, t_images[idx], tau)}
        s = ws.texts_of(student, module, [data.texts[i] for i in idx])
        return {"loss": distil(s, t_texts[idx])}

    image: PhaseResult | FitResult
    if cfg.student.image_tower == "frozen":
        image = _fit_frozen_projection(ws, teacher, student, data.images, t_images)
    else:
        student.visual.requires_grad_(True)
        image = train_phase(
            replace(ws.phase("stage1-image", len(data.images), s1.optim), select_on=select_on),
            student.visual,
            image_loss,
            ws.ctx,
            image_check,
            stop_after,
        )
        if not image.finished:
            return StageResult(STAGE1, {"image": image})
        ws.save("stage1-image", student)
    items = len(data.images) if data.paired else len(data.texts)
    text = train_phase(
        replace(ws.phase("stage1-text", items, s1.optim), select_on=select_on),
        student.textual,
        text_loss,
        ws.ctx,
        text_check,
        stop_after,
    )
    if text.finished:
        ws.save("stage1-text", student)
        ws.save(STAGE1, student)
    return StageResult(STAGE1, {"image": image, "text": text})


def _fit_frozen_projection(
    ws: Workspace,
    teacher: DualEncoder,
    student: DualEncoder,
    photos: list[Path],
    t_images: torch.Tensor,
) -> FitResult:
    """The frozen ImageNet student's projection by ridge regression of the teacher's image
    vectors on the trunk's cached pooled features; the strength (``stage1.head_ridge``) with
    the best mean cosine to the teacher on the held-out (or val) photos is kept (fitted on
    the photos and ``stage1.head_crops`` random crops of each, ``crop_rows``), then its
    spread around the teacher's mean photo vector is widened by
    ``stage1.head_residual_scale``."""
    folder = ws.out / FROZEN_IMAGE_PHASE
    done = finished_fit(folder)
    if done is not None:
        student.visual.load_state_dict(ws.student(FROZEN_IMAGE_PHASE).visual.state_dict())
        return done
    held = ws.val_images()
    features = PooledFeatures(student.visual)
    pre = student.preprocessing
    s1 = ws.config.stage1
    rows = ws.cached_images(student, features, photos, f"frozen-{pre.size}px")
    targets = t_images.cpu().numpy()
    crops = None
    if s1.head_crops:  # 0: the photos alone
        crop_features, crop_targets = crop_rows(
            photos,
            s1.head_crops,
            (_on(ws, teacher.visual), teacher.preprocessing, t_images.shape[1]),
            (_on(ws, features), pre),
            s1.head_crop_min_scale,
            ws.config.seed,
            ws.cache_dir,
        )
        rows, targets = (
            np.concatenate([rows, crop_features]),
            np.concatenate([targets, crop_targets]),
        )
        crops = {"rows": len(crop_features), "min_scale": s1.head_crop_min_scale}
    fit = choose_ridge(
        rows,
        targets,
        ws.cached_images(student, features, held, f"frozen-{pre.size}px-held-out"),
        ws.cached_images(teacher, teacher.visual, held, "T-held-out-img"),
        ws.config.stage1.head_ridge,
    )
    scale = ws.config.stage1.head_residual_scale
    mean = t_images.cpu().numpy().mean(axis=0)
    weight, bias = scale_residual(fit.weight, fit.bias, mean, scale)
    with torch.no_grad():
        student.visual.projection.weight.copy_(torch.from_numpy(weight))
        student.visual.projection.bias.copy_(torch.from_numpy(bias))
    best = {
        "cos_to_teacher": fit.held_out_cosine[fit.strength],
        "ridge_strength": fit.strength,
        "residual_scale": scale,
    }
    result = FitResult(
        FROZEN_IMAGE_PHASE,
        best_val=best,
        photos=len(photos),
        held_out_photos=len(held),
        crops=crops,
    )
    log = [
        {"ridge_strength": k, "val": {"cos_to_teacher": v}} for k, v in fit.held_out_cosine.items()
    ]
    save_fit(ws, FROZEN_IMAGE_PHASE, student, result, log)
    return result


def _on(ws: Workspace, module: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """``module`` in eval mode on the run's device, as a function of CPU pixels."""
    module.to(ws.ctx.device).eval()
    return lambda pixels: module(pixels.to(ws.ctx.device))


@dataclass(frozen=True)
class _Data:
    """What stage 1 distils on: images and texts, unpaired (or paired for "infonce")."""

    images: list[Path]
    texts: list[str]
    paired: bool

    @classmethod
    def of(cls, ws: Workspace, s1: Stage1Config) -> _Data:
        paired = s1.loss == "infonce"  # inter-modal ablation: needs the paired train split
        images = list(ws.train.images) if paired else ws.unpaired_images()
        if paired:
            texts = list(ws.train.captions)
        elif s1.corpus:
            texts = distillation_texts(s1.texts, True, s1.max_texts)
        elif s1.texts:
            texts = load_texts(Path(s1.texts), s1.max_texts)
        else:
            texts = list(ws.train.captions) if ws.paired else []
        if not paired:
            images, texts = images[: s1.max_images or None], texts[: s1.max_texts or None]
        if not texts:
            raise ConfigError(
                "no texts to distil the text tower on: pass --texts FILE or set stage1.corpus=true"
            )
        return cls(images, texts, paired)


def _checks(
    ws: Workspace, teacher: DualEncoder, student: DualEncoder
) -> tuple[Validate, Validate, str]:
    """The image and text phases' checks and the score they choose by: val recall (the text
    side from T for the image phase), or without captions the cosine to the teacher."""
    if not ws.paired:
        image_check, text_check = cosine_checks(ws, teacher, student)
        return image_check, text_check, "cos_to_teacher"
    t_val_texts = ws.cached_texts(teacher, teacher.textual, ws.val.captions, "T-val-txt")
    student_images = val_image_vectors(ws, student, student.visual)
    image_check = recall_check(ws, student_images, fixed(t_val_texts))
    text_check = recall_check(ws, student_images, val_text_vectors(ws, student, student.textual))
    return image_check, text_check, "rsum"
