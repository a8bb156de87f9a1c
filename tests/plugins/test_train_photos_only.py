"""Training on photos alone (no captions): the held-out split, the parts of a recipe refused
without captions, and the photos-only recipe run end to end from the command line on the
default teacher (ConSE) on a few synthetic photos, installing a bundle the app loads."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

from tests.support.plugin_paths import subprocess_env

torch = pytest.importorskip("torch")
from photosearch_train.config import ConfigError, load_config  # noqa: E402
from photosearch_train.photos_only import (  # noqa: E402
    PHOTOS_ONLY_RECIPE,
    check_photos_only,
    readable,
    sample_queries,
    split_photos,
)

from tests.plugins.test_train_recipe import make_captions  # noqa: E402


def _train(*args: str, timeout: int = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "photosearch_train", *args],
        capture_output=True,
        text=True,
        env=subprocess_env(),
        timeout=timeout,
    )


def test_a_tenth_of_the_photos_up_to_100_is_held_out_across_the_listing() -> None:
    photos = [Path(f"/lib/{n:04d}.jpg") for n in range(25)]
    train, held = split_photos(photos)
    assert held == [photos[0], photos[12]]  # round(2.5) = 2, spread over the listing
    assert sorted(train + held) == photos and not set(train) & set(held)
    many = [Path(f"/lib/{n:05d}.jpg") for n in range(3000)]
    train, held = split_photos(many)
    assert len(held) == 100 and held[1] == many[30] and len(train) == 2900
    with pytest.raises(ConfigError, match="only 9 .* at least 10"):
        split_photos(photos[:9])


def test_unreadable_held_out_photos_are_reported_and_left_out(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from PIL import Image

    good = tmp_path / "good.png"
    Image.new("RGB", (40, 30), (200, 10, 10)).save(good)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(good.read_bytes()[:40])  # truncated
    gone = tmp_path / "gone.jpg"  # listed, then deleted before the check
    with caplog.at_level("WARNING"):
        assert readable([broken, good, gone]) == [good]
    assert "broken.jpg" in caplog.text and "gone.jpg" in caplog.text
    with pytest.raises(ConfigError, match="none of the 2 photos held out"):
        readable([broken, gone])


def test_parts_that_learn_from_captions_are_refused_naming_the_photos_recipe() -> None:
    check_photos_only(load_config(None, recipe=PHOTOS_ONLY_RECIPE))
    with pytest.raises(ConfigError, match=f"truncated student.*--recipe {PHOTOS_ONLY_RECIPE}"):
        check_photos_only(load_config(None))
    with pytest.raises(ConfigError, match="fine-tuning the teacher"):
        check_photos_only(load_config(None, recipe="motis-heads-144"))
    with pytest.raises(ConfigError, match="crop_select 'rsum'"):
        check_photos_only(
            load_config(None, {"stage2.crop_select": "rsum"}, recipe=PHOTOS_ONLY_RECIPE)
        )


def test_a_captions_recipe_without_captions_is_a_message_before_any_work(tmp_path: Path) -> None:
    captions = make_captions(tmp_path / "data")
    out = tmp_path / "run"
    result = _train(
        "run-all",
        "--recipe",
        "motis-heads-144",
        "--images",
        str(captions.parent),
        "--out",
        str(out),
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"--recipe {PHOTOS_ONLY_RECIPE}" in result.stderr
    assert not (out / "cache").exists()


def test_the_ablation_table_without_captions_is_a_message(tmp_path: Path) -> None:
    result = _train(
        "ablate", "--recipe", PHOTOS_ONLY_RECIPE, "--images", str(tmp_path), "--out", str(tmp_path)
    )
    assert result.returncode == 1 and "pass --captions FILE" in result.stderr
    assert "Traceback" not in result.stderr


def test_sample_queries_ship_with_the_plugin() -> None:
    queries = sample_queries()
    assert len(queries) >= 20 and "two kids on a sled" in queries


def test_photos_only_recipe_runs_from_the_command_line_and_installs_a_student(
    tmp_path: Path,
) -> None:
    """No captions file at all: the student is distilled on the photo folder, checked on
    held-out photos (the same cosine through PyTorch while training and through the app's
    runtime in the report), keeps the teacher's text vectors, and is installed."""
    from photosearch.models.runtime import Encoder

    captions = make_captions(tmp_path / "data")
    photos = captions.parent / "images"
    tiny = tmp_path / "tiny.json"
    tiny.write_text(
        json.dumps(
            {
                "progress": False,
                "stage2": {"crop_optim": {"epochs": 3, "batch_size": 8}},
                "export": {
                    "name": "my-photos-student",
                    "models_dir": str(tmp_path / "models"),
                    "speed_rounds": 1,
                },
            }
        )
    )
    out = tmp_path / "run"
    result = _train(
        "run-all",
        "--recipe",
        PHOTOS_ONLY_RECIPE,
        "--config",
        str(tiny),
        "--images",
        str(photos),
        "--out",
        str(out),
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    stage2 = json.loads((out / "stage2" / "done.json").read_text())
    assert stage2["photos"] == 16 and stage2["held_out_photos"] == 2  # 18 photos
    crops = json.loads((out / "stage2-crops" / "done.json").read_text())
    assert crops["finished"] and "rsum" not in crops["best_val"]
    log = [json.loads(line) for line in (out / "stage2-crops" / "log.jsonl").open()]
    start = log[0]["val"]["cos_to_teacher"]  # T's own tower at 144 px instead of 224
    assert start < 0.95 and crops["best_val"]["cos_to_teacher"] > start
    report = json.loads((out / "report.json").read_text())
    assert report["mode"].startswith("photos only") and report["held_out_photos"] == 2
    models = report["models"]
    assert set(models) == {"teacher T", "student S", "student S int8"}
    assert models["teacher T"]["eval"]["cos_to_teacher"] == pytest.approx(1.0, abs=1e-5)
    assert models["student S"]["eval"]["cos_to_teacher"] == pytest.approx(
        crops["best_val"]["cos_to_teacher"], abs=2e-3
    )
    assert "mean cosine to the fp32 student" in report["int8"]["decision"]
    assert "cosine to T" in (out / "report.md").read_text()
    # The student's convolutions in static int8 only where close and faster on this machine
    visual = report["int8_visual"]
    assert "static int8 image graph" in visual["decision"]
    assert f"int8 image graph: {visual['decision']}" in (out / "report.md").read_text()
    int8_graph = onnx.load(
        str(out / "bundles" / "my-photos-student-int8" / "visual" / "model.onnx")
    )
    assert ("QuantizeLinear" in {n.op_type for n in int8_graph.graph.node}) == visual["kept"]
    teacher = Encoder(out / "bundles" / "my-photos-student-teacher", threads=1)
    student = Encoder(out / "bundles" / "my-photos-student", threads=1)
    queries = ["a red square", "the blue circle is blue"]
    np.testing.assert_allclose(
        student.encode_texts(queries), teacher.encode_texts(queries), atol=1e-5
    )
    installed = Encoder(Path(report["installed"]), threads=1)
    assert Path(report["installed"]).parent == tmp_path / "models"
    assert installed.encode_texts(["a red dog"]).shape == (1, installed.embed_dim)
