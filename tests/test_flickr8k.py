"""End to end with the REAL default model on 100 Flickr8k validation photos.

Skipped when the data set is absent or the bundle cannot be built here (torch missing). The
bundle is built once per session (~1-2 min) into a temporary models directory.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from photosearch.library.evaluation import evaluate
from tests.conftest import DEFAULT_MODEL, FLICKR

CAPTIONS = FLICKR / "captions.jsonl"

pytestmark = pytest.mark.needs_default_model


@pytest.fixture(autouse=True)
def _needs_flickr() -> None:
    if not CAPTIONS.is_file():
        pytest.skip(f"Flickr8k subset not found at {FLICKR}")


def test_flickr8k_val_recall_well_above_chance(default_models_dir: Path, tmp_path: Path):
    report = evaluate(
        CAPTIONS, "val", models_dir=default_models_dir, model=DEFAULT_MODEL, work_dir=tmp_path
    )
    assert report.images == 100 and report.indexed == 100
    assert report.captions == 500
    # chance is 10% for R@10 over 100 images
    assert report.text_to_image["R@10"] > 20.0, report
    assert report.image_to_text["R@10"] > 20.0, report
    assert (
        report.text_to_image["R@1"] <= report.text_to_image["R@5"] <= report.text_to_image["R@10"]
    )
    print(f"flickr8k val: t2i {report.text_to_image} i2t {report.image_to_text}")
