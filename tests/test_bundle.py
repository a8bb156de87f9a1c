"""Model bundles: reading, verifying, identities, and building through the registry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from photosearch.errors import BundleError, ModelBuildError, ModelNotFound, PhotosearchError
from photosearch.models.bundle import (
    TEXTUAL_MODEL,
    VISUAL_MODEL,
    bundle_identity,
    read_bundle_config,
    verify_bundle,
)
from photosearch.models.providers import ModelOffer, ModelRegistry
from tests.support.tiny_bundle import TINY_DIM, TINY_SIZE, TinyProvider, build_tiny_bundle


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    return build_tiny_bundle(tmp_path / "tiny")


def test_read_bundle_config(bundle: Path):
    config = read_bundle_config(bundle)
    assert (config.name, config.embed_dim, config.context_length) == ("tiny", TINY_DIM, 16)
    assert config.preprocessing.size == TINY_SIZE
    assert config.preprocessing.interpolation == "bilinear"
    assert config.pad_token == "[PAD]"
    assert set(config.file_hashes) >= {VISUAL_MODEL, TEXTUAL_MODEL}
    verify_bundle(bundle, config)


def test_verify_catches_a_modified_file(bundle: Path):
    with (bundle / VISUAL_MODEL).open("ab") as handle:
        handle.write(b"\0")
    with pytest.raises(BundleError, match="visual/model.onnx"):
        verify_bundle(bundle)


def test_verify_catches_a_missing_hashed_file(bundle: Path):
    (bundle / "visual" / "preprocess_cfg.json").unlink()
    with pytest.raises(BundleError, match="missing"):
        verify_bundle(bundle)


@pytest.mark.parametrize(
    "missing", ["config.json", VISUAL_MODEL, TEXTUAL_MODEL, "textual/tokenizer.json"]
)
def test_read_config_names_missing_files(bundle: Path, missing: str):
    (bundle / missing).unlink()
    with pytest.raises(BundleError, match=missing):
        read_bundle_config(bundle)


def test_read_config_rejects_bad_json_and_values(bundle: Path):
    config = bundle / "config.json"
    original = json.loads(config.read_text())
    config.write_text("{broken")
    with pytest.raises(BundleError, match="cannot read"):
        read_bundle_config(bundle)
    config.write_text(json.dumps({**original, "embed_dim": "many"}))
    with pytest.raises(BundleError, match="embed_dim"):
        read_bundle_config(bundle)
    config.write_text(json.dumps(original))
    preprocess = bundle / "visual" / "preprocess_cfg.json"
    preprocess.write_text(json.dumps({"size": 32, "resize_mode": "stretch-ish"}))
    with pytest.raises(BundleError, match="resize_mode"):
        read_bundle_config(bundle)
    for bad in (0, 1.5, "1"):
        preprocess.write_text(json.dumps({"size": 32, "draft_margin": bad}))
        with pytest.raises(BundleError, match="draft_margin"):
            read_bundle_config(bundle)


def test_a_bundle_may_set_its_own_draft_margin(bundle: Path):
    """A distilled student trained on draft-decoded photos records its margin; bundles that
    say nothing keep the app's default and their preprocess file is unchanged."""
    assert read_bundle_config(bundle).preprocessing.draft_margin is None
    preprocess = bundle / "visual" / "preprocess_cfg.json"
    assert "draft_margin" not in json.loads(preprocess.read_text())
    preprocess.write_text(json.dumps({**json.loads(preprocess.read_text()), "draft_margin": 1}))
    assert read_bundle_config(bundle).preprocessing.draft_margin == 1


def test_identity_is_stable_and_changes_with_model_files(tmp_path: Path):
    first = build_tiny_bundle(tmp_path / "a")
    second = build_tiny_bundle(tmp_path / "b")
    other_seed = build_tiny_bundle(tmp_path / "c", seed=5)
    assert bundle_identity(first) == bundle_identity(second)
    assert bundle_identity(first).startswith("tiny@")
    assert bundle_identity(other_seed) != bundle_identity(first)


def test_identity_follows_files_when_no_hashes_are_recorded(bundle: Path):
    config = json.loads((bundle / "config.json").read_text())
    config["photosearch"]["files"] = {}
    (bundle / "config.json").write_text(json.dumps(config))
    before = bundle_identity(bundle)
    with (bundle / TEXTUAL_MODEL).open("ab") as handle:
        handle.write(b"\0")
    assert bundle_identity(bundle) != before


def test_registry_builds_once_and_lists(tmp_path: Path):
    provider = TinyProvider(("tiny", "tiny2"))
    registry = ModelRegistry(tmp_path / "models", providers={"tiny": provider})
    assert registry.default_model_name() == "tiny"
    assert registry.installed() == []
    path = registry.ensure("tiny")
    assert registry.ensure("tiny") == path and provider.builds == 1
    assert [m.name for m in registry.installed()] == ["tiny"]
    assert not [p for p in (tmp_path / "models").iterdir() if p.name.startswith(".")]
    with pytest.raises(ModelNotFound):
        registry.ensure("nonexistent")


class _BrokenProvider:
    def offers(self) -> list[ModelOffer]:
        return [ModelOffer("broken", "writes half a bundle", "broken")]

    def build(self, name: str, target_dir: Path, progress=None) -> None:
        (target_dir / "config.json").write_text("{}")
        raise RuntimeError("network went away")


class _NetworkProvider:
    def offers(self) -> list[ModelOffer]:
        return [ModelOffer("remote", "downloads", "net", needs_network=True)]

    def build(self, name: str, target_dir: Path, progress=None) -> None:
        build_tiny_bundle(target_dir, name=name)


def test_failed_build_leaves_nothing_behind_and_says_which_plugin(tmp_path: Path):
    registry = ModelRegistry(tmp_path / "models", providers={"broken": _BrokenProvider()})
    with pytest.raises(
        ModelBuildError, match="plugin 'broken' could not build 'broken': network went away"
    ) as caught:
        registry.ensure("broken")
    assert isinstance(caught.value, PhotosearchError)
    assert isinstance(caught.value.__cause__, RuntimeError)  # the plugin's own, for the log
    assert list((tmp_path / "models").iterdir()) == []


def test_network_models_need_permission(tmp_path: Path):
    registry = ModelRegistry(tmp_path / "models", providers={"net": _NetworkProvider()})
    with pytest.raises(ModelNotFound, match="models pull"):
        registry.ensure("remote")
    assert registry.ensure("remote", allow_network=True).is_dir()


def test_rebuild_replaces_an_installed_bundle_atomically(tmp_path):
    from photosearch.models.providers import ModelRegistry
    from tests.support.tiny_bundle import TinyProvider

    provider = TinyProvider(("tiny",))
    registry = ModelRegistry(tmp_path / "models", providers={"tiny": provider})
    first = registry.ensure("tiny")
    assert registry.ensure("tiny") == first and provider.builds == 1
    again = registry.rebuild("tiny")
    assert again == first and provider.builds == 2
    assert [m.name for m in registry.installed()] == ["tiny"]
    assert not [p for p in (tmp_path / "models").iterdir() if p.name.startswith(".")]
