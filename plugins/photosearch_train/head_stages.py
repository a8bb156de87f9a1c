"""The head-based parts of the recipe: T -> T' by fitting projection heads on frozen (or
already fine-tuned) towers, and the "teacher" student (T's image tower at a lower resolution
with its own head, fitted against T') — both on features computed once and cached.
"""

from __future__ import annotations

import copy
import json
from dataclasses import replace

import numpy as np
import torch
from torch import nn

from photosearch_train.config import RecipeConfig
from photosearch_train.device import sharded
from photosearch_train.files import save_json, save_text
from photosearch_train.heads import (
    HeadData,
    HeadedImageTower,
    HeadedTextTower,
    ProjectionHead,
    extra_dim,
    fit_heads,
    image_features,
    is_conse,
)
from photosearch_train.teachers import DualEncoder

HEAD_STAGE = "finetune_teacher-head"


class _FeatureConcat(nn.Module):
    """[tower output | extra features] as one array, so the corpus caches can store both."""

    def __init__(self, tower: nn.Module) -> None:
        super().__init__()
        self.tower = tower

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        vec, extra = image_features(self.tower, image)
        return torch.cat([vec, extra], dim=-1)


def lowres_image_tower(tower: nn.Module, size: int) -> nn.Module:
    """A copy of ``tower`` for ``size`` px input: ConSE gets a Lite0 built for that size (the
    weights do not depend on it); other towers are copied as they are."""
    if not is_conse(tower):
        return copy.deepcopy(tower)
    from photosearch_conse.efficientnet import EfficientNetLite0

    net = EfficientNetLite0(image_size=size, num_classes=tower.net._fc.out_features)
    net.load_state_dict(tower.net.state_dict())
    low = copy.deepcopy(tower)
    low.net = net.eval()
    return low


def wrap_with_heads(dual: DualEncoder, use_extra: bool) -> DualEncoder:
    """``dual`` with identity heads on both towers (what a saved head stage loads into)."""
    dim = dual.embed_dim
    extra = extra_dim(dual.visual, dim) if use_extra else 0
    dual.visual = HeadedImageTower(dual.visual, ProjectionHead(dim, extra)).eval()
    dual.textual = HeadedTextTower(dual.textual, ProjectionHead(dim)).eval()
    dual.name = f"{dual.name}-head"
    return dual


def _split(features: np.ndarray, dim: int, use_extra: bool) -> tuple[np.ndarray, np.ndarray]:
    vec, extra = features[:, :dim], features[:, dim:]
    return vec, (extra if use_extra else extra[:, :0])


def run_teacher_head(ws) -> dict:  # noqa: ANN001 - a stages.Workspace
    """Fit heads on T's (or the fine-tuned towers') cached features; best on val is kept."""
    from photosearch_train.stages import recall_scores

    ft, out = ws.config.finetune_teacher, ws.out / HEAD_STAGE
    if (out / "done.json").is_file():
        return json.loads((out / "done.json").read_text(encoding="utf-8"))
    base = ws.finetuned_teacher(with_head=False)
    dim = base.embed_dim
    feats = _FeatureConcat(base.visual)
    data = {}
    for split, pairs in (("train", ws.train), ("val", ws.val)):
        img = ws.cached_images(base, feats, list(pairs.images), f"{base.name}-feat-{split}")
        txt = ws.cached_texts(base, base.textual, list(pairs.captions), f"{base.name}-{split}")
        data[split] = HeadData(*_split(img, dim, ft.head_extra), txt, pairs.caption_image)
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
    summary = {"phase": HEAD_STAGE, "finished": True, "best_val": fit.best, "tau": fit.temperature}
    if ws.ctx.is_main:
        ws.save(HEAD_STAGE, headed)
        save_text(out / "log.jsonl", "".join(json.dumps(r) + "\n" for r in fit.log))
        save_json(out / "done.json", summary)
    return summary


def make_teacher_student(tprime: DualEncoder, config: RecipeConfig, name: str) -> DualEncoder:
    """T''s image tower at ``student.image_size`` px with a fresh identity head, and T''s text
    tower (head included) keeping ``student.text_layers``."""
    from photosearch_train.towers import StudentText

    s, dim = config.student, tprime.embed_dim
    visual = tprime.visual.tower if isinstance(tprime.visual, HeadedImageTower) else tprime.visual
    use_extra = config.finetune_teacher.head_extra
    low = lowres_image_tower(visual, s.image_size)
    head = ProjectionHead(dim, extra_dim(low, dim) if use_extra else 0)
    text = tprime.textual
    if isinstance(text, HeadedTextTower):
        textual = HeadedTextTower(StudentText(text.tower, s.text_layers), copy.deepcopy(text.head))
    else:
        textual = StudentText(text, s.text_layers)
    return DualEncoder(
        name=name,
        visual=HeadedImageTower(low, head).eval(),
        textual=textual.eval(),
        tokenizer_file=tprime.tokenizer_file,
        preprocessing=replace(tprime.preprocessing, size=s.image_size),
        context_length=tprime.context_length,
        embed_dim=dim,
        pad_token=tprime.pad_token,
        provenance={"student": {"image_tower": "teacher", **_describe(config)}},
    )


def _describe(config: RecipeConfig) -> dict:
    from dataclasses import asdict

    return asdict(config.student)


def run_student_head(ws, stop_after: int | None = None) -> dict:  # noqa: ANN001 - a Workspace
    """Fit the student's image head: InfoNCE against the student's text vectors (T''s text
    tower) plus, with ``stage2.kd``, intra-modal distillation towards T' image vectors; then
    optionally the tower's tail on cached activations and crop distillation of the whole tower
    (``stage2.crop_optim.epochs``), which is resumable like any phase."""
    from photosearch_train.stages import recall_scores

    s2, out = ws.config.stage2, ws.out / "stage2"
    if (out / "done.json").is_file():
        return json.loads((out / "done.json").read_text(encoding="utf-8"))
    tprime = ws.finetuned_teacher()
    student = ws.student(fresh=True)
    dim = student.embed_dim
    use_extra = ws.config.finetune_teacher.head_extra
    feats = _FeatureConcat(student.visual.tower)
    tag = f"S{student.preprocessing.size}-{tprime.name}"
    data = {}
    for split, pairs in (("train", ws.train), ("val", ws.val)):
        img = ws.cached_images(student, feats, list(pairs.images), f"{tag}-feat-{split}")
        txt = ws.cached_texts(student, student.textual, list(pairs.captions), f"{tag}-txt-{split}")
        data[split] = HeadData(*_split(img, dim, use_extra), txt, pairs.caption_image)
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
    summary = {"phase": "stage2-head", "finished": True, "best_val": fit.best}
    if s2.train_blocks and is_conse(student.visual.tower):
        texts = {split: data[split].text_vec for split in data}
        tail = fit_tail(ws, student, texts, targets)
        summary["tail"] = {"best_val": tail["best_val"], "start_block": tail["start_block"]}
        fit.log.extend({"tail": True, **row} for row in tail["log"])
    if s2.crop_optim.epochs > 0:
        crops = run_crop_distillation(ws, student, tprime, data["val"].text_vec, stop_after)
        summary["crops"] = {k: crops.get(k) for k in ("best_val", "steps", "finished")}
        if not crops["finished"]:
            return crops
    if ws.ctx.is_main:
        ws.save("stage2", student)
        save_text(out / "log.jsonl", "".join(json.dumps(r) + "\n" for r in fit.log))
        save_json(out / "done.json", summary)
    return summary


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


def fit_tail(ws, student: DualEncoder, texts: dict, targets: np.ndarray | None) -> dict:  # noqa: ANN001
    """Train the last ``stage2.train_blocks`` blocks + conv head + head of the student's
    (ConSE) image tower: InfoNCE vs its text vectors (+ distillation towards T' image vectors),
    best val R-sum kept (step 0 included). BatchNorm keeps its statistics."""
    from photosearch_train import losses
    from photosearch_train.stages import recall_scores
    from photosearch_train.trainer import freeze_batchnorm

    s2 = ws.config.stage2
    net = student.visual.tower.net
    start = len(net._blocks) - s2.train_blocks
    front = _Front(net, start)
    size = student.preprocessing.size
    with torch.no_grad():
        x = torch.nn.functional.relu6(net._bn0(net._conv_stem(torch.zeros(1, 3, size, size))))
        for block in net._blocks[:start]:
            x = block(x)
    shape = tuple(x.shape[1:])
    tag = f"S{size}-front{start}"
    acts = {
        split: torch.from_numpy(
            ws.cached_images(student, front, list(pairs.images), f"{tag}-{split}")
        )
        for split, pairs in (("train", ws.train), ("val", ws.val))
    }
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
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / max(1, opt_cfg.warmup_steps))
    )

    def validate() -> dict:
        tail.eval()
        with torch.no_grad():
            v = torch.cat([tail(acts["val"][i : i + 128]) for i in range(0, len(acts["val"]), 128)])
        return recall_scores(texts["val"], v.numpy(), ws.val)

    best = {"step": 0, **validate()}
    state = {k: v.clone() for k, v in student.visual.state_dict().items()}
    log = [{"step": 0, "val": best}]
    order = torch.randperm(len(owners), generator=gen)
    for step in range(1, total + 1):
        if step > 1 and (step - 1) % per_epoch == 0:
            order = torch.randperm(len(owners), generator=gen)
        idx = order[((step - 1) % per_epoch) * size_b :][:size_b]
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
    return {"best_val": best, "log": log, "start_block": start}


def run_crop_distillation(
    ws,  # noqa: ANN001 - a stages.Workspace
    student: DualEncoder,
    tprime: DualEncoder,
    val_texts: np.ndarray | None,
    stop_after: int | None = None,
) -> dict:
    """Phase ``stage2-crops``: the student's whole image tower (BatchNorm statistics kept)
    learns T''s image vectors of random crops of the unpaired images. Validation gives the
    mean cosine between the student's and T''s vectors of the val photos (what this phase
    optimises; far less noisy than R-sum on 100 photos) and, with ``val_texts`` (None when
    training on photos alone), val recall; ``stage2.crop_select`` says which picks the kept
    weights."""
    from photosearch_train.crops import CropPairs, TowerWithFeatures, crop_distillation_loss
    from photosearch_train.stages import _val_images, recall_scores
    from photosearch_train.trainer import train_phase

    s2 = ws.config.stage2
    if s2.crop_select not in ("cos_to_teacher", "rsum"):
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

    def loss_fn(module, idx, epoch):  # noqa: ANN001, ANN202
        big, small = crops.batch(idx, epoch)
        with torch.no_grad():
            target = teacher(ws.tensor(big))
        return crop_distillation_loss(
            module(ws.tensor(small)), target, tau, s2.crop_cosine_weight, s2.crop_feature_weight
        )

    val_targets = ws.cached_images(tprime, tprime.visual, ws.val_images(), f"{tprime.name}-val-img")

    def validate() -> dict:
        vectors = _val_images(ws, student, student.visual)()
        scores = recall_scores(val_texts, vectors, ws.val) if val_texts is not None else {}
        scores["cos_to_teacher"] = float((vectors * val_targets).sum(axis=1).mean())
        return scores

    phase = replace(ws.phase("stage2-crops", len(paths), s2.crop_optim), select_on=s2.crop_select)
    summary = train_phase(
        phase, TowerWithFeatures(student.visual), loss_fn, ws.ctx, validate, stop_after
    )
    student.visual.requires_grad_(False).eval()
    return summary
