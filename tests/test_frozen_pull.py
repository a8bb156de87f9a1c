"""The frozen one-folder app (packaging/build.sh) pulls a model from a hub: huggingface_hub and
the catalogue are bundled. Building takes minutes, so this only checks a build that exists."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from tests.support.fake_hub import FakeHub, immich_style_bundle

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "packaging"))
from frozen_check import FROZEN, run_cli  # noqa: E402

pytestmark = pytest.mark.skipif(
    not FROZEN.is_file(), reason="no frozen app; build it with packaging/build.sh"
)


def test_frozen_app_pulls_and_lists_a_model(tmp_path: Path):
    with FakeHub() as hub:
        hub.add_bundle("immich-app/ViT-B-32__openai", immich_style_bundle(tmp_path / "hosted"))
        env = dict(
            os.environ,
            HF_ENDPOINT=hub.endpoint,
            HF_HOME=str(tmp_path / "hf"),
            NO_PROXY="127.0.0.1,localhost",
            PHOTOSEARCH_MODELS=str(tmp_path / "models"),
            PHOTOSEARCH_LIBRARY=str(tmp_path / "library"),
        )
        pulled = run_cli(FROZEN, "models", "pull", "ViT-B-32__openai", env=env)
        assert pulled.returncode == 0, pulled.stderr
    listed = run_cli(FROZEN, "models", "list", "--json", env=env)
    assert "ViT-B-32__openai" in [m["name"] for m in json.loads(listed.stdout)["installed"]]
    catalogue = run_cli(FROZEN, "models", "catalogue", env=env)
    assert "nllb-clip-base-siglip__v1" in catalogue.stdout
