"""Built-in recipes (``--recipe NAME``): layering under --config and --set, the messages a
user gets for a missing recipe or missing data, and the shipped recipe run end to end from
the command line on the tiny teacher with a user's kind of data (no test split, a photo
folder for distillation)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.plugin_paths import subprocess_env

torch = pytest.importorskip("torch")
from photosearch_train.api import OtherRunError, check_same_run  # noqa: E402
from photosearch_train.config import (  # noqa: E402
    ConfigError,
    builtin_recipes,
    load_config,
)

from tests.plugins.test_train_recipe import make_captions  # noqa: E402

SHIPPED = "motis-heads-144"


def _train(*args: str, timeout: int = 60) -> subprocess.CompletedProcess:
    env = subprocess_env()
    return subprocess.run(
        [sys.executable, "-m", "photosearch_train", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )


def test_the_chosen_recipe_ships_and_describes_itself() -> None:
    recipes = builtin_recipes()
    assert SHIPPED in recipes and "144 px" in recipes[SHIPPED]
    config = load_config(None, recipe=SHIPPED)
    assert config.student.image_tower == "teacher" and config.student.image_size == 144
    assert config.stage2.crop_optim.epochs == 24 and config.stage2.crop_min_scale == 0.2
    assert not config.export.prune_vocab and set(config.export.int8_towers) == {
        "visual",
        "textual",
    }


def test_config_file_and_set_layer_on_top_of_the_recipe(tmp_path: Path) -> None:
    own = tmp_path / "mine.json"
    own.write_text(json.dumps({"stage2": {"crop_optim": {"lr": 1e-4}}, "seed": 3}))
    config = load_config(own, {"stage2.crop_mixup": 0.0}, recipe=SHIPPED)
    crop = config.stage2.crop_optim
    assert crop.lr == 1e-4 and crop.epochs == 24  # the file's key merged into the section
    assert config.seed == 3 and config.stage2.crop_mixup == 0.0
    assert config.stage2.crop_min_scale == 0.2 and config.student.image_size == 144


def test_a_run_without_out_goes_to_the_user_data_folder_with_absolute_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = Path(os.environ["PHOTOSEARCH_TRAINING"])  # the tests' stand-in for the data folder
    monkeypatch.chdir(tmp_path)
    config = load_config(None, {"captions": "data/captions.jsonl", "stage1.images": "~/Pictures"})
    assert config.out_dir == str(runs / "motis-student")
    assert config.captions == str(tmp_path / "data" / "captions.jsonl")
    assert config.stage1.images == str(Path.home() / "Pictures")
    named = load_config(None, {"export.name": "mine", "out_dir": "runs/x"}, recipe=SHIPPED)
    assert named.out_dir == str(tmp_path / "runs" / "x")
    assert load_config(None, {"export.name": "mine"}).out_dir == str(runs / "mine")


def test_a_run_folder_of_another_recipe_is_refused_not_reused(tmp_path: Path) -> None:
    captions = make_captions(tmp_path / "data")
    first = load_config(None, {"captions": str(captions), "out_dir": str(tmp_path / "run")})
    first.save(tmp_path / "run" / "config.json")
    check_same_run(first)  # the same run, resumed
    check_same_run(load_config(None, {**_keys(first), "export.int8": False, "progress": False}))
    other = load_config(None, {**_keys(first), "seed": 1, "stage2.crop_mixup": 0.3})
    with pytest.raises(OtherRunError, match=r"seed: 0 -> 1; stage2.crop_mixup: 0.0 -> 0.3"):
        check_same_run(other)
    result = _train(
        "stage1", "--captions", str(captions), "--out", str(tmp_path / "run"), "--set", "seed=1"
    )
    assert result.returncode == 1 and "holds a run with other settings" in result.stderr
    assert "--out NEW_FOLDER" in result.stderr and "Traceback" not in result.stderr
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["config.json"]


def _keys(config) -> dict:
    return {"captions": config.captions, "out_dir": config.out_dir}


def test_an_unknown_recipe_names_the_built_in_ones() -> None:
    with pytest.raises(ConfigError, match=f"no built-in recipe 'fast'.*{SHIPPED}"):
        load_config(None, recipe="fast")


def test_missing_training_data_is_a_message_not_a_traceback(tmp_path: Path) -> None:
    result = _train("stage1", "--recipe", SHIPPED, "--out", str(tmp_path / "run"))
    assert result.returncode == 1
    assert "pass --captions FILE" in result.stderr and "Traceback" not in result.stderr
    result = _train("stage1", "--captions", str(tmp_path / "nowhere.jsonl"), "--out", str(tmp_path))
    assert result.returncode == 1 and "captions file not found" in result.stderr
    captions = make_captions(tmp_path / "data")
    result = _train(
        "run-all",
        "--recipe",
        SHIPPED,
        "--captions",
        str(captions),
        "--images",
        str(tmp_path / "no-such-folder"),
        "--out",
        str(tmp_path / "run2"),
    )
    assert result.returncode == 1 and "unpaired photos not found" in result.stderr
    assert not (tmp_path / "run2" / "cache").exists()  # refused before any work
    result = _train("stage1", "--set", "stage2.hard_negativs=3", "--print-config")
    assert result.returncode == 1 and "unknown keys ['hard_negativs']" in result.stderr


def test_an_unwritable_run_folder_is_a_message_not_a_traceback(tmp_path: Path) -> None:
    captions = make_captions(tmp_path / "data")
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the run folder should go", encoding="utf-8")
    result = _train("stage1", "--captions", str(captions), "--out", str(blocker / "run"))
    assert result.returncode == 1, result.stderr
    assert "Not a directory" in result.stderr and str(blocker) in result.stderr
    assert "Traceback" not in result.stderr


def test_shipped_recipe_runs_from_the_command_line_on_a_users_kind_of_data(
    tmp_path: Path,
) -> None:
    """Captions with train and val only, distillation on a photo folder: the recipe trains,
    reports on val (saying so), quantises both graphs and installs a bundle the app loads."""
    from photosearch.models.runtime import Encoder

    captions = make_captions(tmp_path / "data")
    rows = [json.loads(line) for line in captions.read_text().splitlines()]
    mine = captions.with_name("mine.jsonl")
    mine.write_text("".join(json.dumps(r) + "\n" for r in rows if r["split"] != "test"))
    tiny = tmp_path / "tiny.json"
    tiny.write_text(
        json.dumps(
            {
                "teacher": {"kind": "tiny-clip"},
                "progress": False,
                "student": {"image_size": 32, "text_layers": [0, 1]},
                "finetune_teacher": {"head_optim": {"epochs": 5}},
                "stage2": {
                    "head_optim": {"epochs": 5},
                    "crop_optim": {"epochs": 1, "batch_size": 6},
                },
                "export": {
                    "name": "my-student",
                    "models_dir": str(tmp_path / "models"),
                    "int8_max_drop": 100.0,
                    "speed_rounds": 1,
                },
            }
        )
    )
    out = tmp_path / "run"
    result = _train(
        "run-all",
        "--recipe",
        SHIPPED,
        "--config",
        str(tiny),
        "--captions",
        str(mine),
        "--images",
        str(captions.parent / "images"),
        "--out",
        str(out),
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    used = json.loads((out / "config.json").read_text())
    assert used["stage1"]["images"] == str(captions.parent / "images")
    assert used["stage2"]["crop_mixup"] == 0.4 and used["stage2"]["crop_optim"]["epochs"] == 1
    assert json.loads((out / "stage2-crops" / "done.json").read_text())["finished"]
    report = json.loads((out / "report.json").read_text())
    assert report["eval_split"] == "val"
    assert "kept" in report["int8"]["decision"]
    assert "static int8 image graph" in report["int8_visual"]["decision"]  # tried, decided
    fp32, int8 = out / "bundles" / "my-student", out / "bundles" / "my-student-int8"
    for graph in ("visual/model.onnx", "textual/model.onnx"):
        assert (int8 / graph).read_bytes() != (fp32 / graph).read_bytes()
    encoder = Encoder(Path(report["installed"]), threads=1)
    assert encoder.encode_texts(["a red dog"]).shape == (1, encoder.embed_dim)
