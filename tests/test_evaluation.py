"""Recall@K arithmetic on hand-made examples, and evaluate() end to end with the tiny model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from photosearch.errors import PhotosearchError
from photosearch.library.evaluation import (
    evaluate,
    image_to_text_ranks,
    load_captions,
    recall_from_ranks,
    text_to_image_ranks,
)
from tests.conftest import make_photo


def test_recall_from_ranks():
    ranks = np.asarray([0, 1, 4, 9, 10, 50])
    assert recall_from_ranks(ranks, (1, 5, 10)) == pytest.approx(
        {"R@1": 100 / 6, "R@5": 300 / 6, "R@10": 400 / 6}
    )


def test_text_to_image_ranks():
    # 3 captions x 3 images; caption i belongs to image owner[i]
    scores = np.asarray(
        [
            [0.9, 0.1, 0.2],  # owner 0: best -> rank 0
            [0.5, 0.4, 0.6],  # owner 1: two images score higher -> rank 2
            [0.3, 0.8, 0.7],  # owner 2: one higher -> rank 1
        ]
    )
    owner = np.asarray([0, 1, 2])
    assert text_to_image_ranks(scores, owner).tolist() == [0, 2, 1]


def test_image_to_text_ranks_uses_best_own_caption():
    # 2 images x 4 captions; captions 0,1 belong to image 0, captions 2,3 to image 1
    scores = np.asarray(
        [
            [0.2, 0.7, 0.9, 0.1],  # best own 0.7; one other caption (0.9) above -> rank 1
            [0.5, 0.1, 0.3, 0.4],  # best own 0.4; caption 0 (0.5) above -> rank 1
        ]
    )
    owner = np.asarray([0, 0, 1, 1])
    assert image_to_text_ranks(scores, owner).tolist() == [1, 1]
    scores[1, 3] = 0.6
    assert image_to_text_ranks(scores, owner).tolist() == [1, 0]


def _captions_file(tmp_path: Path) -> Path:
    colours = ["red", "green", "blue", "yellow", "white", "black"]
    lines = []
    for number, colour in enumerate(colours):
        make_photo(tmp_path / "images" / f"{colour}.jpg", colour)
        split = "val" if number % 2 == 0 else "train"
        lines.append(
            json.dumps(
                {
                    "image": f"images/{colour}.jpg",
                    "captions": [f"a {colour} photo", colour],
                    "split": split,
                }
            )
        )
    path = tmp_path / "captions.jsonl"
    path.write_text("\n".join(lines) + "\n\n")
    return path


def test_load_captions(tmp_path: Path):
    data = load_captions(_captions_file(tmp_path), "val")
    assert [p.name for p in data.images] == ["red.jpg", "blue.jpg", "white.jpg"]
    assert data.captions[:2] == ["a red photo", "red"]
    assert data.caption_image.tolist() == [0, 0, 1, 1, 2, 2]
    with pytest.raises(PhotosearchError, match="no images"):
        load_captions(tmp_path / "captions.jsonl", "nope")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"image": "x.jpg"}\n')
    with pytest.raises(PhotosearchError, match="bad.jsonl:1"):
        load_captions(bad)


def test_evaluate_end_to_end_with_tiny_model(tmp_path: Path, registry):
    report = evaluate(_captions_file(tmp_path), None, registry=registry, work_dir=tmp_path)
    assert report.images == 6 and report.captions == 12 and report.indexed == 6
    assert report.text_to_image == {"R@1": 100.0, "R@5": 100.0, "R@10": 100.0}
    assert report.image_to_text["R@1"] == 100.0
    assert report.model.startswith("tiny@")
    assert report.query_latency_ms_p95 >= report.query_latency_ms_p50 > 0
    assert not list(tmp_path.glob("photosearch-eval-*"))  # the throwaway library is gone


def test_evaluate_counts_a_broken_image_as_a_miss(tmp_path: Path, registry):
    captions = _captions_file(tmp_path)
    (tmp_path / "images" / "red.jpg").write_bytes(b"broken")
    report = evaluate(captions, "val", registry=registry, work_dir=tmp_path)
    assert report.images == 3 and report.indexed == 2
    assert report.text_to_image["R@10"] == pytest.approx(200 / 3)
    assert report.image_to_text["R@10"] == pytest.approx(200 / 3)
