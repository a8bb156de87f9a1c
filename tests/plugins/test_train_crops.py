"""Crop distillation of the "teacher" student's image tower: the loss against values worked
out by hand, crops as a pure function of (seed, epoch, photo), and the phase training only the
image tower and resuming exactly, on the tiny synthetic captions set."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from photosearch_train import api  # noqa: E402
from photosearch_train.crops import CropPairs, crop_distillation_loss  # noqa: E402

from photosearch.models.bundle import Preprocessing  # noqa: E402
from tests.plugins.test_train_recipe import make_captions, tiny_config  # noqa: E402


def test_crop_loss_matches_a_hand_computed_value() -> None:
    s = torch.tensor([[1.0, 0.0], [0.6, 0.8]])
    t = torch.tensor([[0.8, 0.6], [0.0, 1.0]])
    s_feat, t_feat = torch.tensor([[1.0, 2.0], [0.0, 0.0]]), torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    terms = crop_distillation_loss((s, s_feat), (t, t_feat), 0.5, 10.0, 2.0)
    # v2v: row 0 scores (0.8, 0.0)/0.5 = (1.6, 0.0), positive 0; row 1 (0.48+0.48, 0.8)/0.5.
    row0 = -math.log(math.exp(1.6) / (math.exp(1.6) + 1.0))
    row1 = -math.log(math.exp(1.6) / (math.exp(1.92) + math.exp(1.6)))
    assert terms["v2v"].item() == pytest.approx((row0 + row1) / 2, rel=1e-5)
    # cosine distance: 1 - 0.8 and 1 - 0.8, mean 0.2, weight 10.
    assert terms["cos"].item() == pytest.approx(2.0, rel=1e-5)
    # feature MSE: squared differences (0, 4, 0, 4) / 4 = 2, weight 2.
    assert terms["feat"].item() == pytest.approx(4.0, rel=1e-5)
    total = terms["v2v"] + terms["cos"] + terms["feat"]
    assert terms["loss"].item() == pytest.approx(total.item())


def test_crops_are_a_pure_function_of_seed_epoch_and_photo(tmp_path: Path) -> None:
    captions = make_captions(tmp_path)
    paths = sorted((captions.parent / "images").glob("*.png"))[:3]
    big, small = Preprocessing(size=32), Preprocessing(size=16)
    pairs = CropPairs(paths, big, small, min_scale=0.3, seed=7)
    a_big, a_small = pairs.batch([0, 2], epoch=1)
    assert a_big.shape == (2, 3, 32, 32) and a_small.shape == (2, 3, 16, 16)
    b_big, b_small = CropPairs(paths, big, small, 0.3, seed=7).batch([2, 0], epoch=1)
    np.testing.assert_array_equal(a_big, b_big[::-1])
    np.testing.assert_array_equal(a_small, b_small[::-1])
    other_epoch, _ = pairs.batch([0, 2], epoch=2)
    assert not np.array_equal(a_big, other_epoch)
    # Mixup blends each crop with another crop of the same batch, identically for both inputs.
    mixing = CropPairs(paths, big, small, 0.3, seed=7, mixup=0.4)
    m_big, m_small = mixing.batch([0, 2], epoch=1)
    again_big, again_small = mixing.batch([0, 2], epoch=1)
    np.testing.assert_array_equal(m_big, again_big)
    np.testing.assert_array_equal(m_small, again_small)
    w = (m_big[0] - a_big[1]) / (a_big[0] - a_big[1] + 1e-12)
    changed = np.abs(a_big[0] - a_big[1]) > 1e-3
    weight = float(np.median(w[changed]))
    assert 0.0 <= weight <= 1.0 and not np.array_equal(m_big, a_big)
    np.testing.assert_allclose(
        m_small[0], weight * a_small[0] + (1 - weight) * a_small[1], atol=1e-4
    )


def test_an_unreadable_photo_is_skipped_with_a_warning_not_a_crash(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A real library has a truncated JPEG or two; hours of distillation must not end on one."""
    captions = make_captions(tmp_path)
    paths = sorted((captions.parent / "images").glob("*.png"))[:3]
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(paths[1].read_bytes()[:60])  # a truncated file
    pre = Preprocessing(size=16)
    pairs = CropPairs([paths[0], broken, paths[2]], pre, pre, 0.3, seed=7)
    with caplog.at_level("WARNING"):
        big, _ = pairs.batch([0, 1, 2], epoch=0)
        pairs.batch([1], epoch=1)
    assert big.shape == (3, 3, 16, 16) and np.isfinite(big).all()
    warned = [r for r in caplog.records if "broken.jpg" in r.getMessage()]
    assert len(warned) == 1  # reported once, not every epoch
    # Its stand-in is the next readable photo (cropped as slot 1 would be), so the batch stays
    # a pure function of the files.
    stand_in, _ = CropPairs([paths[0], paths[2]], pre, pre, 0.3, seed=7).batch([1], epoch=0)
    np.testing.assert_array_equal(big[1], stand_in[0])


def test_a_folder_of_unpaired_photos_is_sampled_across_its_tree(tmp_path: Path) -> None:
    from photosearch_train.config import ConfigError
    from photosearch_train.data import list_images

    for year in ("2019", "2020", "2021", "2022"):
        (tmp_path / year).mkdir()
        for n in range(5):
            (tmp_path / year / f"{n}.jpg").write_bytes(b"")
    picked = list_images(tmp_path, limit=4)
    assert sorted(p.parent.name for p in picked) == ["2019", "2020", "2021", "2022"]
    assert picked == list_images(tmp_path, limit=4) and len(list_images(tmp_path)) == 20
    with pytest.raises(ConfigError, match="not found"):
        list_images(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no photos under"):
        list_images(tmp_path / "empty")


def _crop_config(captions: Path, out: Path):
    return tiny_config(
        captions,
        out,
        **{
            "finetune_teacher.towers": False,
            "finetune_teacher.head": True,
            "finetune_teacher.head_optim.epochs": 5,
            "student.image_tower": "teacher",
            "stage2.head_optim.epochs": 5,
            "stage2.crop_optim.epochs": 3,
            "stage2.crop_optim.max_steps": 5,
            "stage2.crop_optim.batch_size": 4,
            "stage2.crop_optim.warmup_steps": 1,
            "stage2.crop_feature_weight": 1.0,
        },
    )


def test_crop_phase_trains_the_image_tower_and_resumes_exactly(tmp_path: Path) -> None:
    captions = make_captions(tmp_path / "data")
    straight = _crop_config(captions, tmp_path / "straight")
    api.run_stage(straight, "finetune-teacher")
    api.run_stage(straight, "stage2")
    broken = _crop_config(captions, tmp_path / "broken")
    api.run_stage(broken, "finetune-teacher")
    first = api.run_stage(broken, "stage2", stop_after=2)
    crops = first.parts["crops"]
    assert first.finished is False and crops.finished is False and crops.step == 2
    assert not (tmp_path / "broken" / "stage2" / "model.pt").exists()
    api.run_stage(broken, "stage2")

    def steps(run: Path) -> list[dict]:
        log = (run / "stage2-crops" / "log.jsonl").read_text().splitlines()
        return [row for row in map(json.loads, log) if "loss" in row]

    assert len(steps(tmp_path / "straight")) == 5
    assert steps(tmp_path / "broken") == steps(tmp_path / "straight")
    a = torch.load(tmp_path / "straight" / "stage2" / "model.pt", "cpu", weights_only=True)
    b = torch.load(tmp_path / "broken" / "stage2" / "model.pt", "cpu", weights_only=True)
    assert all(torch.equal(a[k], b[k]) for k in a)
    # Only the image tower moved: the text tower is still T''s (a fresh student's), bit for
    # bit, while the image tower's own weights (not only its head) left T''s.
    from photosearch_train.device import setup
    from photosearch_train.workspace import Workspace

    fresh = Workspace(straight, setup()).student(fresh=True).towers().state_dict()
    text = [k for k in a if k.startswith("textual.")]
    assert text and all(torch.equal(a[k], fresh[k]) for k in text)
    visual = [k for k in a if k.startswith("visual.tower.") and a[k].is_floating_point()]
    assert any(not torch.equal(a[k], fresh[k]) for k in visual)
