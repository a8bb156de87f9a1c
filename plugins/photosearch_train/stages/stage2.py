"""Stage 2 for a truncated student: InfoNCE + KD towards T' + corpus hard negatives on the
paired captions, tower by tower (MoTIS's sequential fine-tuning), or both towers jointly
(the "w/o SF" ablation)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np
import torch
from torch import nn

from photosearch_train import losses
from photosearch_train.data import embed_images
from photosearch_train.dual_encoder import DualEncoder
from photosearch_train.hard_negatives import HardNegativeMiner
from photosearch_train.phases import captions_of, joint_phase
from photosearch_train.results import PhaseResult, StageResult
from photosearch_train.text_negatives import negatives_for
from photosearch_train.trainer import train_phase
from photosearch_train.validation import fixed, recall_check, val_image_vectors, val_text_vectors
from photosearch_train.workspace import STAGE1, STAGE2, Workspace

Terms = dict[str, torch.Tensor]


def run(ws: Workspace, stop_after: int | None = None) -> StageResult:
    """Fine-tune the stage-1 student; it is saved as ``stage2``."""
    s2 = ws.config.stage2
    student = ws.student(STAGE1)
    if not s2.enabled:
        ws.save(STAGE2, student)
        return StageResult(STAGE2, note="disabled")
    if not s2.sequential:
        return _joint(ws, student, stop_after)
    tprime = ws.finetuned_teacher()
    targets = _Targets.of(ws, tprime)
    tp_val_texts = ws.cached_texts(tprime, tprime.textual, ws.val.captions, f"{tprime.name}-val")
    image = _image_phase(ws, student, tprime, targets, tp_val_texts, stop_after)
    if not image.finished:
        return StageResult(STAGE2, {"image": image})
    ws.save("stage2-image", student)
    text = _text_phase(ws, student, targets, stop_after)
    if text.finished:
        ws.save("stage2-text", student)
        ws.save(STAGE2, student)
    return StageResult(STAGE2, {"image": image, "text": text})


@dataclass(frozen=True)
class _Targets:
    """T''s vectors of the train split, computed once, and each caption's word-swapped copy
    (``stage2.text_hard_negatives``; None for a caption without one)."""

    images_np: np.ndarray
    texts_np: np.ndarray
    images: torch.Tensor
    texts: torch.Tensor
    swapped: list[str | None] | None

    @classmethod
    def of(cls, ws: Workspace, tprime: DualEncoder) -> _Targets:
        captions, images = ws.train.captions, list(ws.train.images)
        images_np = ws.cached_images(tprime, tprime.visual, images, f"{tprime.name}-img")
        texts_np = ws.cached_texts(tprime, tprime.textual, captions, f"{tprime.name}-txt")
        swapped = None
        if ws.config.stage2.text_hard_negatives:
            swapped = negatives_for(list(captions), ws.config.seed)
        return cls(images_np, texts_np, ws.tensor(images_np), ws.tensor(texts_np), swapped)


def _kd(
    s_t: torch.Tensor,
    s_v: torch.Tensor,
    tp_t: torch.Tensor,
    tp_v: torch.Tensor,
    own_s: torch.Tensor,
    own_tp: torch.Tensor,
    tau: float,
) -> torch.Tensor:
    """Matching KL of the student's text/image similarities (``s_t``, ``s_v``) towards T''s
    (``tp_t``, ``tp_v``), plus intra-modal distillation of the tower in training (its
    vectors ``own_s`` towards T''s ``own_tp``)."""
    return losses.matching_kd(s_t, s_v, tp_t, tp_v, tau) + losses.intra_modal_contrastive(
        own_s, own_tp, tau
    )


def _image_phase(
    ws: Workspace,
    student: DualEncoder,
    tprime: DualEncoder,
    targets: _Targets,
    tp_val_texts: np.ndarray,
    stop_after: int | None,
) -> PhaseResult:
    """The image tower, its text side T''s cached text vectors (hard negatives: mined
    captions and word swaps, encoded by T')."""
    s2, train = ws.config.stage2, ws.train
    tau, k, images = s2.optim.temperature, s2.hard_negatives, list(train.images)
    text_miner = (
        HardNegativeMiner(targets.texts_np, train.caption_image, seed=ws.config.seed) if k else None
    )
    swap_t = None
    if targets.swapped:
        swaps = [s or "" for s in targets.swapped]
        swap_t = ws.tensor(ws.cached_texts(tprime, tprime.textual, swaps, f"{tprime.name}-swap"))
    student.textual.requires_grad_(False)
    student.visual.requires_grad_(True)

    def image_loss(module: nn.Module, idx: np.ndarray, epoch: int) -> Terms:
        caps = captions_of(ws, idx, epoch)
        s_v = ws.images_of(student, module, [images[i] for i in idx])
        t, tp_v = targets.texts[caps], targets.images[idx]
        out = {"infonce": losses.clip_loss(t, s_v, tau)}
        if s2.kd:
            out["kd"] = s2.kd_weight * _kd(t, s_v, t, tp_v, s_v, tp_v, tau)
        negs = []
        if text_miner is not None:
            mined = text_miner.mine(s_v.detach().float().cpu().numpy(), idx, k)
            negs.append(targets.texts[torch.from_numpy(mined).to(ws.ctx.device)])
        if swap_t is not None:
            negs.append(swap_t[caps].unsqueeze(1))
        if negs:
            out["hn"] = losses.hard_negative_nce(s_v, t, torch.cat(negs, dim=1), tau)
        out["loss"] = sum(out.values())
        return out

    return train_phase(
        ws.phase("stage2-image", len(images), s2.optim),
        student.visual,
        image_loss,
        ws.ctx,
        recall_check(ws, val_image_vectors(ws, student, student.visual), fixed(tp_val_texts)),
        stop_after,
    )


def _text_phase(
    ws: Workspace, student: DualEncoder, targets: _Targets, stop_after: int | None
) -> PhaseResult:
    """The text tower, its image side the trained student image tower (vectors cached;
    hard negatives mined among them)."""
    s2, train = ws.config.stage2, ws.train
    tau, k, images = s2.optim.temperature, s2.hard_negatives, list(train.images)
    student.visual.requires_grad_(False)
    student.textual.requires_grad_(True)
    pre, device = student.preprocessing, ws.ctx.device
    s_images_np = embed_images(student.visual, images, pre, ws.pixels, device)
    s_images = ws.tensor(s_images_np)
    s_val_images = embed_images(student.visual, ws.val.images, pre, ws.pixels, device)
    image_miner = (
        HardNegativeMiner(s_images_np, np.arange(len(images)), seed=ws.config.seed) if k else None
    )

    def text_loss(module: nn.Module, idx: np.ndarray, epoch: int) -> Terms:
        caps = captions_of(ws, idx, epoch)
        s_t = ws.texts_of(student, module, [train.captions[i] for i in caps])
        v, tp_t = s_images[idx], targets.texts[caps]
        out = {"infonce": losses.clip_loss(s_t, v, tau)}
        if s2.kd:
            out["kd"] = s2.kd_weight * _kd(s_t, v, tp_t, targets.images[idx], s_t, tp_t, tau)
        if image_miner is not None:
            mined = image_miner.mine(s_t.detach().float().cpu().numpy(), idx, k)
            out["hn"] = losses.hard_negative_nce(
                s_t, v, s_images[torch.from_numpy(mined).to(ws.ctx.device)], tau
            )
        hn_text = _word_swap_loss(ws, student, module, targets.swapped, caps, v, s_t, tau)
        if hn_text is not None:
            out["hn_text"] = hn_text
        out["loss"] = sum(out.values())
        return out

    return train_phase(
        ws.phase("stage2-text", len(images), s2.optim),
        student.textual,
        text_loss,
        ws.ctx,
        recall_check(ws, fixed(s_val_images), val_text_vectors(ws, student, student.textual)),
        stop_after,
    )


def _joint(ws: Workspace, student: DualEncoder, stop_after: int | None) -> StageResult:
    """Stage 2 without SF (the "w/o SF" ablation): both student towers in one phase with the
    sequential phases' losses: L_t2v + L_v2t between the student's own towers; KD (matching
    KL against T' + L_v2v and L_t2t towards T'); hard negatives mined, with the student's
    vectors as queries, from hnswlib indexes of T' embeddings of the other modality (built
    once, since the student's own other tower keeps changing), and encoded by the student's
    current other tower without gradient (a memory-bank-like key); word-swap text negatives
    encoded by the student's text tower with gradient, as in the text phase.
    """
    s2, train, seed = ws.config.stage2, ws.train, ws.config.seed
    tau, k, images = s2.optim.temperature, s2.hard_negatives, list(train.images)
    targets = _Targets.of(ws, ws.finetuned_teacher())
    text_miner = HardNegativeMiner(targets.texts_np, train.caption_image, seed=seed) if k else None
    image_miner = (
        HardNegativeMiner(targets.images_np, np.arange(len(images)), seed=seed) if k else None
    )

    def joint_loss(module: nn.Module, idx: np.ndarray, epoch: int) -> Terms:
        visual, textual = partial(module, "visual"), partial(module, "textual")
        caps = captions_of(ws, idx, epoch)
        s_v = ws.images_of(student, visual, [images[i] for i in idx])
        s_t = ws.texts_of(student, textual, [train.captions[i] for i in caps])
        out = {"infonce": losses.clip_loss(s_t, s_v, tau)}
        if s2.kd:
            tp_t, tp_v = targets.texts[caps], targets.images[idx]
            out["kd"] = s2.kd_weight * (
                _kd(s_t, s_v, tp_t, tp_v, s_v, tp_v, tau)
                + losses.intra_modal_contrastive(s_t, tp_t, tau)
            )
        if text_miner is not None and image_miner is not None:
            mined_t = text_miner.mine(s_v.detach().float().cpu().numpy(), idx, k)
            neg_t = _encode_negatives(
                lambda ids: ws.texts_of(student, textual, [train.captions[i] for i in ids]),
                mined_t,
            )
            mined_v = image_miner.mine(s_t.detach().float().cpu().numpy(), idx, k)
            neg_v = _encode_negatives(
                lambda ids: ws.images_of(student, visual, [images[i] for i in ids]), mined_v
            )
            out["hn"] = losses.hard_negative_nce(s_v, s_t, neg_t, tau) + losses.hard_negative_nce(
                s_t, s_v, neg_v, tau
            )
        hn_text = _word_swap_loss(ws, student, textual, targets.swapped, caps, s_v, s_t, tau)
        if hn_text is not None:
            out["hn_text"] = hn_text
        out["loss"] = sum(out.values())
        return out

    joint = joint_phase(ws, "stage2-joint", STAGE2, student, joint_loss, s2.optim, stop_after)
    return StageResult(STAGE2, {"joint": joint})


def _encode_negatives(
    encode: Callable[[np.ndarray], torch.Tensor], mined: np.ndarray
) -> torch.Tensor:
    """Mined negatives [batch, k] encoded without gradient, each distinct item once."""
    unique, inverse = np.unique(mined, return_inverse=True)
    with torch.no_grad():
        keys = encode(unique)
    return keys[torch.from_numpy(inverse.reshape(mined.shape)).to(keys.device)]


def _word_swap_loss(
    ws: Workspace,
    student: DualEncoder,
    textual: Callable,
    swapped: list[str | None] | None,
    caps: np.ndarray,
    v: torch.Tensor,
    t: torch.Tensor,
    tau: float,
) -> torch.Tensor | None:
    """VLDeformer text negatives: each caption's word-swapped copy, encoded by the student's
    text tower (with gradient), as one extra negative for its image; None without swaps or
    when no caption in the batch has one."""
    if swapped is None:
        return None
    has = [i for i, c in enumerate(caps) if swapped[c]]
    if not has:
        return None
    neg = ws.texts_of(student, textual, [swapped[caps[i]] for i in has])
    return losses.hard_negative_nce(v[has], t[has], neg.unsqueeze(1), tau)
