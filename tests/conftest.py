"""Shared fixtures: tiny real model bundles, libraries, and generated photos."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from photosearch.library.facade import Library
from photosearch.models.providers import ModelRegistry
from tests.support.tiny_bundle import COLOUR_RGB, TinyProvider

SHARED_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
FLICKR = SHARED_DATA / "flickr8k-1k"
DEFAULT_MODEL = "conse-lite0-minilm"


@pytest.fixture(scope="session")
def default_models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models directory holding the real default bundle, built once per test session.

    Skips when torch (needed to build it) or the plugin is missing.
    """
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        pytest.skip("torch is not installed, so the default model bundle cannot be built")
    models = tmp_path_factory.mktemp("default-models")
    registry = ModelRegistry(models)
    if DEFAULT_MODEL not in {offer.name for offer in registry.offers()}:
        pytest.skip(f"no installed plugin offers {DEFAULT_MODEL}")
    registry.ensure(DEFAULT_MODEL)
    return models


@pytest.fixture(autouse=True)
def _isolated_dirs(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """No test may touch the real user data directory."""
    home = tmp_path_factory.mktemp("userdata")
    monkeypatch.setenv("PHOTOSEARCH_LIBRARY", str(home / "library"))
    monkeypatch.setenv("PHOTOSEARCH_MODELS", str(home / "models"))
    monkeypatch.setenv("PHOTOSEARCH_TRAINING", str(home / "training"))
    # text in photos (OCR) runs only in the tests about it (tests/test_text_reading.py)
    monkeypatch.setenv("PHOTOSEARCH_READ_TEXT", "off")


@pytest.fixture
def registry(tmp_path: Path) -> ModelRegistry:
    return ModelRegistry(tmp_path / "models", providers={"tiny": TinyProvider(("tiny", "tiny2"))})


@pytest.fixture
def library(tmp_path: Path, registry: ModelRegistry):
    with Library(tmp_path / "library", registry=registry, threads=1) as lib:
        yield lib


def make_photo(
    path: Path,
    colour: str = "red",
    size: tuple[int, int] = (64, 48),
    fmt: str | None = None,
    **save_args,
) -> Path:
    """A flat-colour photo; the tiny model maps colour words to such photos."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, COLOUR_RGB[colour]).save(path, format=fmt, **save_args)
    return path


@pytest.fixture
def photo_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    for colour in ("red", "green", "blue", "yellow"):
        make_photo(folder / f"{colour}.jpg", colour)
    make_photo(folder / "sub" / "white.png", "white")
    return folder
