"""Stage 2 for the "teacher" student (T's image tower at a lower resolution, with its own
head): the head fitted on cached features against T''s text tower, then optionally the
tower's last Lite0 blocks on cached activations, and crop distillation of the whole tower.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from photosearch_train import losses
from photosearch_train.dual_encoder import DualEncoder
from photosearch_train.heads import (
    HeadedImageTower,
    epoch_batches,
    fit_heads,
    is_conse,
    warmup_schedule,
)
from photosearch_train.metrics import recall_scores
from photosearch_train.phases import crop_distillation, finished_fit, head_data, save_fit
from photosearch_train.results import FitResult, StageResult, crops_summary
from photosearch_train.trainer import freeze_batchnorm
from photosearch_train.workspace import STAGE2, Workspace

HEAD_PHASE = "stage2-head"


def run(ws: Workspace, stop_after: int | None = None) -> StageResult:
    """Fit the student's image head: InfoNCE against the student's text vectors (T''s text
    tower) plus, with ``stage2.kd``, intra-modal distillation towards T' image vectors; then
    optionally the tower's tail on cached activations and crop distillation of the whole tower
    (``stage2.crop_optim.epochs``), which is resumable like any phase."""
    done = finished_fit(ws.out / STAGE2)
    if done is not None:
        return StageResult(STAGE2, {"head": done})
    s2 = ws.config.stage2
    tprime = ws.finetuned_teacher()
    student = ws.student(fresh=True)
    tag = f"S{student.preprocessing.size}-{tprime.name}"
    use_extra = ws.config.finetune_teacher.head_extra
    data = head_data(ws, student, student.visual.tower, (f"{tag}-feat-", f"{tag}-txt-"), use_extra)
    targets = None
    if s2.kd:
        targets = ws.cached_images(
            tprime, tprime.visual, list(ws.train.images), f"{tprime.name}-img"
        )
    fit = fit_heads(
        data["train"],
        data["val"],
        s2.head_optim,
        lambda t, v: recall_scores(t, v, ws.val),
        train_text_head=False,
        learn_temperature=ws.config.finetune_teacher.learn_temperature,
        image_targets=targets,
        distil_weight=s2.kd_weight,
        seed=ws.config.seed,
    )
    student.visual.head.load_state_dict(fit.image_head.state_dict())
    tail = None
    if s2.train_blocks and is_conse(student.visual.tower):
        texts = {split: data[split].text_vec for split in data}
        fitted = fit_tail(ws, student, texts, targets)
        tail = {"best_val": fitted.best_val, "start_block": fitted.start_block}
        fit.log.extend({"tail": True, **row} for row in fitted.log)
    crops = None
    if s2.crop_optim.epochs > 0:
        phase = crop_distillation(ws, student, tprime, data["val"].text_vec, stop_after)
        if not phase.finished:
            return StageResult(STAGE2, {"crops": phase})
        crops = crops_summary(phase)
    result = FitResult(HEAD_PHASE, best_val=fit.best, tail=tail, crops=crops)
    save_fit(ws, STAGE2, student, result, fit.log)
    return StageResult(STAGE2, {"head": result})


# ---------------------------------------------------------------------------------------------
# The student's last Lite0 blocks, trained on cached activations of the frozen blocks before


class _Front(nn.Module):
    """Stem + Lite0 blocks before ``start``: the frozen part whose output is cached."""

    def __init__(self, net: nn.Module, start: int) -> None:
        super().__init__()
        self.net, self.start = net, start

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        net = self.net
        x = torch.nn.functional.relu6(net._bn0(net._conv_stem(image)))
        for block in net._blocks[: self.start]:
            x = block(x)
        return x.flatten(1)


class _Tail(nn.Module):
    """Blocks from ``start`` on, conv head, ConSE mix and the projection head: cached front
    activations -> unit vectors (the same weights the exported tower uses)."""

    def __init__(self, visual: HeadedImageTower, start: int, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.visual, self.start, self.shape = visual, start, shape

    def forward(self, flat: torch.Tensor) -> torch.Tensor:
        tower = self.visual.tower
        net = tower.net
        x = flat.view(len(flat), *self.shape)
        for block in net._blocks[self.start :]:
            x = block(x)
        pooled = torch.nn.functional.relu6(net._bn1(net._conv_head(x))).mean(dim=(2, 3))
        top, idx = net._fc(pooled).topk(tower.top_k, dim=-1)
        weights = (top * tower.inv_temperature).softmax(dim=-1)
        mixed = (weights.unsqueeze(-1) * tower.class_embeddings[idx]).sum(dim=1)
        return self.visual.head(torch.nn.functional.normalize(mixed, dim=-1), pooled)


def _front_activations(
    ws: Workspace, student: DualEncoder, start: int
) -> tuple[dict[str, torch.Tensor], tuple[int, ...]]:
    """The frozen blocks' (before ``start``) flattened activations of the train and val
    photos, cached, and their shape per photo."""
    net = student.visual.tower.net
    size = student.preprocessing.size
    with torch.no_grad():
        x = torch.nn.functional.relu6(net._bn0(net._conv_stem(torch.zeros(1, 3, size, size))))
        for block in net._blocks[:start]:
            x = block(x)
    front, tag = _Front(net, start), f"S{size}-front{start}"
    acts = {
        split: torch.from_numpy(
            ws.cached_images(student, front, list(pairs.images), f"{tag}-{split}")
        )
        for split, pairs in (("train", ws.train), ("val", ws.val))
    }
    return acts, tuple(x.shape[1:])


@dataclass(frozen=True)
class TailFit:
    """The tail fit: the kept step's val scores, the log, the first block trained."""

    best_val: dict[str, float]
    log: list[dict]
    start_block: int


def fit_tail(
    ws: Workspace, student: DualEncoder, texts: dict[str, np.ndarray], targets: np.ndarray | None
) -> TailFit:
    """Train the last ``stage2.train_blocks`` blocks + conv head + head of the student's
    (ConSE) image tower: InfoNCE vs its text vectors (+ distillation towards T' image vectors),
    best val R-sum kept (step 0 included). BatchNorm keeps its statistics."""
    s2 = ws.config.stage2
    net = student.visual.tower.net
    start = len(net._blocks) - s2.train_blocks
    acts, shape = _front_activations(ws, student, start)
    tail = _Tail(student.visual, start, shape)
    student.visual.requires_grad_(False)
    for module in (*net._blocks[start:], net._conv_head, net._bn1, student.visual.head):
        module.requires_grad_(True)
    params = [p for p in tail.parameters() if p.requires_grad]
    opt_cfg = s2.tail_optim
    opt = torch.optim.AdamW(params, lr=opt_cfg.lr, weight_decay=opt_cfg.weight_decay)
    tau = opt_cfg.temperature
    train_txt = torch.from_numpy(texts["train"])
    tgt = torch.from_numpy(targets) if targets is not None else None
    owners = [np.flatnonzero(ws.train.caption_image == i) for i in range(len(ws.train.images))]
    rng, gen = np.random.default_rng(ws.config.seed), torch.Generator().manual_seed(ws.config.seed)
    size_b = min(opt_cfg.batch_size, len(owners))
    per_epoch = max(1, len(owners) // size_b)
    total = int(np.ceil(opt_cfg.epochs * per_epoch))
    sched = warmup_schedule(opt, opt_cfg.warmup_steps)

    def validate() -> dict:
        tail.eval()
        with torch.no_grad():
            v = torch.cat([tail(acts["val"][i : i + 128]) for i in range(0, len(acts["val"]), 128)])
        return recall_scores(texts["val"], v.numpy(), ws.val)

    best = {"step": 0, **validate()}
    state = {k: v.clone() for k, v in student.visual.state_dict().items()}
    log = [{"step": 0, "val": best}]
    for step, idx in epoch_batches(len(owners), size_b, total, gen):
        caps = torch.from_numpy(np.asarray([rng.choice(owners[int(i)]) for i in idx]))
        tail.train()
        freeze_batchnorm(tail)
        v = tail(acts["train"][idx])
        loss = losses.clip_loss(train_txt[caps], v, tau)
        if tgt is not None:
            loss = loss + s2.kd_weight * losses.intra_modal_contrastive(v, tgt[idx], tau)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if opt_cfg.grad_clip:
            nn.utils.clip_grad_norm_(params, opt_cfg.grad_clip)
        opt.step()
        sched.step()
        if step % per_epoch == 0 or step == total:
            scores = validate()
            log.append({"step": step, "loss": float(loss.detach()), "val": scores})
            if scores["rsum"] > best["rsum"]:
                best = {"step": step, **scores}
                state = {k: v.clone() for k, v in student.visual.state_dict().items()}
    student.visual.load_state_dict(state)
    student.visual.requires_grad_(False).eval()
    return TailFit(best, log, start)
