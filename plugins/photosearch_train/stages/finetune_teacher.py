"""Teacher fine-tuning, T -> T' on paired captions: the towers' own weights (tower by tower
by default, or jointly), then projection heads fitted on cached features."""

from __future__ import annotations

from functools import partial

import numpy as np
import torch
from torch import nn

from photosearch_train import losses
from photosearch_train.data import embed_images
from photosearch_train.heads import fit_heads
from photosearch_train.metrics import recall_scores
from photosearch_train.phases import captions_of, finished_fit, head_data, joint_phase, save_fit
from photosearch_train.results import FitResult, StageResult
from photosearch_train.trainer import train_phase
from photosearch_train.validation import fixed, recall_check, val_image_vectors, val_text_vectors
from photosearch_train.workspace import FINETUNE_TEACHER, HEAD_STAGE, Workspace, wrap_with_heads

Terms = dict[str, torch.Tensor]


def run(ws: Workspace, stop_after: int | None = None) -> StageResult:
    """T -> T': the towers' own weights (``towers``), then projection heads (``head``)."""
    ft = ws.config.finetune_teacher
    if not ft.enabled:
        return StageResult(FINETUNE_TEACHER, note="disabled")
    result = StageResult(FINETUNE_TEACHER)
    if ft.towers:
        result = _joint(ws, stop_after) if not ft.sequential else _sequential(ws, stop_after)
        if not result.finished:
            return result
    if ft.head:
        result = StageResult(FINETUNE_TEACHER, {**result.parts, "head": fit_teacher_head(ws)})
    return result


def _joint(ws: Workspace, stop_after: int | None) -> StageResult:
    """Both towers in one phase, InfoNCE between them."""
    ft, teacher, train = ws.config.finetune_teacher, ws.teacher(), ws.train
    images, tau = list(train.images), ft.optim.temperature

    def joint_loss(module: nn.Module, idx: np.ndarray, epoch: int) -> Terms:
        caps = [train.captions[i] for i in captions_of(ws, idx, epoch)]
        v = ws.images_of(teacher, partial(module, "visual"), [images[i] for i in idx])
        t = ws.texts_of(teacher, partial(module, "textual"), caps)
        return {"loss": losses.clip_loss(t, v, tau)}

    joint = joint_phase(
        ws, "finetune_teacher-joint", FINETUNE_TEACHER, teacher, joint_loss, ft.optim, stop_after
    )
    return StageResult(FINETUNE_TEACHER, {"joint": joint})


def _sequential(ws: Workspace, stop_after: int | None) -> StageResult:
    """The image tower against T's cached text vectors, then the text tower against the
    fine-tuned image tower's (cached) vectors."""
    ft, teacher, train = ws.config.finetune_teacher, ws.teacher(), ws.train
    images, tau = list(train.images), ft.optim.temperature
    t_texts = ws.tensor(ws.cached_texts(teacher, teacher.textual, train.captions, "T-txt"))
    t_val_texts = ws.cached_texts(teacher, teacher.textual, ws.val.captions, "T-val-txt")
    teacher.textual.requires_grad_(False)
    teacher.visual.requires_grad_(True)

    def image_loss(module: nn.Module, idx: np.ndarray, epoch: int) -> Terms:
        v = ws.images_of(teacher, module, [images[i] for i in idx])
        return {"loss": losses.clip_loss(t_texts[captions_of(ws, idx, epoch)], v, tau)}

    image = train_phase(
        ws.phase("finetune_teacher-image", len(images), ft.optim),
        teacher.visual,
        image_loss,
        ws.ctx,
        recall_check(ws, val_image_vectors(ws, teacher, teacher.visual), fixed(t_val_texts)),
        stop_after,
    )
    if not image.finished:
        return StageResult(FINETUNE_TEACHER, {"image": image})
    ws.save("finetune_teacher-image", teacher)
    teacher.visual.requires_grad_(False)
    teacher.textual.requires_grad_(True)
    pre, device = teacher.preprocessing, ws.ctx.device
    v_images = ws.tensor(embed_images(teacher.visual, images, pre, ws.pixels, device))
    v_val = embed_images(teacher.visual, ws.val.images, pre, ws.pixels, device)

    def text_loss(module: nn.Module, idx: np.ndarray, epoch: int) -> Terms:
        caps = [train.captions[i] for i in captions_of(ws, idx, epoch)]
        t = ws.texts_of(teacher, module, caps)
        return {"loss": losses.clip_loss(t, v_images[idx], tau)}

    text = train_phase(
        ws.phase("finetune_teacher-text", len(images), ft.optim),
        teacher.textual,
        text_loss,
        ws.ctx,
        recall_check(ws, fixed(v_val), val_text_vectors(ws, teacher, teacher.textual)),
        stop_after,
    )
    if text.finished:
        ws.save("finetune_teacher-text", teacher)
        ws.save(FINETUNE_TEACHER, teacher)
    return StageResult(FINETUNE_TEACHER, {"image": image, "text": text})


def fit_teacher_head(ws: Workspace) -> FitResult:
    """Fit heads on T's (or the fine-tuned towers') cached features; best on val is kept."""
    done = finished_fit(ws.out / HEAD_STAGE)
    if done is not None:
        return done
    ft = ws.config.finetune_teacher
    base = ws.finetuned_teacher(with_head=False)
    tags = (f"{base.name}-feat-", f"{base.name}-")
    data = head_data(ws, base, base.visual, tags, ft.head_extra)
    fit = fit_heads(
        data["train"],
        data["val"],
        ft.head_optim,
        lambda t, v: recall_scores(t, v, ws.val),
        learn_temperature=ft.learn_temperature,
        seed=ws.config.seed,
    )
    headed = wrap_with_heads(base, ft.head_extra)
    headed.visual.head.load_state_dict(fit.image_head.state_dict())
    headed.textual.head.load_state_dict(fit.text_head.state_dict())
    result = FitResult(HEAD_STAGE, best_val=fit.best, tau=fit.temperature)
    save_fit(ws, HEAD_STAGE, headed, result, fit.log)
    return result
