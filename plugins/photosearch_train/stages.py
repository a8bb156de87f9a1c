"""The recipe's stages as functions of a Workspace: stage 1 (task-agnostic distillation),
teacher fine-tuning (T -> T'), stage 2 (student fine-tuning with KD and hard negatives).

Each stage saves its towers under ``<out_dir>/<stage>/model.pt``; later stages (and separate CLI
invocations) load them from there. Frozen towers' outputs are computed once and cached.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

import numpy as np
import torch
from torch import nn

from photosearch.evaluation import image_to_text_ranks, recall_from_ranks, text_to_image_ranks
from photosearch_train import losses
from photosearch_train.config import ConfigError, OptimConfig, RecipeConfig
from photosearch_train.corpus import distillation_texts
from photosearch_train.data import (
    Pairs,
    PixelCache,
    cached,
    check_image_source,
    corpus_key,
    embed_images,
    embed_texts,
    list_images,
    load_pairs,
    load_texts,
)
from photosearch_train.device import Context
from photosearch_train.files import save_torch
from photosearch_train.hard_negatives import HardNegativeMiner
from photosearch_train.onnx_teacher import ONNX_TEACHER, is_onnx_tower
from photosearch_train.photos_only import (
    PHOTOS_ONLY_RECIPE,
    check_photos_only,
    readable,
    sample_queries,
    split_photos,
)
from photosearch_train.teachers import DualEncoder, load_teacher, make_student
from photosearch_train.trainer import Phase, train_phase


@dataclass
class Workspace:
    config: RecipeConfig
    ctx: Context
    pixels: PixelCache = field(default_factory=PixelCache)

    def __post_init__(self) -> None:
        c = self.config
        self.out = Path(c.out_dir)
        self.cache_dir = self.out / "cache"
        if not c.captions and not c.stage1.images:
            raise ConfigError(
                "no training data: pass --captions FILE (a captions.jsonl with train and val "
                "splits; see docs/training.md), or to train on photos alone, --images FOLDER "
                f"with --recipe {PHOTOS_ONLY_RECIPE}"
            )
        if c.captions and not Path(c.captions).is_file():
            raise ConfigError(f"captions file not found: {c.captions}")
        if c.stage1.images:  # before any stage runs, not when distillation first needs them
            check_image_source(Path(c.stage1.images))
        if c.teacher.kind == ONNX_TEACHER:
            check_onnx_teacher(c)
        # Without captions (photos only): no pairs; a held-out sample of the photos validates.
        self.train: Pairs | None = None
        self.val: Pairs | None = None
        self._photos: list[Path] = []
        self.held_out_photos: list[Path] = []
        if c.captions:
            self.train = load_pairs(Path(c.captions), "train", c.max_train_images)
            self.val = load_pairs(Path(c.captions), "val", c.max_val_images)
        else:
            check_photos_only(c)
            photos = list_images(Path(c.stage1.images), c.stage1.max_images)
            self._photos, held_out = split_photos(photos)
            self.held_out_photos = readable(held_out)

    @property
    def paired(self) -> bool:
        """Whether the run has captions (else it distils on photos alone)."""
        return self.train is not None

    def val_images(self) -> list[Path]:
        """The photos that choose checkpoints: the val split's, or the held-out photos."""
        return list(self.val.images) if self.val is not None else list(self.held_out_photos)

    def teacher(self) -> DualEncoder:
        # The texts the run knows (only the tiny test teacher builds its vocabulary from them)
        corpus = self.train.captions if self.train is not None else sample_queries()
        return load_teacher(self.config.teacher, self.cache_dir, corpus)

    def finetuned_teacher(self, with_head: bool = True) -> DualEncoder:
        """T' as far as it exists on disk: fine-tuned towers, then (``finetune_teacher.head``)
        the fitted projection heads."""
        from photosearch_train.head_stages import HEAD_STAGE, wrap_with_heads

        teacher = self.teacher()
        path = self.out / "finetune_teacher" / "model.pt"
        if path.is_file():
            teacher.towers().load_state_dict(
                torch.load(path, map_location="cpu", weights_only=True)
            )
            teacher.name = f"{teacher.name}-ft"
        head = self.out / HEAD_STAGE / "model.pt"
        if with_head and self.config.finetune_teacher.head and head.is_file():
            teacher = wrap_with_heads(teacher, self.config.finetune_teacher.head_extra)
            teacher.towers().load_state_dict(
                torch.load(head, map_location="cpu", weights_only=True)
            )
        return teacher

    def student(self, stage: str | None = None, fresh: bool = False) -> DualEncoder:
        """A fresh student, or the one a stage saved ("stage2", "stage1"; None: the latest)."""
        if self.config.student.image_tower == "teacher":
            from photosearch_train.head_stages import make_teacher_student

            student = make_teacher_student(
                self.finetuned_teacher(), self.config, self.config.export.name
            )
        else:
            student = make_student(self.teacher(), self.config.student, self.config.export.name)
        if fresh:
            return student
        for name in [stage] if stage else ["stage2", "stage1"]:
            path = self.out / name / "model.pt"
            if path.is_file():
                student.towers().load_state_dict(
                    torch.load(path, map_location="cpu", weights_only=True)
                )
                break
        return student

    def unpaired_images(self) -> list[Path]:
        """Stage-1 / crop-distillation photos (``stage1.images``; the train split's photos
        when unset; without captions, those photos less the held-out ones)."""
        s1 = self.config.stage1
        if not self.paired:
            return list(self._photos)
        if not s1.images:
            return list(self.train.images)[: s1.max_images or None]
        return list_images(Path(s1.images), s1.max_images)

    def phase(self, name: str, items: int, optim: OptimConfig) -> Phase:
        c = self.config
        return Phase(
            name,
            self.out / name,
            items,
            optim,
            c.seed,
            c.checkpoint_every,
            c.eval_every,
            c.progress,
            c.select_best,
        )

    def cached_images(
        self, dual: DualEncoder, module: nn.Module, paths: Sequence[Path], tag: str
    ) -> np.ndarray:
        if is_onnx_tower(module):  # cached by the bundle's identity, chunk by chunk
            return module.vectors(paths)
        key = corpus_key(tag, paths, dual.preprocessing)
        return cached(
            self.cache_dir / f"{key}.npy",
            lambda: embed_images(
                module.to(self.ctx.device), paths, dual.preprocessing, self.pixels, self.ctx.device
            ),
        )

    def cached_texts(
        self, dual: DualEncoder, module: nn.Module, texts: Sequence[str], tag: str
    ) -> np.ndarray:
        if is_onnx_tower(module):
            return module.vectors(texts)
        key = corpus_key(tag, texts)
        return cached(
            self.cache_dir / f"{key}.npy",
            lambda: embed_texts(module.to(self.ctx.device), dual, texts, self.ctx.device),
        )

    def images_of(self, dual: DualEncoder, module: Callable, paths) -> torch.Tensor:  # noqa: ANN001
        pixels = self.pixels.batch(paths, dual.preprocessing)
        return module(torch.from_numpy(pixels).to(self.ctx.device))

    def texts_of(self, dual: DualEncoder, module: Callable, texts) -> torch.Tensor:  # noqa: ANN001
        ids, mask = dual.tokenize(texts)
        return module(ids.to(self.ctx.device), mask.to(self.ctx.device))

    def save(self, stage: str, dual: DualEncoder) -> Path:
        path = self.out / stage / "model.pt"
        if self.ctx.is_main:
            save_torch(path, dual.towers().state_dict())
        return path

    def tensor(self, array: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(array)).to(self.ctx.device)


def recall_scores(text_vectors: np.ndarray, image_vectors: np.ndarray, pairs: Pairs) -> dict:
    """R@1/5/10 both ways (percent) and their sum, the number best checkpoints are chosen by."""
    scores = text_vectors @ image_vectors.T
    t2i = recall_from_ranks(text_to_image_ranks(scores, pairs.caption_image))
    i2t = recall_from_ranks(image_to_text_ranks(scores.T, pairs.caption_image))
    out = {f"t2i_{k}": v for k, v in t2i.items()} | {f"i2t_{k}": v for k, v in i2t.items()}
    out["rsum"] = float(sum(t2i.values()) + sum(i2t.values()))
    return out


def _validator(ws: Workspace, image_fn, text_fn):  # noqa: ANN001, ANN202
    return lambda: recall_scores(text_fn(), image_fn(), ws.val)


def _val_images(ws: Workspace, dual: DualEncoder, module: nn.Module):  # noqa: ANN202
    return lambda: embed_images(
        module, ws.val_images(), dual.preprocessing, ws.pixels, ws.ctx.device
    )


def _val_texts(ws: Workspace, dual: DualEncoder, module: nn.Module):  # noqa: ANN202
    return lambda: embed_texts(module, dual, ws.val.captions, ws.ctx.device)


def _frozen(values: np.ndarray):  # noqa: ANN202
    return lambda: values


def _cosine_checks(ws: Workspace, teacher: DualEncoder, student: DualEncoder):  # noqa: ANN202
    """Validators without captions: mean cosine of the student's vectors to the teacher's, of
    the held-out photos (image phase) and of the shipped sample queries (text phase; not in
    the corpus the text tower learns from)."""
    queries = sample_queries()
    photos = ws.held_out_photos
    t_photos = ws.cached_images(teacher, teacher.visual, photos, "T-held-out-img")
    t_queries = ws.cached_texts(teacher, teacher.textual, queries, "T-queries")

    def image_check() -> dict:
        vectors = embed_images(
            student.visual, photos, student.preprocessing, ws.pixels, ws.ctx.device
        )
        return {"cos_to_teacher": float((vectors * t_photos).sum(axis=1).mean())}

    def text_check() -> dict:
        vectors = embed_texts(student.textual, student, queries, ws.ctx.device)
        return {"cos_to_teacher": float((vectors * t_queries).sum(axis=1).mean())}

    return image_check, text_check


def check_onnx_teacher(config: RecipeConfig) -> None:
    """Refuse, before any work, what an ONNX teacher cannot do."""
    needs = []
    if config.student.image_tower == "teacher":
        needs.append("a student built from the teacher's towers (use student.image_tower "
                     "'truncated')")
    ft = config.finetune_teacher
    if config.captions and ft.enabled and (ft.towers or ft.head):
        needs.append("fine-tuning the teacher (set finetune_teacher.enabled=false)")
    if config.stage2.crop_optim.epochs > 0:
        needs.append("crop distillation (stage2.crop_optim.epochs=0)")
    if needs:
        raise ConfigError(f"an ONNX teacher cannot be trained through: {'; '.join(needs)}")


def _only(module: nn.Module, *trainable: nn.Module) -> None:
    """Freeze every parameter of ``module`` except those of ``trainable``."""
    module.requires_grad_(False)
    for part in trainable:
        part.requires_grad_(True)


def _captions_of(ws: Workspace, idx: np.ndarray, epoch: int) -> np.ndarray:
    return np.asarray([ws.train.caption_for(int(i), epoch) for i in idx], dtype=np.int64)


# ---------------------------------------------------------------------------------------------
# Stage 1: intra-modal distillation on unpaired data


def run_stage1(ws: Workspace, stop_after: int | None = None) -> dict:
    cfg, s1 = ws.config, ws.config.stage1
    if cfg.student.image_tower == "teacher":
        return {"stage1": "not used: the student starts from T''s towers"}
    teacher = ws.teacher()
    student = make_student(teacher, cfg.student, cfg.export.name)
    if not s1.enabled:
        ws.save("stage1", student)
        return {"stage1": "disabled"}
    tau = s1.optim.temperature
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
    t_images = ws.tensor(ws.cached_images(teacher, teacher.visual, images, "T-img"))
    t_texts = ws.tensor(ws.cached_texts(teacher, teacher.textual, texts, "T-txt"))
    if ws.paired:
        t_val_texts = ws.cached_texts(teacher, teacher.textual, ws.val.captions, "T-val-txt")
        image_check = _validator(
            ws, _val_images(ws, student, student.visual), _frozen(t_val_texts)
        )
        text_check = _validator(
            ws, _val_images(ws, student, student.visual), _val_texts(ws, student, student.textual)
        )
        select_on = "rsum"
    else:  # photos only: how close the student's vectors come to the teacher's
        image_check, text_check = _cosine_checks(ws, teacher, student)
        select_on = "cos_to_teacher"
    report = {}

    def distil(s: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if s1.loss == "mse":
            loss = losses.mse_distillation(s, t)
        else:
            loss = losses.intra_modal_contrastive(s, t, tau)
        if s1.cosine_weight:
            loss = loss + s1.cosine_weight * losses.cosine_distance(s, t)
        return loss

    def image_loss(module, idx, epoch):  # noqa: ANN001, ANN202
        s = ws.images_of(student, module, [images[i] for i in idx])
        if paired:
            loss = losses.clip_loss(t_texts[_captions_of(ws, idx, epoch)], s, tau)
        else:
            loss = distil(s, t_images[idx])
        return {"loss": loss}

    student.visual.requires_grad_(True)
    report["image"] = train_phase(
        replace(ws.phase("stage1-image", len(images), s1.optim), select_on=select_on),
        student.visual,
        image_loss,
        ws.ctx,
        image_check,
        stop_after,
    )
    if not report["image"]["finished"]:
        return report
    ws.save("stage1-image", student)

    def text_loss(module, idx, epoch):  # noqa: ANN001, ANN202
        if paired:
            caps = _captions_of(ws, idx, epoch)
            s = ws.texts_of(student, module, [texts[i] for i in caps])
            return {"loss": losses.clip_loss(s, t_images[idx], tau)}
        s = ws.texts_of(student, module, [texts[i] for i in idx])
        return {"loss": distil(s, t_texts[idx])}

    report["text"] = train_phase(
        replace(
            ws.phase("stage1-text", len(images) if paired else len(texts), s1.optim),
            select_on=select_on,
        ),
        student.textual,
        text_loss,
        ws.ctx,
        text_check,
        stop_after,
    )
    if report["text"]["finished"]:
        ws.save("stage1-text", student)
        ws.save("stage1", student)
    return report


# ---------------------------------------------------------------------------------------------
# Teacher fine-tuning: T -> T' on paired data (sequentially by default)


def run_finetune_teacher(ws: Workspace, stop_after: int | None = None) -> dict:
    """T -> T': the towers' own weights (``towers``), then projection heads (``head``)."""
    from photosearch_train.head_stages import run_teacher_head

    ft = ws.config.finetune_teacher
    if not ft.enabled:
        return {"finetune_teacher": "disabled"}
    report: dict = {}
    if ft.towers:
        report = _finetune_towers(ws, stop_after)
        done = [v.get("finished") for v in report.values() if isinstance(v, dict)]
        if not all(done):
            return report
    if ft.head:
        report["head"] = run_teacher_head(ws)
    return report


def _finetune_towers(ws: Workspace, stop_after: int | None = None) -> dict:
    ft = ws.config.finetune_teacher
    teacher = ws.teacher()
    tau, train = ft.optim.temperature, ws.train
    report: dict = {}
    images = list(train.images)
    if not ft.sequential:
        towers = teacher.towers()
        _only(towers, towers)

        def joint_loss(module, idx, epoch):  # noqa: ANN001, ANN202
            caps = [train.captions[i] for i in _captions_of(ws, idx, epoch)]
            v = ws.images_of(teacher, partial(module, "visual"), [images[i] for i in idx])
            t = ws.texts_of(teacher, partial(module, "textual"), caps)
            return {"loss": losses.clip_loss(t, v, tau)}

        report["joint"] = _joint_phase(
            ws,
            "finetune_teacher-joint",
            "finetune_teacher",
            teacher,
            towers,
            joint_loss,
            ft.optim,
            stop_after,
        )
        return report

    t_texts = ws.tensor(ws.cached_texts(teacher, teacher.textual, train.captions, "T-txt"))
    t_val_texts = ws.cached_texts(teacher, teacher.textual, ws.val.captions, "T-val-txt")
    teacher.textual.requires_grad_(False)
    teacher.visual.requires_grad_(True)

    def image_loss(module, idx, epoch):  # noqa: ANN001, ANN202
        v = ws.images_of(teacher, module, [images[i] for i in idx])
        return {"loss": losses.clip_loss(t_texts[_captions_of(ws, idx, epoch)], v, tau)}

    report["image"] = train_phase(
        ws.phase("finetune_teacher-image", len(images), ft.optim),
        teacher.visual,
        image_loss,
        ws.ctx,
        _validator(ws, _val_images(ws, teacher, teacher.visual), _frozen(t_val_texts)),
        stop_after,
    )
    if not report["image"]["finished"]:
        return report
    ws.save("finetune_teacher-image", teacher)
    teacher.visual.requires_grad_(False)
    teacher.textual.requires_grad_(True)
    v_images = ws.tensor(
        embed_images(teacher.visual, images, teacher.preprocessing, ws.pixels, ws.ctx.device)
    )
    v_val = embed_images(
        teacher.visual, ws.val.images, teacher.preprocessing, ws.pixels, ws.ctx.device
    )

    def text_loss(module, idx, epoch):  # noqa: ANN001, ANN202
        caps = [train.captions[i] for i in _captions_of(ws, idx, epoch)]
        t = ws.texts_of(teacher, module, caps)
        return {"loss": losses.clip_loss(t, v_images[idx], tau)}

    report["text"] = train_phase(
        ws.phase("finetune_teacher-text", len(images), ft.optim),
        teacher.textual,
        text_loss,
        ws.ctx,
        _validator(ws, _frozen(v_val), _val_texts(ws, teacher, teacher.textual)),
        stop_after,
    )
    if report["text"]["finished"]:
        ws.save("finetune_teacher-text", teacher)
        ws.save("finetune_teacher", teacher)
    return report


# ---------------------------------------------------------------------------------------------
# Stage 2: the student on paired data with InfoNCE + KD + hard negatives, tower by tower


def run_stage2(ws: Workspace, stop_after: int | None = None) -> dict:
    s2 = ws.config.stage2
    if not ws.paired and ws.config.student.image_tower != "teacher":
        from photosearch_train.photos_only import run_photos_student

        return run_photos_student(ws, stop_after)
    if ws.config.student.image_tower == "teacher":
        from photosearch_train.head_stages import run_student_head
        from photosearch_train.photos_only import run_photos_student

        if not ws.paired:
            return run_photos_student(ws, stop_after)
        return run_student_head(ws, stop_after)
    student = ws.student("stage1")
    if not s2.enabled:
        ws.save("stage2", student)
        return {"stage2": "disabled"}
    if not s2.sequential:
        return _stage2_joint(ws, student, stop_after)
    tprime = ws.finetuned_teacher()
    tau, train = s2.optim.temperature, ws.train
    images = list(train.images)
    # T' outputs on the whole training corpus, computed once.
    tp_images = ws.tensor(ws.cached_images(tprime, tprime.visual, images, f"{tprime.name}-img"))
    tp_texts_np = ws.cached_texts(tprime, tprime.textual, train.captions, f"{tprime.name}-txt")
    tp_texts = ws.tensor(tp_texts_np)
    tp_val_texts = ws.cached_texts(tprime, tprime.textual, ws.val.captions, f"{tprime.name}-val")
    swapped = _swapped_captions(ws) if s2.text_hard_negatives else None
    k = s2.hard_negatives
    report: dict = {}

    def kd_terms(s_t, s_v, tp_t, tp_v, own_s, own_tp):  # noqa: ANN001, ANN202
        kl = losses.matching_kd(s_t, s_v, tp_t, tp_v, tau)
        return kl + losses.intra_modal_contrastive(own_s, own_tp, tau)

    # Phase 1: image tower, text side = T' text (cached), as MoTIS's sequential fine-tuning.
    text_miner = (
        HardNegativeMiner(tp_texts_np, train.caption_image, seed=ws.config.seed) if k else None
    )
    swap_t = (
        ws.tensor(
            ws.cached_texts(
                tprime, tprime.textual, [s or "" for s in swapped], f"{tprime.name}-swap"
            )
        )
        if swapped
        else None
    )
    student.textual.requires_grad_(False)
    student.visual.requires_grad_(True)

    def image_loss(module, idx, epoch):  # noqa: ANN001, ANN202
        caps = _captions_of(ws, idx, epoch)
        s_v = ws.images_of(student, module, [images[i] for i in idx])
        t = tp_texts[caps]
        out = {"infonce": losses.clip_loss(t, s_v, tau)}
        if s2.kd:
            out["kd"] = s2.kd_weight * kd_terms(t, s_v, t, tp_images[idx], s_v, tp_images[idx])
        negs = []
        if text_miner is not None:
            mined = text_miner.mine(s_v.detach().float().cpu().numpy(), idx, k)
            negs.append(tp_texts[torch.from_numpy(mined).to(ws.ctx.device)])
        if swap_t is not None:
            negs.append(swap_t[caps].unsqueeze(1))
        if negs:
            out["hn"] = losses.hard_negative_nce(s_v, t, torch.cat(negs, dim=1), tau)
        out["loss"] = sum(out.values())
        return out

    report["image"] = train_phase(
        ws.phase("stage2-image", len(images), s2.optim),
        student.visual,
        image_loss,
        ws.ctx,
        _validator(ws, _val_images(ws, student, student.visual), _frozen(tp_val_texts)),
        stop_after,
    )
    if not report["image"]["finished"]:
        return report
    ws.save("stage2-image", student)

    # Phase 2: text tower, image side = the trained student image tower (cached).
    student.visual.requires_grad_(False)
    student.textual.requires_grad_(True)
    s_images_np = embed_images(
        student.visual, images, student.preprocessing, ws.pixels, ws.ctx.device
    )
    s_images = ws.tensor(s_images_np)
    s_val_images = embed_images(
        student.visual, ws.val.images, student.preprocessing, ws.pixels, ws.ctx.device
    )
    image_miner = (
        HardNegativeMiner(s_images_np, np.arange(len(images)), seed=ws.config.seed) if k else None
    )

    def text_loss(module, idx, epoch):  # noqa: ANN001, ANN202
        caps = _captions_of(ws, idx, epoch)
        s_t = ws.texts_of(student, module, [train.captions[i] for i in caps])
        v = s_images[idx]
        out = {"infonce": losses.clip_loss(s_t, v, tau)}
        if s2.kd:
            out["kd"] = s2.kd_weight * kd_terms(
                s_t, v, tp_texts[caps], tp_images[idx], s_t, tp_texts[caps]
            )
        if image_miner is not None:
            mined = image_miner.mine(s_t.detach().float().cpu().numpy(), idx, k)
            out["hn"] = losses.hard_negative_nce(
                s_t, v, s_images[torch.from_numpy(mined).to(ws.ctx.device)], tau
            )
        if (
            swapped is not None
            and (hn_text := _word_swap_loss(ws, student, module, swapped, caps, v, s_t, tau))
            is not None
        ):
            out["hn_text"] = hn_text
        out["loss"] = sum(out.values())
        return out

    report["text"] = train_phase(
        ws.phase("stage2-text", len(images), s2.optim),
        student.textual,
        text_loss,
        ws.ctx,
        _validator(ws, _frozen(s_val_images), _val_texts(ws, student, student.textual)),
        stop_after,
    )
    if report["text"]["finished"]:
        ws.save("stage2-text", student)
        ws.save("stage2", student)
    return report


def _stage2_joint(ws: Workspace, student: DualEncoder, stop_after: int | None = None) -> dict:
    """Stage 2 without SF (the "w/o SF" ablation): both student towers in one phase with the
    sequential phases' losses: L_t2v + L_v2t between the student's own towers; KD (matching
    KL against T' + L_v2v and L_t2t towards T'); hard negatives mined, with the student's
    vectors as queries, from hnswlib indexes of T' embeddings of the other modality (built
    once, since the student's own other tower keeps changing), and encoded by the student's
    current other tower without gradient (a memory-bank-like key); word-swap text negatives
    encoded by the student's text tower with gradient, as in the text phase.
    """
    s2 = ws.config.stage2
    tprime = ws.finetuned_teacher()
    tau, train = s2.optim.temperature, ws.train
    images = list(train.images)
    tp_images_np = ws.cached_images(tprime, tprime.visual, images, f"{tprime.name}-img")
    tp_texts_np = ws.cached_texts(tprime, tprime.textual, train.captions, f"{tprime.name}-txt")
    tp_images, tp_texts = ws.tensor(tp_images_np), ws.tensor(tp_texts_np)
    swapped = _swapped_captions(ws) if s2.text_hard_negatives else None
    k = s2.hard_negatives
    seed = ws.config.seed
    text_miner = HardNegativeMiner(tp_texts_np, train.caption_image, seed=seed) if k else None
    image_miner = HardNegativeMiner(tp_images_np, np.arange(len(images)), seed=seed) if k else None
    towers = student.towers()
    _only(towers, towers)

    def encode_negatives(encode, mined: np.ndarray) -> torch.Tensor:  # noqa: ANN001
        unique, inverse = np.unique(mined, return_inverse=True)
        with torch.no_grad():
            keys = encode(unique)
        return keys[torch.from_numpy(inverse.reshape(mined.shape)).to(keys.device)]

    def joint_loss(module, idx, epoch):  # noqa: ANN001, ANN202
        visual, textual = partial(module, "visual"), partial(module, "textual")
        caps = _captions_of(ws, idx, epoch)
        s_v = ws.images_of(student, visual, [images[i] for i in idx])
        s_t = ws.texts_of(student, textual, [train.captions[i] for i in caps])
        out = {"infonce": losses.clip_loss(s_t, s_v, tau)}
        if s2.kd:
            tp_t, tp_v = tp_texts[caps], tp_images[idx]
            out["kd"] = s2.kd_weight * (
                losses.matching_kd(s_t, s_v, tp_t, tp_v, tau)
                + losses.intra_modal_contrastive(s_v, tp_v, tau)
                + losses.intra_modal_contrastive(s_t, tp_t, tau)
            )
        if text_miner is not None and image_miner is not None:
            mined_t = text_miner.mine(s_v.detach().float().cpu().numpy(), idx, k)
            neg_t = encode_negatives(
                lambda ids: ws.texts_of(student, textual, [train.captions[i] for i in ids]),
                mined_t,
            )
            mined_v = image_miner.mine(s_t.detach().float().cpu().numpy(), idx, k)
            neg_v = encode_negatives(
                lambda ids: ws.images_of(student, visual, [images[i] for i in ids]), mined_v
            )
            out["hn"] = losses.hard_negative_nce(s_v, s_t, neg_t, tau) + losses.hard_negative_nce(
                s_t, s_v, neg_v, tau
            )
        if (
            swapped is not None
            and (hn_text := _word_swap_loss(ws, student, textual, swapped, caps, s_v, s_t, tau))
            is not None
        ):
            out["hn_text"] = hn_text
        out["loss"] = sum(out.values())
        return out

    return {
        "joint": _joint_phase(
            ws, "stage2-joint", "stage2", student, towers, joint_loss, s2.optim, stop_after
        )
    }


def _joint_phase(
    ws: Workspace,
    phase: str,
    stage: str,
    dual: DualEncoder,
    towers: nn.Module,
    loss_fn,  # noqa: ANN001 - a trainer.LossFn
    optim: OptimConfig,
    stop_after: int | None,
) -> dict:
    """Train both towers of ``dual`` together (validated on val both ways); save the stage
    when the phase has finished."""
    summary = train_phase(
        ws.phase(phase, len(ws.train.images), optim),
        towers,
        loss_fn,
        ws.ctx,
        _validator(ws, _val_images(ws, dual, dual.visual), _val_texts(ws, dual, dual.textual)),
        stop_after,
    )
    if summary["finished"]:
        ws.save(stage, dual)
    return summary


def _word_swap_loss(
    ws: Workspace,
    student: DualEncoder,
    textual: Callable,
    swapped: list[str | None],
    caps: list[int],
    v: torch.Tensor,
    t: torch.Tensor,
    tau: float,
) -> torch.Tensor | None:
    """VLDeformer text negatives: each caption's word-swapped copy, encoded by the student's
    text tower (with gradient), as one extra negative for its image; None when no caption in
    the batch has a swap."""
    has = [i for i, c in enumerate(caps) if swapped[c]]
    if not has:
        return None
    neg = ws.texts_of(student, textual, [swapped[caps[i]] for i in has])
    return losses.hard_negative_nce(v[has], t[has], neg.unsqueeze(1), tau)


def _swapped_captions(ws: Workspace) -> list[str | None]:
    from photosearch_train.text_negatives import negatives_for

    return negatives_for(list(ws.train.captions), ws.config.seed)
