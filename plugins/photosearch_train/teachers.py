"""The teacher loaders and the student factory, each giving a ``DualEncoder``.

Loaders: the app's offline default model (ConSE: EfficientNet-Lite0 + MiniLM), a tiny random
CLIP-like model (tests) and, untested here, an OpenCLIP checkpoint.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from photosearch_conse import efficientnet, minilm
from photosearch_conse.classes import load_classes
from photosearch_conse.conse import (
    EMBED_DIM,
    MODEL_NAME,
    ConseSettings,
    class_matrix,
    embed_texts_dict,
    make_visual_module,
    texts_needed,
)
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
from torch import nn

from photosearch.models.bundle import Preprocessing
from photosearch_train.config import StudentConfig, TeacherConfig
from photosearch_train.dual_encoder import DualEncoder
from photosearch_train.files import save_array
from photosearch_train.onnx_teacher import is_onnx_tower, load_onnx_teacher
from photosearch_train.towers import (
    FrozenImageNetTower,
    ProjectedText,
    StudentImageNet,
    StudentText,
    TinyTextTransformer,
    TinyVisionTransformer,
)


def load_teacher(config: TeacherConfig, cache_dir: Path, corpus: Sequence[str] = ()) -> DualEncoder:
    if config.kind == "conse":
        return load_conse_teacher(cache_dir)
    if config.kind == "tiny-clip":
        return tiny_clip_teacher(cache_dir, corpus, seed=config.tiny_seed)
    if config.kind == "open-clip":
        return load_open_clip_teacher(config.open_clip_arch, config.open_clip_checkpoint, cache_dir)
    if config.kind == "onnx":
        return load_onnx_teacher(config.bundle, cache_dir)
    raise ValueError(f"unknown teacher kind {config.kind!r}")


def load_conse_teacher(cache_dir: Path) -> DualEncoder:
    """The app's default model as torch modules, with the class matrix cached on disk."""
    settings = ConseSettings()
    text = minilm.load_minilm()
    path = cache_dir / "conse-class-matrix.npy"
    if path.is_file():
        matrix = np.load(path)
    else:
        vectors = embed_texts_dict(
            texts_needed(settings, load_classes()), text, minilm.load_tokenizer()
        )
        matrix = class_matrix(settings, vectors)
        save_array(path, matrix)
    mean, std = efficientnet.INPUT_MEAN, efficientnet.INPUT_STD
    return DualEncoder(
        name=MODEL_NAME,
        visual=make_visual_module(matrix, settings),
        textual=text,
        tokenizer_file=minilm.model_dir() / "tokenizer.json",
        preprocessing=Preprocessing(
            size=224,
            mean=(mean,) * 3,
            std=(std,) * 3,
            interpolation="bicubic",
            resize_mode="shortest",
        ),
        context_length=minilm.CONTEXT_LENGTH,
        embed_dim=EMBED_DIM,
        provenance={"teacher": "conse-lite0-minilm", "settings": settings.describe()},
    )


def build_word_tokenizer(words: Sequence[str], path: Path) -> Path:
    """A lower-casing whitespace WordLevel tokenizer ([PAD]=0, [UNK]=1) in HF format."""
    vocab = {"[PAD]": 0, "[UNK]": 1}
    for word in words:
        vocab.setdefault(word, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    path.parent.mkdir(parents=True, exist_ok=True)
    tok.save(str(path))
    return path


def tiny_clip_teacher(
    cache_dir: Path,
    corpus: Sequence[str],
    seed: int = 0,
    embed_dim: int = 16,
    vocab_size: int = 500,
) -> DualEncoder:
    """A small random CLIP-shaped model (ViT-ish + transformer text), for fast tests."""
    counts = Counter(w for text in corpus for w in text.lower().replace(".", " ").split())
    words = sorted(w for w, _ in counts.most_common(vocab_size - 2))
    tokenizer = build_word_tokenizer(words, cache_dir / "tiny-clip-tokenizer.json")
    torch.manual_seed(seed)
    return DualEncoder(
        name="tiny-clip",
        visual=TinyVisionTransformer(embed_dim).eval(),
        textual=TinyTextTransformer(embed_dim, vocab_size=len(words) + 2).eval(),
        tokenizer_file=tokenizer,
        preprocessing=Preprocessing(
            size=32,
            mean=(0.5,) * 3,
            std=(0.5,) * 3,
            interpolation="bilinear",
            resize_mode="shortest",
        ),
        context_length=32,
        embed_dim=embed_dim,
        provenance={"teacher": "tiny-clip", "seed": seed},
    )


class _OpenClipText(nn.Module):
    """OpenCLIP's text tower with a ``layers`` list (its resblocks) so students can take a
    subset; pooling at the end-of-text token, as CLIP does (the highest token id)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.token_embedding = model.token_embedding
        self.positional_embedding = model.positional_embedding
        self.layers = nn.ModuleList(model.transformer.resblocks)
        self.ln_final = model.ln_final
        self.text_projection = model.text_projection
        self.register_buffer("causal", model.attn_mask, persistent=False)

    def token_states(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        length = input_ids.shape[1]
        x = self.token_embedding(input_ids) + self.positional_embedding[:length]
        for block in self.layers:
            x = block(x, attn_mask=self.causal[:length, :length])
        return self.ln_final(x)

    def project(self, pooled: torch.Tensor) -> torch.Tensor:
        return pooled @ self.text_projection

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        states = self.token_states(input_ids, attention_mask)
        # gather, not states[arange(len(states)), ...]: len() would be a constant in ONNX
        at = input_ids.argmax(dim=-1)[:, None, None].expand(-1, 1, states.shape[-1])
        eot = states.gather(1, at).squeeze(1)
        return nn.functional.normalize(self.project(eot), dim=-1)


class _OpenClipVisual(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.visual = model.visual

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(self.visual(image), dim=-1)


def load_open_clip_teacher(arch: str, checkpoint: str | None, cache_dir: Path) -> DualEncoder:
    """An OpenCLIP model as a teacher (tested with open_clip_torch 3.3 on a tiny random
    architecture; open_clip needs torchvision, which does not import beside this project's
    torch 2.13 CPU build, so CI skips that test). Needs ``pip install open_clip_torch`` and,
    because the app's runtime reads Hugging Face tokenizers, a CLIP ``tokenizer.json`` at
    ``<cache_dir>/open-clip-tokenizer.json`` (e.g. from openai/clip-vit-base-patch32).
    ``checkpoint`` is an OpenCLIP pretrained tag or a local .pt/.safetensors path."""
    import open_clip

    model, _, preprocess = open_clip.create_model_and_transforms(arch, pretrained=checkpoint)
    model.eval()
    tokenizer_file = cache_dir / "open-clip-tokenizer.json"
    if not tokenizer_file.is_file():
        raise FileNotFoundError(f"place a CLIP tokenizer.json at {tokenizer_file}")
    size = model.visual.image_size
    size = int(size[0] if isinstance(size, tuple | list) else size)
    mean = tuple(getattr(model.visual, "image_mean", None) or open_clip.OPENAI_DATASET_MEAN)
    std = tuple(getattr(model.visual, "image_std", None) or open_clip.OPENAI_DATASET_STD)
    return DualEncoder(
        name=f"open-clip-{arch}",
        visual=_OpenClipVisual(model),
        textual=_OpenClipText(model),
        tokenizer_file=tokenizer_file,
        preprocessing=Preprocessing(
            size=size, mean=mean, std=std, interpolation="bicubic", resize_mode="shortest"
        ),
        context_length=int(model.context_length),
        embed_dim=int(model.text_projection.shape[1]),
        pad_token="<|endoftext|>",
        provenance={"teacher": "open_clip", "arch": arch, "checkpoint": checkpoint},
    )


def make_student(teacher: DualEncoder, config: StudentConfig, name: str) -> DualEncoder:
    """A smaller dual encoder in the teacher's space: see StudentImageNet / StudentText. An
    ONNX teacher has no torch text tower to cut down: the student's is MiniLM's (layers
    ``text_layers``) with a projection into the teacher's space, and MiniLM's tokenizer."""
    visual: nn.Module
    if config.image_tower == "frozen":
        visual = FrozenImageNetTower(teacher.embed_dim, config.image_size)
    else:
        visual = StudentImageNet(
            teacher.embed_dim,
            config.image_blocks,
            config.image_size,
            config.image_width,
            config.vldeformer_head,
        )
        if config.image_init == "imagenet":
            visual.load_imagenet_trunk()
    text_source = _text_source(teacher)
    textual = StudentText(text_source.textual, config.text_layers, config.vldeformer_head)
    if text_source.project:
        textual = ProjectedText(textual, text_source.embed_dim, teacher.embed_dim)
    pre = Preprocessing(
        size=config.image_size,
        mean=(efficientnet.INPUT_MEAN,) * 3,
        std=(efficientnet.INPUT_STD,) * 3,
        interpolation="bicubic",
        resize_mode="shortest",
        draft_margin=config.draft_margin,
    )
    if config.image_init == "random" and config.image_tower != "frozen":
        pre = replace(pre, mean=teacher.preprocessing.mean, std=teacher.preprocessing.std)
    return DualEncoder(
        name=name,
        visual=visual.eval(),
        textual=textual.eval(),
        tokenizer_file=text_source.tokenizer_file,
        preprocessing=pre,
        context_length=text_source.context_length,
        embed_dim=teacher.embed_dim,
        pad_token=text_source.pad_token,
        provenance={"student": _describe(config)},
    )


@dataclass(frozen=True)
class _TextSource:
    textual: nn.Module
    tokenizer_file: Path
    context_length: int
    pad_token: str
    embed_dim: int
    project: bool  # a new projection head into the teacher's space


def _text_source(teacher: DualEncoder) -> _TextSource:
    """Where the student's text tower comes from: the teacher's own, or MiniLM's."""
    if not is_onnx_tower(teacher.textual):
        return _TextSource(
            teacher.textual,
            teacher.tokenizer_file,
            teacher.context_length,
            teacher.pad_token,
            teacher.embed_dim,
            project=False,
        )
    text = minilm.load_minilm()
    return _TextSource(
        text,
        minilm.model_dir() / "tokenizer.json",
        minilm.CONTEXT_LENGTH,
        "[PAD]",
        int(text.cfg.hidden_size),
        project=True,
    )


def _describe(config: StudentConfig) -> dict[str, Any]:
    return asdict(config)
