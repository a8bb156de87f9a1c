"""The default bundle's int8 text tower (photosearch_conse.quantize) and the identity it keeps:
a library indexed with the float32 bundle searches on with the int8 one, encoding nothing
again, and a text tower swapped without saying what it was made from is another model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from photosearch.errors import BundleError, ModelMismatch
from photosearch.library.facade import Library
from photosearch.models.bundle import (
    TEXTUAL_MODEL,
    TEXTUAL_TOKENIZER,
    VISUAL_MODEL,
    bundle_identity,
    read_bundle_config,
    sha256_file,
    verify_bundle,
)
from photosearch.models.runtime import Encoder
from photosearch.search.query import SearchQuery
from tests.support.tiny_bundle import COLOUR_WORDS, build_tiny_bundle

pytest.importorskip("onnx", reason="quantising needs onnx (the build-models extra)")


def _int8_text(bundle: Path, declare: bool = True) -> str:
    """Quantise ``bundle``'s text tower in place, as the default build does; returns the
    float32 file's sha256 (declared in identity_files unless ``declare`` is False)."""
    from photosearch_conse.quantize import quantize_text_tower

    text_model = bundle / TEXTUAL_MODEL
    float_copy = bundle.parent / f"{bundle.name}-float32.onnx"
    shutil.copyfile(text_model, float_copy)
    float_hash = sha256_file(float_copy)
    quantize_text_tower(float_copy, text_model)
    config_file = bundle / "config.json"
    config = json.loads(config_file.read_text())
    config["photosearch"]["files"][TEXTUAL_MODEL] = sha256_file(text_model)
    if declare:
        config["photosearch"]["identity_files"] = {TEXTUAL_MODEL: float_hash}
    config_file.write_text(json.dumps(config))
    return float_hash


def test_int8_text_tower_keeps_the_float32_identity(tmp_path: Path):
    from photosearch_conse.quantize import text_agreement

    float32 = build_tiny_bundle(tmp_path / "float32")
    int8 = build_tiny_bundle(tmp_path / "int8")
    undeclared = build_tiny_bundle(tmp_path / "undeclared")
    _int8_text(int8)
    _int8_text(undeclared, declare=False)

    assert sha256_file(int8 / TEXTUAL_MODEL) != sha256_file(float32 / TEXTUAL_MODEL)
    verify_bundle(int8)  # the recorded hashes are the int8 file's own
    assert bundle_identity(int8) == bundle_identity(float32)
    assert Encoder(int8, threads=1).identity == Encoder(float32, threads=1).identity
    assert bundle_identity(undeclared) != bundle_identity(float32)

    texts = [f"a {word} car" for word in COLOUR_WORDS]
    agreement = text_agreement(
        float32 / TEXTUAL_MODEL, int8 / TEXTUAL_MODEL, float32 / TEXTUAL_TOKENIZER, texts
    )
    assert 0.98 <= agreement <= 1.0 + 1e-6
    ours = Encoder(int8, threads=1).encode_texts(texts)
    theirs = Encoder(float32, threads=1).encode_texts(texts)
    assert np.min(np.sum(ours * theirs, axis=1)) >= 0.98


def test_identity_files_may_name_only_the_text_tower(tmp_path: Path):
    bundle = build_tiny_bundle(tmp_path / "tiny")
    config_file = bundle / "config.json"
    config = json.loads(config_file.read_text())
    config["photosearch"]["identity_files"] = {VISUAL_MODEL: "0" * 64}
    config_file.write_text(json.dumps(config))
    with pytest.raises(BundleError, match="identity_files may only name textual/model.onnx"):
        read_bundle_config(bundle)
    config["photosearch"]["identity_files"] = {TEXTUAL_MODEL: "not a hash"}
    config_file.write_text(json.dumps(config))
    with pytest.raises(BundleError, match="no sha256"):
        read_bundle_config(bundle)


def test_library_searches_on_after_the_text_tower_became_int8(tmp_path, registry, photo_dir):
    with Library(tmp_path / "library", registry=registry, threads=1) as library:
        library.add_folder(photo_dir)
        assert library.index().encoding.encoded == 5
        identity = library.encoder.identity
    installed = registry.path_of("tiny")
    _int8_text(installed)  # `photosearch models build --force` after an upgrade

    with Library(tmp_path / "library", registry=registry, threads=1) as library:
        assert library.encoder.identity == identity
        assert library.index().encoding.encoded == 0  # nothing encoded again
        hits = library.search(SearchQuery(text="red", k=5))
        assert Path(hits[0].path).name == "red.jpg"


def test_an_undeclared_text_tower_is_another_model(tmp_path, registry, photo_dir):
    """Never the old photos' vectors with a new text tower's queries, silently."""
    with Library(tmp_path / "library", registry=registry, threads=1) as library:
        library.add_folder(photo_dir)
        library.index()
    _int8_text(registry.path_of("tiny"), declare=False)
    with (
        Library(tmp_path / "library", registry=registry, threads=1) as library,
        pytest.raises(ModelMismatch),
    ):
        library.search(SearchQuery(text="red", k=5))


class _Int8Provider:
    """The tiny provider, its second build's text tower in int8 (declared or not)."""

    def __init__(self, declare: bool) -> None:
        self.declare = declare
        self.builds = 0

    def offers(self):
        from tests.support.tiny_bundle import TinyProvider

        return TinyProvider(("tiny",)).offers()

    def build(self, name: str, target_dir: Path, progress=None) -> None:
        self.builds += 1
        build_tiny_bundle(target_dir, name=name)
        if self.builds > 1:
            _int8_text(target_dir, declare=self.declare)


@pytest.mark.parametrize("declare", [True, False])
def test_models_build_force_says_whether_libraries_keep_their_vectors(
    tmp_path, monkeypatch, capsys, declare
):
    from photosearch.cli.main import main
    from photosearch.models import providers

    provider = _Int8Provider(declare)
    monkeypatch.setattr(providers, "load_providers", lambda: {"tiny": provider})
    models = str(tmp_path / "models")
    assert main(["models", "build", "tiny", "--models-dir", models]) == 0
    capsys.readouterr()
    assert main(["models", "build", "tiny", "--force", "--models-dir", models]) == 0
    out = capsys.readouterr().out
    if declare:
        assert "same identity as before (tiny@" in out and "keep their vectors" in out
    else:
        assert "new identity tiny@" in out and "encode their photos again" in out
