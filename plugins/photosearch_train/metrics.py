"""Retrieval figures from vectors (numpy only, no torch): recall both ways on captioned photos,
and the mean cosine of two models' vectors. Checkpoint choice (``validation``) and the bundle
reports (``report``) both read them."""

from __future__ import annotations

import numpy as np

from photosearch.library.evaluation import (
    image_to_text_ranks,
    recall_from_ranks,
    text_to_image_ranks,
)
from photosearch_train.data import Pairs
from photosearch_train.results import Scores


def recall_scores(text_vectors: np.ndarray, image_vectors: np.ndarray, pairs: Pairs) -> Scores:
    """R@1/5/10 both ways (percent) and their sum, the number best checkpoints are chosen by."""
    scores = text_vectors @ image_vectors.T
    t2i = recall_from_ranks(text_to_image_ranks(scores, pairs.caption_image))
    i2t = recall_from_ranks(image_to_text_ranks(scores.T, pairs.caption_image))
    out = {f"t2i_{k}": v for k, v in t2i.items()} | {f"i2t_{k}": v for k, v in i2t.items()}
    out["rsum"] = float(sum(t2i.values()) + sum(i2t.values()))
    return out


def mean_cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Mean cosine of matching rows of ``a`` and ``b`` (normalised here)."""
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return float((a * b).sum(axis=1).mean())
