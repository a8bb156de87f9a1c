"""An installed ONNX bundle as the teacher: its vectors through the app's runtime, cached on
disk and reused on resume; the shipped text corpus; a student distilled from an Immich-layout
bundle (batch fixed at 1) on photos alone, exported, installed and loaded by the Encoder."""

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
from photosearch_train.config import ConfigError, load_config  # noqa: E402
from photosearch_train.corpus import distillation_texts, shipped_corpus  # noqa: E402
from photosearch_train.onnx_teacher import (  # noqa: E402
    VectorCache,
    load_onnx_teacher,
    resolve_bundle,
)

from tests.plugins.test_train_recipe import make_captions  # noqa: E402


@pytest.fixture(scope="module")
def immich(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_immich_bundle(tmp_path_factory.mktemp("models") / "immich-clip", "clip")


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = make_captions(tmp_path_factory.mktemp("data")).parent / "images"
    return sorted(folder.glob("*.png"))


def test_teacher_vectors_are_the_runtime_s_and_are_reused_from_disk(
    immich: Path, photos: list[Path], tmp_path: Path
) -> None:
    from photosearch.files.imaging import decode_for_model
    from photosearch.models.runtime import Encoder

    teacher = load_onnx_teacher(str(immich), tmp_path / "cache")
    assert teacher.visual.encoder.visual_inputs()[0].fixed_batch == 1
    vectors = teacher.visual.vectors(photos)
    encoder = Encoder(immich, threads=1)
    pixels = np.stack([decode_for_model(p, encoder.config.preprocessing).pixels for p in photos])
    np.testing.assert_allclose(vectors, encoder.encode_images(pixels), atol=1e-5)
    texts = ["a red square", "a blue car"]
    np.testing.assert_allclose(
        teacher.textual.vectors(texts), encoder.encode_texts(texts), atol=1e-5
    )
    assert teacher.visual.cache.computed_chunks == 2

    again = load_onnx_teacher(str(immich), tmp_path / "cache")  # a resumed run
    np.testing.assert_array_equal(again.visual.vectors(photos), vectors)
    again.textual.vectors(texts)
    assert again.visual.cache.computed_chunks == 0
    folders = list((tmp_path / "cache" / "onnx-teacher").iterdir())
    assert len(folders) == 1 and folders[0].name.startswith("immich-clip@")


def test_an_interrupted_cache_computes_only_the_missing_chunks(tmp_path: Path) -> None:
    calls: list[tuple[int, int]] = []

    def compute(start: int, stop: int) -> np.ndarray:
        calls.append((start, stop))
        return np.full((stop - start, 2), start, np.float32)

    keys = [f"k{i}" for i in range(5)]
    VectorCache(tmp_path, chunk=2).vectors("img", keys[:2], compute)  # then "interrupted"
    cache = VectorCache(tmp_path, chunk=2)
    out = cache.vectors("img", keys, compute)
    assert calls == [(0, 2), (2, 4), (4, 5)] and cache.computed_chunks == 2
    assert out[:, 0].tolist() == [0, 0, 2, 2, 4]


def test_a_changed_photo_is_encoded_again(immich: Path, photos: list[Path], tmp_path: Path) -> None:
    from PIL import Image

    photo = tmp_path / "p.png"
    Image.new("RGB", (40, 40), (230, 20, 20)).save(photo)
    teacher = load_onnx_teacher(str(immich), tmp_path / "cache")
    red = teacher.visual.vectors([photo])
    Image.new("RGB", (40, 41), (20, 20, 230)).save(photo)
    again = load_onnx_teacher(str(immich), tmp_path / "cache")
    assert again.visual.vectors([photo]) @ red.T < 0.99
    assert again.visual.cache.computed_chunks == 1


def test_a_bundle_is_found_by_name_among_installed_ones_or_refused(
    immich: Path, tmp_path: Path
) -> None:
    assert resolve_bundle("immich-clip", immich.parent) == immich.resolve()
    assert resolve_bundle(str(immich)) == immich.resolve()
    with pytest.raises(ConfigError, match="'nope' is neither a folder nor installed.*immich-clip"):
        resolve_bundle("nope", immich.parent)


def test_the_shipped_corpus_and_the_user_s_texts(tmp_path: Path) -> None:
    corpus = shipped_corpus()
    assert len(corpus) > 30_000  # 25,014 captions (24,794 distinct) + query phrases
    assert "A black Honda motorcycle parked in front of a garage." in corpus
    assert "black honda motorcycle" in corpus
    mine = tmp_path / "mine.txt"
    mine.write_text("my cat on the sofa\n\ngrandma's garden\n", encoding="utf-8")
    texts = distillation_texts(str(mine), True, None)
    assert texts[:2] == ["my cat on the sofa", "grandma's garden"] and len(texts) == len(corpus) + 2
    assert distillation_texts(str(mine), False, None) == texts[:2]
    capped = distillation_texts(None, True, 100)
    assert len(capped) == 100 and capped[0] == corpus[0] and "black honda motorcycle" not in capped
    with pytest.raises(ConfigError, match="cannot read texts file"):
        distillation_texts(str(tmp_path / "missing.txt"), True, None)


def test_what_an_onnx_teacher_cannot_do_is_refused_before_any_work(immich: Path) -> None:
    from photosearch_train.workspace import check_onnx_teacher

    base = {"teacher.bundle": str(immich)}
    check_onnx_teacher(load_config(None, base, recipe="distil-bundle"))
    with pytest.raises(ConfigError, match="cannot be trained through: a student built from"):
        check_onnx_teacher(
            load_config(None, {**base, "student.image_tower": "teacher"}, recipe="distil-bundle")
        )
    with pytest.raises(ConfigError, match="crop distillation"):
        check_onnx_teacher(
            load_config(None, {**base, "stage2.crop_optim.epochs": 2}, recipe="distil-bundle")
        )


def test_a_student_of_an_immich_bundle_trains_on_photos_alone_and_loads_in_the_app(
    immich: Path, photos: list[Path], tmp_path: Path
) -> None:
    """The command a user runs (here with a couple of steps and a small corpus; the image
    tower retrained whole, "truncated": test_train_frozen_student covers the recipe's frozen
    one): stage 1 on the photos and texts towards the bundle's vectors (read through the
    runtime, batch 1), exported, int8 kept or refused by the cosine rule, installed; a rerun
    resumes."""
    from photosearch.models.runtime import Encoder

    texts = tmp_path / "texts.txt"
    texts.write_text("\n".join(f"a {c} square" for c in ("red", "green", "blue")) + "\n")
    out = tmp_path / "run"
    args = [
        sys.executable, "-m", "photosearch_train", "run-all",
        "--teacher-bundle", str(immich), "--images", str(photos[0].parent),
        "--texts", str(texts), "--out", str(out),
        "--set", "stage1.corpus=false", "--set", "stage1.optim.max_steps=2",
        "--set", "stage1.optim.batch_size=4", "--set", "progress=false",
        "--set", "student.image_tower=truncated", "--set", "student.image_blocks=3",
        "--set", "student.image_size=64",
        "--set", "student.text_layers=[0]", "--set", "export.name=tiny-distilled",
        "--set", f"export.models_dir={tmp_path / 'models'}", "--set", "export.speed_rounds=1",
    ]  # fmt: skip
    result = subprocess.run(args, capture_output=True, text=True, env=subprocess_env(), timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    config = json.loads((out / "config.json").read_text())
    assert config["teacher"] == {**config["teacher"], "kind": "onnx", "bundle": str(immich)}
    log = [json.loads(line) for line in (out / "stage1-image" / "log.jsonl").open()]
    assert "cos_to_teacher" in log[-1]["val"]
    cached = list((out / "cache" / "onnx-teacher").iterdir())[0]
    assert sorted({p.name.split("-")[0] for p in cached.iterdir()}) == ["img", "txt"]
    report = json.loads((out / "report.json").read_text())
    assert report["models"]["teacher T"]["eval"]["bundle"] == str(immich)
    assert "mean cosine to the fp32 student" in report["int8"]["decision"]
    installed = Encoder(Path(report["installed"]), threads=1)
    assert installed.embed_dim == 16
    assert installed.encode_texts(["a red dog"]).shape == (1, 16)
    assert installed.config.preprocessing.size == 64

    before = {p: p.stat().st_mtime_ns for p in cached.iterdir()}
    again = subprocess.run(args, capture_output=True, text=True, env=subprocess_env(), timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert {p: p.stat().st_mtime_ns for p in cached.iterdir()} == before


def test_with_captions_stage_2_distils_from_the_onnx_teacher_with_kd_and_hard_negatives(
    immich: Path, tmp_path: Path
) -> None:
    """Stage 2 where captions exist: InfoNCE + KD + corpus hard negatives against the
    teacher's cached vectors (T' = T); the report measures recall of T (its own bundle) and
    the student on the eval split (int8 off here: the photos-only test covers its rule). The
    recipe's frozen image tower: stage 2 moves its projection and never the ImageNet trunk."""
    captions = make_captions(tmp_path / "data")
    out = tmp_path / "run"
    args = [
        sys.executable, "-m", "photosearch_train", "run-all",
        "--teacher-bundle", str(immich), "--captions", str(captions), "--out", str(out),
        "--set", "stage1.corpus=false", "--set", "stage1.optim.max_steps=2",
        "--set", "stage2.optim.max_steps=2", "--set", "stage2.hard_negatives=2",
        "--set", "stage1.optim.batch_size=4", "--set", "stage2.optim.batch_size=4",
        "--set", "progress=false", "--set", "student.image_blocks=3",
        "--set", "student.image_size=64", "--set", "student.text_layers=[0]",
        "--set", "export.name=tiny-captioned", "--set", "export.install=false",
        "--set", "export.speed_rounds=1", "--set", "export.int8=false",
    ]  # fmt: skip
    result = subprocess.run(args, capture_output=True, text=True, env=subprocess_env(), timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    log = [json.loads(line) for line in (out / "stage2-image" / "log.jsonl").open()]
    steps = [row for row in log if "loss" in row]
    assert steps and {"infonce", "kd", "hn"} <= set(steps[-1])
    from photosearch_conse.efficientnet import checkpoint_path

    imagenet = torch.load(checkpoint_path(), weights_only=True)
    before = torch.load(out / "stage1" / "model.pt", weights_only=True)
    after = torch.load(out / "stage2-image" / "last.pt", weights_only=True)["model"]  # step 2
    torch.testing.assert_close(after["net._conv_head.weight"], imagenet["_conv_head.weight"])
    assert not torch.equal(after["projection.weight"], before["visual.projection.weight"])
    report = json.loads((out / "report.json").read_text())
    assert set(report["models"]) >= {"teacher T", "student S"}
    assert report["models"]["teacher T"]["eval"]["t2i_R@10"] > 0
    assert report["models"]["teacher T"]["eval"]["bundle"] == str(immich)
