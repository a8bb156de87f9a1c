"""Retrieval evaluation: Recall@K both ways on a captions file, plus throughput and latency.

Captions file format (one JSON object per line)::

    {"image": "images/NAME.jpg", "captions": ["...", ...], "split": "train|val|test"}

Text-to-image: each caption queries the split's images; a hit is its own image in the top K.
Image-to-text: each image queries all the split's captions; a hit is any of its own in the top K.
The images are indexed by the real pipeline into a throwaway library, and text-to-image queries
go through the real search path (HNSW), so the figures are what a user gets.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from photosearch.errors import PhotosearchError

DEFAULT_KS = (1, 5, 10)


@dataclass(frozen=True)
class CaptionSet:
    images: list[Path]
    captions: list[str]
    caption_image: np.ndarray  # caption index -> image index


@dataclass(frozen=True)
class EvalReport:
    model: str
    split: str | None
    images: int
    captions: int
    indexed: int
    text_to_image: dict[str, float]
    image_to_text: dict[str, float]
    images_per_s: float
    texts_per_s: float
    queries_per_s: float
    query_latency_ms_p50: float
    query_latency_ms_p95: float

    def as_dict(self) -> dict:
        return asdict(self)


def load_captions(path: Path, split: str | None = None) -> CaptionSet:
    """Read a captions.jsonl; image paths are relative to the file's folder."""
    images: list[Path] = []
    captions: list[str] = []
    owners: list[int] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise PhotosearchError(f"cannot read captions file {path}: {exc}") from exc
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            image, texts = record["image"], record["captions"]
        except (ValueError, KeyError, TypeError) as exc:
            raise PhotosearchError(f"{path}:{number}: not a captions record ({exc})") from exc
        if split is not None and record.get("split") != split:
            continue
        images.append((path.parent / image).resolve())
        for text in texts:
            captions.append(str(text))
            owners.append(len(images) - 1)
    if not images:
        raise PhotosearchError(f"{path} has no images" + (f" in split {split!r}" if split else ""))
    return CaptionSet(images, captions, np.asarray(owners, dtype=np.int64))


def recall_from_ranks(ranks: np.ndarray, ks: Sequence[int] = DEFAULT_KS) -> dict[str, float]:
    """Percent of queries whose first correct answer has rank < K (ranks are 0-based;
    a query with no correct answer retrieved has rank >= every K)."""
    return {f"R@{k}": float(100.0 * np.mean(ranks < k)) for k in ks}


def text_to_image_ranks(scores: np.ndarray, caption_image: np.ndarray) -> np.ndarray:
    """scores [captions, images] -> 0-based rank of each caption's own image."""
    own = scores[np.arange(len(caption_image)), caption_image]
    return (scores > own[:, None]).sum(axis=1)


def image_to_text_ranks(scores: np.ndarray, caption_image: np.ndarray) -> np.ndarray:
    """scores [images, captions] -> 0-based rank of each image's best own caption."""
    owned = caption_image[None, :] == np.arange(scores.shape[0])[:, None]
    best_own = np.where(owned, scores, -np.inf).max(axis=1)
    return (np.where(owned, -np.inf, scores) > best_own[:, None]).sum(axis=1)


def evaluate(
    captions_file: Path,
    split: str | None,
    *,
    models_dir: Path | None = None,
    model: str | None = None,
    registry=None,  # noqa: ANN001 - a ModelRegistry, for tests with their own providers
    ks: Sequence[int] = DEFAULT_KS,
    work_dir: Path | None = None,
) -> EvalReport:
    """Index the split's images into a throwaway library and measure retrieval."""
    from photosearch.library.facade import Library

    data = load_captions(captions_file, split)
    with tempfile.TemporaryDirectory(prefix="photosearch-eval-", dir=work_dir) as tmp:
        photos = Path(tmp) / "photos"
        link_index = _link_images(data.images, photos)
        with Library(
            Path(tmp) / "library", models_dir=models_dir, model=model, registry=registry
        ) as library:
            library.add_folder(photos)
            report = library.index()
            images_per_s = (
                report.encoding.encoded / report.encoding.seconds
                if report.encoding.seconds > 0
                else 0.0
            )
            photo_of_image = {link_index[r.path]: r.photo_id for r in _all_photos(library)}
            started = time.perf_counter()
            text_vectors = np.concatenate(
                [
                    library.encoder.encode_texts(data.captions[i : i + 64])
                    for i in range(0, len(data.captions), 64)
                ]
            )
            texts_per_s = len(data.captions) / (time.perf_counter() - started)

            k_max = max(ks)
            t2i_ranks, latencies = _search_ranks(
                library, text_vectors, photo_of_image, data.caption_image, k_max
            )
            queries_per_s = len(latencies) / sum(latencies) if latencies else 0.0
            i2t_ranks = _image_ranks(library, text_vectors, photo_of_image, data, k_max)
            latency_ms = np.asarray(latencies) * 1000.0
            return EvalReport(
                model=library.encoder.identity,
                split=split,
                images=len(data.images),
                captions=len(data.captions),
                indexed=len(photo_of_image),
                text_to_image=recall_from_ranks(t2i_ranks, ks),
                image_to_text=recall_from_ranks(i2t_ranks, ks),
                images_per_s=images_per_s,
                texts_per_s=texts_per_s,
                queries_per_s=queries_per_s,
                query_latency_ms_p50=float(np.percentile(latency_ms, 50)),
                query_latency_ms_p95=float(np.percentile(latency_ms, 95)),
            )


def _link_images(images: list[Path], photos: Path) -> dict[str, int]:
    """Symlink every image into ``photos`` under its number;
    returns each link's path -> the image's number."""
    photos.mkdir()
    link_index: dict[str, int] = {}
    for number, image in enumerate(images):
        link = photos / f"{number:06d}{image.suffix.lower()}"
        os.symlink(image, link)
        link_index[str(link)] = number
    return link_index


def _search_ranks(
    library,  # noqa: ANN001 - a Library
    text_vectors: np.ndarray,
    photo_of_image: dict[int, int],
    caption_image: np.ndarray,
    k_max: int,
) -> tuple[np.ndarray, list[float]]:
    """Text to image through the app's own search: each caption's rank of its image (k_max
    when not in the top k_max), and each search's latency in seconds."""
    image_of_photo = {pid: img for img, pid in photo_of_image.items()}
    ranks = np.full(len(text_vectors), k_max, dtype=np.int64)
    latencies = []
    for number, vector in enumerate(text_vectors):
        started = time.perf_counter()
        hits = library.search_vector(vector, k_max)
        latencies.append(time.perf_counter() - started)
        for rank, hit in enumerate(hits):
            if image_of_photo.get(hit.photo_id) == caption_image[number]:
                ranks[number] = rank
                break
    return ranks, latencies


def _image_ranks(
    library,  # noqa: ANN001 - a Library
    text_vectors: np.ndarray,
    photo_of_image: dict[int, int],
    data: CaptionSet,
    k_max: int,
) -> np.ndarray:
    """Image to text from the store's vectors: each image's rank of its best own caption
    (k_max for an image that failed to index: it finds nothing)."""
    image_vectors = np.zeros((len(data.images), library.encoder.embed_dim), np.float32)
    indexed = sorted(photo_of_image)
    if indexed:
        image_vectors[indexed] = library.store.get_vectors([photo_of_image[i] for i in indexed])
    ranks = image_to_text_ranks(image_vectors @ text_vectors.T, data.caption_image)
    ranks[[i for i in range(len(data.images)) if i not in photo_of_image]] = k_max
    return ranks


def _all_photos(library):  # noqa: ANN001, ANN202
    from sqlalchemy import select

    from photosearch.catalog import Photo
    from photosearch.search.query import SearchResult

    live = library.store.live_ids()
    with library.catalog.session() as session:
        rows = session.execute(select(Photo.id, Photo.path)).all()
    return [SearchResult(int(i), str(p), 0.0) for i, p in rows if int(i) in live]
