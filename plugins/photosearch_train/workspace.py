"""A training run's workspace (its folder, data, caches and device) and the model factories
every stage builds from: the teacher T, the fine-tuned teacher T' (towers, then heads) and
the student, each loaded with what earlier stages saved under ``<out_dir>/<stage>/model.pt``.

Stages read everything through a ``Workspace``; frozen towers' outputs are computed once and
cached in ``<out_dir>/cache``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from photosearch_conse.efficientnet import EfficientNetLite0
from torch import nn

from photosearch_train.config import ConfigError, OptimConfig, RecipeConfig
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
)
from photosearch_train.device import Context
from photosearch_train.dual_encoder import DualEncoder
from photosearch_train.files import save_torch
from photosearch_train.heads import (
    HeadedImageTower,
    HeadedTextTower,
    ProjectionHead,
    extra_dim,
    is_conse,
)
from photosearch_train.onnx_teacher import ONNX_TEACHER, is_onnx_tower
from photosearch_train.photos_only import (
    PHOTOS_ONLY_RECIPE,
    check_photos_only,
    readable,
    sample_queries,
    split_photos,
)
from photosearch_train.teachers import load_teacher, make_student
from photosearch_train.towers import StudentText
from photosearch_train.trainer import Phase

# Where stages keep their results under out_dir (a stage's towers: <folder>/model.pt)
STAGE1, FINETUNE_TEACHER, STAGE2 = "stage1", "finetune_teacher", "stage2"
HEAD_STAGE = "finetune_teacher-head"  # T''s projection heads, fitted after its towers


def model_file(out_dir: Path, stage: str) -> Path:
    """The towers a stage (or phase) saved in run folder ``out_dir``."""
    return out_dir / stage / "model.pt"


@dataclass
class Workspace:
    """One run: its config, device context, data (pairs, or photos with a held-out sample)
    and caches. Building it checks, before any work, that the data and recipe can be used."""

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

    def training_photos(self) -> list[Path]:
        """The photos the run learns from, never val or held-out ones: the train split's, or
        without captions the folder's less the held-out sample (int8 calibration reads them)."""
        return list(self.train.images) if self.train is not None else list(self._photos)

    def teacher(self) -> DualEncoder:
        """T as configured."""
        # The texts the run knows (only the tiny test teacher builds its vocabulary from them)
        corpus = self.train.captions if self.train is not None else sample_queries()
        return load_teacher(self.config.teacher, self.cache_dir, corpus)

    def finetuned_teacher(self, with_head: bool = True) -> DualEncoder:
        """T' as far as it exists on disk: fine-tuned towers, then (``finetune_teacher.head``)
        the fitted projection heads."""
        teacher = self.teacher()
        path = model_file(self.out, FINETUNE_TEACHER)
        if path.is_file():
            teacher.towers().load_state_dict(
                torch.load(path, map_location="cpu", weights_only=True)
            )
            teacher.name = f"{teacher.name}-ft"
        head = model_file(self.out, HEAD_STAGE)
        if with_head and self.config.finetune_teacher.head and head.is_file():
            teacher = wrap_with_heads(teacher, self.config.finetune_teacher.head_extra)
            teacher.towers().load_state_dict(
                torch.load(head, map_location="cpu", weights_only=True)
            )
        return teacher

    def student(self, stage: str | None = None, fresh: bool = False) -> DualEncoder:
        """A fresh student, or the one a stage saved ("stage2", "stage1"; None: the latest)."""
        if self.config.student.image_tower == "teacher":
            student = make_teacher_student(
                self.finetuned_teacher(), self.config, self.config.export.name
            )
        else:
            student = make_student(self.teacher(), self.config.student, self.config.export.name)
        if fresh:
            return student
        for name in [stage] if stage else [STAGE2, STAGE1]:
            path = model_file(self.out, name)
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
        """Phase ``name`` over ``items`` training units, in its own folder of the run."""
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
        """``module``'s vectors of ``paths``, computed once per run (``tag`` names them)."""
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
        """``module``'s vectors of ``texts``, computed once per run (``tag`` names them)."""
        if is_onnx_tower(module):
            return module.vectors(texts)
        key = corpus_key(tag, texts)
        return cached(
            self.cache_dir / f"{key}.npy",
            lambda: embed_texts(module.to(self.ctx.device), dual, texts, self.ctx.device),
        )

    def images_of(self, dual: DualEncoder, module: Callable, paths: Sequence[Path]) -> torch.Tensor:
        """A training batch through ``module`` (with gradient when it has any)."""
        pixels = self.pixels.batch(paths, dual.preprocessing)
        return module(torch.from_numpy(pixels).to(self.ctx.device))

    def texts_of(self, dual: DualEncoder, module: Callable, texts: Sequence[str]) -> torch.Tensor:
        """A batch of texts, tokenised as the app does, through ``module``."""
        ids, mask = dual.tokenize(texts)
        return module(ids.to(self.ctx.device), mask.to(self.ctx.device))

    def save(self, stage: str, dual: DualEncoder) -> Path:
        """Keep ``dual``'s towers as what ``stage`` produced (main process only)."""
        path = model_file(self.out, stage)
        if self.ctx.is_main:
            save_torch(path, dual.towers().state_dict())
        return path

    def tensor(self, array: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(array)).to(self.ctx.device)


def check_onnx_teacher(config: RecipeConfig) -> None:
    """Refuse, before any work, what an ONNX teacher cannot do."""
    needs = []
    if config.student.image_tower == "teacher":
        needs.append(
            "a student built from the teacher's towers (use student.image_tower 'truncated')"
        )
    ft = config.finetune_teacher
    if config.captions and ft.enabled and (ft.towers or ft.head):
        needs.append("fine-tuning the teacher (set finetune_teacher.enabled=false)")
    if config.stage2.crop_optim.epochs > 0:
        needs.append("crop distillation (stage2.crop_optim.epochs=0)")
    if needs:
        raise ConfigError(f"an ONNX teacher cannot be trained through: {'; '.join(needs)}")


def lowres_image_tower(tower: nn.Module, size: int) -> nn.Module:
    """A copy of ``tower`` for ``size`` px input: ConSE gets a Lite0 built for that size (the
    weights do not depend on it); other towers are copied as they are."""
    if not is_conse(tower):
        return copy.deepcopy(tower)
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


def make_teacher_student(tprime: DualEncoder, config: RecipeConfig, name: str) -> DualEncoder:
    """T''s image tower at ``student.image_size`` px with a fresh identity head, and T''s text
    tower (head included) keeping ``student.text_layers``."""
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
        provenance={"student": {"image_tower": "teacher", **asdict(config.student)}},
    )
