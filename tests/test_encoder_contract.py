"""The encoder-plugin contract (photosearch.testing.encoder_contract) run against the built-in
ConSE provider's bundle, the tiny test bundles and every Immich-layout variant, and shown to
fail on a bundle that breaks it."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from photosearch.models.bundle import read_bundle_config, rewrite_bundle_config
from photosearch.testing.encoder_contract import (
    ContractViolation,
    check_bundle,
    check_offers_are_cheap,
    check_provider,
    load_provider,
)
from tests.support.immich_bundle import VARIANTS, build_immich_bundle
from tests.support.plugin_paths import ROOT, subprocess_env
from tests.support.tiny_bundle import build_tiny_bundle

TINY_PLUGIN = """\
from tests.support.tiny_bundle import TinyProvider


def provider():
    return TinyProvider(("tiny", "tiny2"))
"""


def _install_plugin(site: Path, name: str, target: str) -> None:
    """A dist-info with one ``photosearch.models`` entry point, as pip would install it."""
    info = site / f"{name}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[photosearch.models]\n{name} = {target}\n")


@pytest.fixture
def tiny_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The tiny provider installed as a third-party plugin; returns a subprocess environment."""
    site = tmp_path / "site"
    _install_plugin(site, "tinyplugin", "tiny_contract_plugin:provider")
    (site / "tiny_contract_plugin.py").write_text(TINY_PLUGIN)
    monkeypatch.syspath_prepend(str(site))
    env = subprocess_env()
    env["PYTHONPATH"] = os.pathsep.join([env["PYTHONPATH"], str(site), str(ROOT)])
    return env


def test_a_third_party_plugin_keeps_the_contract(tmp_path: Path, tiny_plugin: dict[str, str]):
    check_offers_are_cheap("tinyplugin", env=tiny_plugin)
    built = check_provider("tinyplugin", tmp_path / "models")
    assert [read_bundle_config(b).name for b in built] == ["tiny", "tiny2"]


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_immich_layout_bundles_keep_the_contract(tmp_path: Path, variant: str):
    check_bundle(build_immich_bundle(tmp_path / variant, variant))


@pytest.mark.needs_default_model
def test_the_builtin_conse_provider_keeps_the_contract(default_models_dir: Path):
    """Through the real entry point; the session's default bundle is reused, not rebuilt."""
    check_offers_are_cheap("conse", env=subprocess_env())
    check_provider("conse", default_models_dir, names=["conse-lite0-minilm"])


def test_an_entry_point_that_is_not_a_provider_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    site = tmp_path / "site"
    _install_plugin(site, "notaprovider", "collections:OrderedDict")
    monkeypatch.syspath_prepend(str(site))
    with pytest.raises(ContractViolation, match="lacks offers"):
        load_provider("notaprovider")


def _make_batch_dependent(bundle: Path) -> None:
    """Rewrite the tiny image tower to subtract half the batch mean (what a graph exported
    with BatchNorm in training mode does), and record the new file hashes."""
    path = bundle / "visual" / "model.onnx"
    model = onnx.load(str(path))
    graph = model.graph
    graph.output[0].name = "embedding_raw"
    for node in graph.node:
        node.output[:] = ["embedding_raw" if o == "embedding" else o for o in node.output]
    graph.initializer.append(numpy_helper.from_array(np.asarray([0], np.int64), "batch_axis"))
    graph.initializer.append(numpy_helper.from_array(np.asarray(0.5, np.float32), "half"))
    graph.node.extend(
        [
            helper.make_node("ReduceMean", ["embedding_raw", "batch_axis"], ["batch_mean"]),
            helper.make_node("Mul", ["batch_mean", "half"], ["shift"]),
            helper.make_node("Sub", ["embedding_raw", "shift"], ["embedding"]),
        ]
    )
    del graph.output[:]
    graph.output.append(
        helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", 16])
    )
    model.opset_import[0].version = 18  # ReduceMean takes its axes as an input
    onnx.save(model, str(path))
    rewrite_bundle_config(bundle, read_bundle_config(bundle))  # the edited graph's hash


def test_a_batch_dependent_image_tower_breaks_the_contract(tmp_path: Path):
    bundle = build_tiny_bundle(tmp_path / "tiny")
    check_bundle(bundle)  # the unchanged bundle keeps it
    _make_batch_dependent(bundle)
    with pytest.raises(ContractViolation, match="depend on the batch"):
        check_bundle(bundle)
