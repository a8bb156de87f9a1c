"""T' exported alone (``export.teacher_only``): the fine-tuned teacher becomes an installed
bundle without a student being trained, and that bundle then teaches a student strictly as an
ONNX teacher (``--teacher-bundle``), the path issue 19 item 4(a) measures on Flickr8k."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from photosearch.models.bundle import TEACHER_BUNDLE
from tests.support.plugin_paths import subprocess_env

torch = pytest.importorskip("torch")
from photosearch_train import api  # noqa: E402
from photosearch_train.config import ConfigError  # noqa: E402

from tests.plugins.test_train_recipe import make_captions, tiny_config  # noqa: E402

HEADS = {
    "finetune_teacher.towers": False,
    "finetune_teacher.head": True,
    "finetune_teacher.head_optim.epochs": 20,
    "student.image_tower": "teacher",
    "export.teacher_only": True,
    "export.name": "tiny-tprime",
}


@pytest.fixture(scope="module")
def tprime_run(tmp_path_factory: pytest.TempPathFactory):
    """run-all with export.teacher_only on the tiny teacher (a few seconds)."""
    captions = make_captions(tmp_path_factory.mktemp("data"))
    config = tiny_config(captions, tmp_path_factory.mktemp("run"), **HEADS)
    return config, api.run_recipe(config)


def test_teacher_only_installs_t_prime_and_trains_no_student(tprime_run) -> None:
    from photosearch_train.device import setup
    from photosearch_train.workspace import Workspace

    from photosearch.models.runtime import Encoder

    config, report = tprime_run
    out = Path(config.out_dir)
    assert json.loads((out / "finetune_teacher-head" / "done.json").read_text())["finished"]
    assert not any((out / name).exists() for name in ("stage1", "stage2", "stage2-crops"))
    assert list(report["models"]) == ["teacher T'"]
    assert report["models"]["teacher T'"]["eval"]["t2i_R@10"] > 0
    installed = Path(report["installed"])
    assert installed == Path(config.export.models_dir) / "tiny-tprime"
    bundle_config = json.loads((installed / "config.json").read_text())["photosearch"]
    assert bundle_config["name"] == "tiny-tprime"
    # No teacher named: the app would otherwise re-rank T''s results with the weaker T.
    assert TEACHER_BUNDLE not in bundle_config["provenance"]

    # The installed bundle computes T''s vectors (heads included), not T's.
    tprime = Workspace(config, setup()).finetuned_teacher()
    texts = ["a red square", "the blue circle is blue"]
    with torch.no_grad():
        expected = tprime.textual(*tprime.tokenize(texts)).numpy()
        plain = Workspace(config, setup()).teacher()
        before_heads = plain.textual(*plain.tokenize(texts)).numpy()
    got = Encoder(installed, threads=1).encode_texts(texts)
    np.testing.assert_allclose(got, expected, atol=1e-4)
    assert not np.allclose(got, before_heads, atol=1e-3)  # the heads did change the vectors


def test_teacher_only_export_needs_t_prime_not_a_student(tmp_path: Path) -> None:
    captions = make_captions(tmp_path / "data")
    fresh = tiny_config(captions, tmp_path / "fresh", **HEADS)
    with pytest.raises(api.StageOrderError, match="finetune-teacher"):
        api.run_stage(fresh, "export")
    no_tprime = tiny_config(
        captions, tmp_path / "none", **{**HEADS, "finetune_teacher.enabled": False}
    )
    with pytest.raises(ConfigError, match="teacher_only"):
        api.run_stage(no_tprime, "export")


def test_the_exported_t_prime_teaches_a_frozen_student_as_an_onnx_bundle(
    tprime_run, tmp_path: Path
) -> None:
    """The command item 4(a) runs: distil-bundle from the installed T' by name, on photos
    alone (no captions), into a student the app loads, which names T' as its re-ranker."""
    from photosearch.models.runtime import Encoder

    config, report = tprime_run
    photos = Path(config.captions).parent / "images"
    out = tmp_path / "run"
    args = [
        sys.executable, "-m", "photosearch_train",
        "--models-dir", str(config.export.models_dir), "run-all",
        "--teacher-bundle", "tiny-tprime", "--images", str(photos), "--out", str(out),
        "--texts", str(_texts(tmp_path)),
        "--set", "stage1.corpus=false", "--set", "stage1.optim.max_steps=2",
        "--set", "stage1.optim.batch_size=4", "--set", "progress=false",
        "--set", "student.image_size=64", "--set", "student.text_layers=[0]",
        "--set", "export.name=tiny-tprime-student", "--set", "export.speed_rounds=1",
        "--set", f"export.models_dir={tmp_path / 'models'}",
    ]  # fmt: skip
    result = subprocess.run(args, capture_output=True, text=True, env=subprocess_env(), timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    saved = json.loads((out / "config.json").read_text())
    assert saved["teacher"]["kind"] == "onnx"
    assert Path(saved["teacher"]["bundle"]) == Path(report["installed"])
    student_report = json.loads((out / "report.json").read_text())
    student = Encoder(Path(student_report["installed"]), threads=1)
    assert student.embed_dim == Encoder(Path(report["installed"]), threads=1).embed_dim
    assert student.encode_texts(["a red dog"]).shape == (1, student.embed_dim)
    student_config = json.loads((Path(student_report["installed"]) / "config.json").read_text())
    assert student_config["photosearch"]["provenance"][TEACHER_BUNDLE] == "tiny-tprime"


def _texts(folder: Path) -> Path:
    path = folder / "texts.txt"
    colours = ("red", "green", "blue", "yellow")
    path.write_text("\n".join(f"a {c} {s}" for c in colours for s in ("square", "bar")) + "\n")
    return path
