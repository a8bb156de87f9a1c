"""The frozen app (packaging/build.sh -> dist/photosearch/) runs its CLI end to end.

Building takes minutes, so the default suite only checks a build that already exists.
The tiny bundle is a plain bundle directory: the frozen app loads it like any installed model.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from photosearch.models.providers import ModelRegistry
from tests.conftest import make_photo
from tests.support.tiny_bundle import TinyProvider

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "packaging"))
from frozen_check import FROZEN, FrozenRun, index_and_search  # noqa: E402

pytestmark = pytest.mark.skipif(
    not FROZEN.is_file(), reason="no frozen app; build it with packaging/build.sh"
)


def _tiny_run(tmp_path: Path, colours: tuple[str, ...], query: str, k: int) -> FrozenRun:
    """The frozen binary on a fresh library of ``colours`` photos (plus any already in
    tmp_path/photos), searching ``query`` with the tiny bundle."""
    models = tmp_path / "models"
    ModelRegistry(models, providers={"tiny": TinyProvider()}).ensure("tiny")
    for colour in colours:
        make_photo(tmp_path / "photos" / f"{colour}.jpg", colour)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    photos, library = tmp_path / "photos", tmp_path / "library"
    return index_and_search(FROZEN, library, models, photos, query, model="tiny", k=k, env=env)


def test_frozen_app_indexes_and_searches_with_an_installed_bundle(tmp_path: Path):
    run = _tiny_run(tmp_path, ("red", "green", "blue", "yellow"), "blue", k=4)
    assert run.version.startswith("photosearch ")
    assert Path(run.results[0]["path"]).name == "blue.jpg"
    assert len(run.results) == 4


def test_frozen_app_reads_the_text_in_photos_and_finds_them_by_it(tmp_path: Path):
    """The OCR plugin and RapidOCR's models are in the build: no extractor is skipped, and a
    word painted on a photo finds it."""
    from PIL import Image, ImageDraw, ImageFont

    sign = Image.new("RGB", (900, 400), (240, 240, 235))
    ImageDraw.Draw(sign).text(
        (60, 140), "BAKERY", fill=(20, 20, 20), font=ImageFont.load_default(size=90)
    )
    (tmp_path / "photos").mkdir()
    sign.save(tmp_path / "photos" / "shopfront.jpg", quality=92)
    run = _tiny_run(tmp_path, ("red", "green"), "bakery", k=3)
    assert "failed to load" not in run.index_output, run.index_output
    assert "1 with text" in run.index_output, run.index_output
    assert Path(run.results[0]["path"]).name == "shopfront.jpg"
