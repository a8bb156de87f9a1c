"""The frozen ImageNet student (``student.image_tower: "frozen"``): EfficientNet-Lite0's trunk
kept as it is and only a linear projection into the teacher's space fitted by ridge
regression, its strength chosen on held-out photos; distilled from an Immich-layout ONNX
bundle on photos alone, exported, installed and loaded by the app's Encoder."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.support.immich_bundle import build_immich_bundle
from tests.support.plugin_paths import subprocess_env

torch = pytest.importorskip("torch")
from photosearch_train.ridge import choose_ridge, fit_ridge, scale_residual  # noqa: E402
from photosearch_train.towers import FrozenImageNetTower  # noqa: E402

from tests.plugins.test_train_recipe import make_captions  # noqa: E402


def test_ridge_recovers_a_linear_map_and_picks_the_strength_that_generalises() -> None:
    rng = np.random.default_rng(0)
    truth = rng.normal(size=(4, 6)).astype(np.float32)
    features = rng.normal(size=(200, 6)).astype(np.float32) * [1, 10, 100, 1, 1, 1] + 5
    weight, bias = fit_ridge(features, features @ truth.T + 0.5, strength=1e-9)
    np.testing.assert_allclose(weight, truth, atol=1e-3)
    np.testing.assert_allclose(bias, 0.5, atol=1e-2)

    noisy = features[:20] @ truth.T + rng.normal(scale=3.0, size=(20, 4))  # few, noisy photos
    held = features[100:]
    fit = choose_ridge(features[:20], noisy, held, held @ truth.T, (1e-6, 0.1, 1e3))
    assert set(fit.held_out_cosine) == {1e-6, 0.1, 1e3}
    assert fit.strength == max(fit.held_out_cosine, key=fit.held_out_cosine.get)
    assert fit.held_out_cosine[fit.strength] > fit.held_out_cosine[1e3]


def test_the_residual_scale_widens_vectors_around_the_mean_inside_the_linear_map() -> None:
    rng = np.random.default_rng(1)
    features = rng.normal(size=(30, 6)).astype(np.float32)
    weight, bias = rng.normal(size=(4, 6)), rng.normal(size=4)
    mean = rng.normal(size=4)
    folded_w, folded_b = scale_residual(weight, bias, mean, 3.0)
    expected = mean + 3.0 * (features @ weight.T + bias - mean)
    np.testing.assert_allclose(features @ folded_w.T + folded_b, expected, rtol=1e-5, atol=1e-5)
    same_w, same_b = scale_residual(weight, bias, mean, 1.0)
    np.testing.assert_allclose(same_w, weight, rtol=1e-6)
    np.testing.assert_allclose(same_b, bias, rtol=1e-6, atol=1e-6)


def test_the_trunk_stays_frozen_whatever_a_phase_asks() -> None:
    tower = FrozenImageNetTower(embed_dim=8, image_size=64, imagenet=False)
    tower.requires_grad_(True)  # what a phase training "the image tower" calls
    trainable = {name for name, p in tower.named_parameters() if p.requires_grad}
    assert trainable == {"projection.weight", "projection.bias"}
    out = tower(torch.zeros(2, 3, 64, 64))
    assert out.shape == (2, 8)
    torch.testing.assert_close(out.norm(dim=-1), torch.ones(2))


@pytest.mark.parametrize("crops", [2, 0])  # 0: the photos alone (no crop rows)
def test_a_frozen_student_of_an_immich_bundle_trains_on_photos_and_loads_in_the_app(
    tmp_path: Path, crops: int
) -> None:
    from photosearch_conse.efficientnet import checkpoint_path

    from photosearch.models.runtime import Encoder

    immich = build_immich_bundle(tmp_path / "models-src" / "immich-clip", "clip")
    photos = make_captions(tmp_path / "data").parent / "images"
    texts = tmp_path / "texts.txt"
    texts.write_text("\n".join(f"a {c} square" for c in ("red", "green", "blue")) + "\n")
    out = tmp_path / "run"
    args = [
        sys.executable, "-m", "photosearch_train", "run-all",
        "--teacher-bundle", str(immich), "--images", str(photos),
        "--texts", str(texts), "--out", str(out),
        "--set", "student.image_tower=frozen", "--set", "student.image_size=64",
        "--set", "stage1.corpus=false", "--set", "stage1.optim.max_steps=2",
        "--set", "stage1.optim.batch_size=4", "--set", "progress=false",
        "--set", "student.text_layers=[0]", "--set", "export.name=tiny-frozen",
        "--set", f"export.models_dir={tmp_path / 'models'}", "--set", "export.speed_rounds=1",
        "--set", "student.draft_margin=1", "--set", "stage1.head_residual_scale=2.5",
        "--set", f"stage1.head_crops={crops}",
    ]  # fmt: skip
    result = subprocess.run(args, capture_output=True, text=True, env=subprocess_env(), timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]

    done = json.loads((out / "stage1-image" / "done.json").read_text())
    tried = [json.loads(line) for line in (out / "stage1-image" / "log.jsonl").open()]
    assert [row["ridge_strength"] for row in tried] == [0.1, 0.3, 1.0, 3.0, 10.0]
    best = max(tried, key=lambda row: row["val"]["cos_to_teacher"])
    assert done["best_val"]["ridge_strength"] == best["ridge_strength"]
    assert done["best_val"]["residual_scale"] == 2.5
    assert -1.0 <= done["best_val"]["cos_to_teacher"] <= 1.0
    if crops:
        assert done["crops"]["rows"] == 2 * done["photos"]  # two crops of each photo fitted on too
    else:
        assert done.get("crops") is None
    state = torch.load(out / "stage1" / "model.pt", weights_only=True)
    imagenet = torch.load(checkpoint_path(), weights_only=True)
    for key in ("_conv_stem.weight", "_blocks.15._project_conv.weight", "_conv_head.weight"):
        torch.testing.assert_close(state[f"visual.net.{key}"], imagenet[key])

    report = json.loads((out / "report.json").read_text())
    installed = Encoder(Path(report["installed"]), threads=1)
    assert installed.config.preprocessing.size == 64 and installed.embed_dim == 16
    assert installed.config.preprocessing.draft_margin == 1  # decoded as it was trained
    pixels = np.zeros((2, 3, 64, 64), np.float32)
    vectors = installed.encode_images(pixels)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    assert installed.encode_texts(["a red dog"]).shape == (1, 16)
