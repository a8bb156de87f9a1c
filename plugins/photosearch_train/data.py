"""Training data: paired captions (captions.jsonl), unpaired images and texts, pixel caching,
and batched embedding of a whole corpus with a tower (used to cache frozen towers' outputs)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from photosearch.errors import UnsupportedImage
from photosearch.files.imaging import decode_for_model, supported_extensions
from photosearch.models.bundle import Preprocessing
from photosearch_train.config import ConfigError
from photosearch_train.files import save_array

if TYPE_CHECKING:
    import torch
    from torch import nn


@dataclass(frozen=True)
class Pairs:
    """One split of a captions file: images, their captions (image-major), owners."""

    images: tuple[Path, ...]
    captions: tuple[str, ...]
    caption_image: np.ndarray  # [captions] index of each caption's image
    first_caption: np.ndarray  # [images] index of each image's first caption
    caption_count: np.ndarray  # [images]

    def caption_for(self, image: int, epoch: int) -> int:
        """The caption paired with ``image`` in ``epoch``: rotates through its captions."""
        return int(self.first_caption[image] + epoch % self.caption_count[image])


def load_pairs(captions_file: Path, split: str, limit: int | None = None) -> Pairs:
    images: list[Path] = []
    captions: list[str] = []
    owners: list[int] = []
    first: list[int] = []
    counts: list[int] = []
    for line in Path(captions_file).read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        if row.get("split") != split:
            continue
        if limit is not None and len(images) >= limit:
            break
        first.append(len(captions))
        counts.append(len(row["captions"]))
        images.append((Path(captions_file).parent / row["image"]).resolve())
        captions.extend(str(c) for c in row["captions"])
        owners.extend([len(images) - 1] * len(row["captions"]))
    if not images:
        raise ConfigError(f"{captions_file} has no images in split {split!r}")
    return Pairs(
        tuple(images),
        tuple(captions),
        np.asarray(owners, np.int64),
        np.asarray(first, np.int64),
        np.asarray(counts, np.int64),
    )


def load_texts(path: Path, limit: int | None = None) -> list[str]:
    lines = [x.strip() for x in Path(path).read_text(encoding="utf-8").splitlines()]
    lines = [x for x in lines if x]
    return lines[:limit] if limit else lines


def check_image_source(source: Path) -> None:
    """Refuse a folder of unpaired photos that is not there (cheap: no listing)."""
    if source.suffix != ".jsonl" and not source.is_dir():
        raise ConfigError(f"folder of unpaired photos not found: {source}")


def list_images(source: Path, limit: int | None = None) -> list[Path]:
    """Unpaired images: every photo under a folder, or every image of a captions.jsonl."""
    source = Path(source)
    if source.suffix == ".jsonl":
        paths = [
            (source.parent / json.loads(x)["image"]).resolve()
            for x in source.read_text(encoding="utf-8").splitlines()
            if x.strip()
        ]
    else:
        exts = supported_extensions()
        check_image_source(source)
        paths = sorted(p for p in source.rglob("*") if p.suffix.lower() in exts)
    if not paths:
        raise ConfigError(f"no photos under {source}")
    if limit and len(paths) > limit:
        # Spread over the whole tree, not its first folders (a library sorted by path is
        # sorted by year or album): every k-th photo, the same ones on every call.
        paths = [paths[int(i * len(paths) / limit)] for i in range(limit)]
    return paths


class PixelCache:
    """Decoded model inputs kept in memory as float16, one dict per preprocessing, so epochs
    after the first skip JPEG decoding (600 photos at 224 px take about 180 MB)."""

    def __init__(self) -> None:
        self._store: dict[tuple, dict[Path, np.ndarray]] = {}

    def batch(self, paths: Sequence[Path], pre: Preprocessing) -> np.ndarray:
        store = self._store.setdefault(preprocessing_key(pre), {})
        out = []
        for path in paths:
            if path not in store:
                try:
                    store[path] = decode_for_model(path, pre).pixels.astype(np.float16)
                except UnsupportedImage as exc:
                    raise ConfigError(
                        f"{path}: {exc} (a photo of the paired training data: fix it, or "
                        "remove its line from the captions file)"
                    ) from exc
            out.append(store[path])
        return np.stack(out).astype(np.float32)


def preprocessing_key(pre: Preprocessing) -> tuple:
    return (pre.size, pre.mean, pre.std, pre.interpolation, pre.resize_mode, pre.draft_margin)


def corpus_key(tag: str, items: Sequence[object], extra: object = "") -> str:
    digest = hashlib.sha256(repr((tag, [str(i) for i in items], extra)).encode()).hexdigest()
    return f"{tag}-{digest[:16]}"


def embed_images(
    module: nn.Module,
    paths: Sequence[Path],
    pre: Preprocessing,
    pixels: PixelCache,
    device: torch.device | str,
    batch_size: int = 32,
) -> np.ndarray:
    """[len(paths), D] float32 unit vectors from an image tower, in inference mode."""
    import torch  # here, not at the top: report.py reads Pairs without torch installed

    from photosearch_train.device import autocast

    was_training = module.training
    module.to(device).eval()  # where a run's towers are; an export may have left one elsewhere
    out = []
    with torch.no_grad(), autocast(device):
        for start in range(0, len(paths), batch_size):
            batch = torch.from_numpy(pixels.batch(paths[start : start + batch_size], pre))
            out.append(module(batch.to(device)).float().cpu().numpy())
    module.train(was_training)
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


def embed_texts(module, dual, texts: Sequence[str], device, batch_size: int = 128) -> np.ndarray:  # noqa: ANN001
    """[len(texts), D] float32 unit vectors from a text tower; batches sorted by length."""
    import torch

    from photosearch_train.device import autocast

    was_training = module.training
    module.to(device).eval()
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    result: np.ndarray | None = None
    with torch.no_grad(), autocast(device):
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            ids, mask = dual.tokenize([texts[i] for i in idx])
            vectors = module(ids.to(device), mask.to(device)).float().cpu().numpy()
            if result is None:
                result = np.zeros((len(texts), vectors.shape[1]), np.float32)
            result[idx] = vectors
    module.train(was_training)
    return result if result is not None else np.zeros((0, 0), np.float32)


def cached(path: Path, compute) -> np.ndarray:  # noqa: ANN001
    """Load ``path`` (.npy) or compute, save and return it."""
    if path.is_file():
        return np.load(path)
    value = compute()
    save_array(path, value)
    return value
