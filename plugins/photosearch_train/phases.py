"""Training phases more than one stage runs: both towers trained together, crop distillation
of an image tower, head fits on cached features (their data, their done.json), and the small
helpers the stages' loss functions share.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from photosearch_train.config import OptimConfig
from photosearch_train.crops import CropPairs, TowerWithFeatures, crop_distillation_loss
from photosearch_train.device import sharded
from photosearch_train.dual_encoder import DualEncoder
from photosearch_train.files import save_json, save_text
from photosearch_train.heads import FeatureConcat, HeadData, split_features
from photosearch_train.metrics import recall_scores
from photosearch_train.results import FitResult, PhaseResult, Scores
from photosearch_train.trainer import DONE_FILE, LossFn, train_phase
from photosearch_train.validation import both_towers_check, val_image_vectors
from photosearch_train.workspace import Workspace

CROP_SELECT = ("cos_to_teacher", "rsum")  # what stage2.crop_select may choose checkpoints by


def only(module: nn.Module, *trainable: nn.Module) -> None:
    """Freeze every parameter of ``module`` except those of ``trainable``."""
    module.requires_grad_(False)
    for part in trainable:
        part.requires_grad_(True)


def captions_of(ws: Workspace, idx: np.ndarray, epoch: int) -> np.ndarray:
    """One caption of each image in the batch, the epoch choosing which (a pure function)."""
    return np.asarray([ws.train.caption_for(int(i), epoch) for i in idx], dtype=np.int64)


def joint_phase(
    ws: Workspace,
    phase: str,
    stage: str,
    dual: DualEncoder,
    loss_fn: LossFn,
    optim: OptimConfig,
    stop_after: int | None,
) -> PhaseResult:
    """Train both towers of ``dual`` together (validated on val both ways); save the stage
    when the phase has finished."""
    towers = dual.towers()
    only(towers, towers)
    result = train_phase(
        ws.phase(phase, len(ws.train.images), optim),
        towers,
        loss_fn,
        ws.ctx,
        both_towers_check(ws, dual),
        stop_after,
    )
    if result.finished:
        ws.save(stage, dual)
    return result


def crop_distillation(
    ws: Workspace,
    student: DualEncoder,
    tprime: DualEncoder,
    val_texts: np.ndarray | None,
    stop_after: int | None = None,
) -> PhaseResult:
    """Phase ``stage2-crops``: the student's whole image tower (BatchNorm statistics kept)
    learns T''s image vectors of random crops of the unpaired images. Validation gives the
    mean cosine between the student's and T''s vectors of the val photos (what this phase
    optimises; far less noisy than R-sum on 100 photos) and, with ``val_texts`` (None when
    training on photos alone), val recall; ``stage2.crop_select`` says which picks the kept
    weights."""
    s2 = ws.config.stage2
    if s2.crop_select not in CROP_SELECT:
        raise ValueError(
            f"stage2.crop_select must be 'cos_to_teacher' or 'rsum', not {s2.crop_select!r}"
        )
    paths = ws.unpaired_images()
    crops = CropPairs(
        paths,
        tprime.preprocessing,
        student.preprocessing,
        s2.crop_min_scale,
        ws.config.seed,
        s2.crop_mixup,
    )
    teacher = TowerWithFeatures(tprime.visual).to(ws.ctx.device).eval().requires_grad_(False)
    teacher = sharded(teacher, ws.ctx)  # under torchrun each rank runs T' on its share only
    student.visual.requires_grad_(True)
    tau = s2.crop_optim.temperature

    def loss_fn(module: nn.Module, idx: np.ndarray, epoch: int) -> dict[str, torch.Tensor]:
        big, small = crops.batch(idx, epoch)
        with torch.no_grad():
            target = teacher(ws.tensor(big))
        return crop_distillation_loss(
            module(ws.tensor(small)), target, tau, s2.crop_cosine_weight, s2.crop_feature_weight
        )

    val_targets = ws.cached_images(tprime, tprime.visual, ws.val_images(), f"{tprime.name}-val-img")
    student_vectors = val_image_vectors(ws, student, student.visual)

    def validate() -> Scores:
        vectors = student_vectors()
        scores = recall_scores(val_texts, vectors, ws.val) if val_texts is not None else {}
        scores["cos_to_teacher"] = float((vectors * val_targets).sum(axis=1).mean())
        return scores

    phase = replace(ws.phase("stage2-crops", len(paths), s2.crop_optim), select_on=s2.crop_select)
    result = train_phase(
        phase, TowerWithFeatures(student.visual), loss_fn, ws.ctx, validate, stop_after
    )
    student.visual.requires_grad_(False).eval()
    return result


def head_data(
    ws: Workspace,
    dual: DualEncoder,
    image_tower: nn.Module,
    tags: tuple[str, str],
    use_extra: bool,
) -> dict[str, HeadData]:
    """Cached features of the train and val splits for a head fit: ``image_tower``'s vectors
    (and extra features with ``use_extra``) of the photos, ``dual``'s text vectors of the
    captions; ``tags`` prefix the image and text caches' names (the split is appended)."""
    features = FeatureConcat(image_tower)
    data = {}
    for split, pairs in (("train", ws.train), ("val", ws.val)):
        img = ws.cached_images(dual, features, list(pairs.images), f"{tags[0]}{split}")
        txt = ws.cached_texts(dual, dual.textual, list(pairs.captions), f"{tags[1]}{split}")
        vectors, extra = split_features(img, dual.embed_dim, use_extra)
        data[split] = HeadData(vectors, extra, txt, pairs.caption_image)
    return data


def finished_fit(folder: Path) -> FitResult | None:
    """The result a fitted stage left in ``folder`` (its done.json), or None."""
    done = folder / DONE_FILE
    if not done.is_file():
        return None
    return FitResult.from_dict(json.loads(done.read_text(encoding="utf-8")))


def save_fit(
    ws: Workspace,
    stage: str,
    dual: DualEncoder,
    result: FitResult,
    log: list[dict] | None = None,
) -> None:
    """Keep a fitted stage: its towers, the fit's log and done.json (main process only)."""
    if not ws.ctx.is_main:
        return
    folder = ws.out / stage
    ws.save(stage, dual)
    if log is not None:
        save_text(folder / "log.jsonl", "".join(json.dumps(r) + "\n" for r in log))
    save_json(folder / DONE_FILE, result.to_dict())
