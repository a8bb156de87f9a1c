"""The trainer end to end on a tiny synthetic captions set with the tiny CLIP-like teacher:
stages, sequential fine-tuning, resume, ONNX export, and the app loading the bundle."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.support.plugin_paths import subprocess_env

torch = pytest.importorskip("torch")
from photosearch_train import api  # noqa: E402
from photosearch_train.config import RecipeConfig, load_config  # noqa: E402
from PIL import Image  # noqa: E402

COLOURS = {
    "red": (220, 30, 30),
    "green": (30, 200, 40),
    "blue": (30, 40, 220),
    "yellow": (235, 220, 30),
    "black": (10, 10, 10),
    "white": (245, 245, 245),
}
SHAPES = ("dog", "ball", "car")


def make_captions(folder: Path) -> Path:
    """18 photos (colour x shape drawn as a coloured square on grey), 3 captions each."""
    (folder / "images").mkdir(parents=True)
    rows = []
    for n, (colour, rgb) in enumerate(COLOURS.items()):
        for m, shape in enumerate(SHAPES):
            image = Image.new("RGB", (48, 40), (128, 128, 128))
            image.paste(rgb, (4 + 10 * m, 4, 28 + 10 * m, 34))
            name = f"images/{colour}-{shape}.png"
            image.save(folder / name)
            split = "train" if (n + m) % 3 else ("val" if n % 2 else "test")
            rows.append(
                {
                    "image": name,
                    "split": split,
                    "captions": [
                        f"a {colour} {shape}",
                        f"the {shape} is {colour}",
                        f"{colour} {shape} photo",
                    ],
                }
            )
    path = folder / "captions.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def tiny_config(captions: Path, out: Path, **overrides) -> RecipeConfig:
    base = {
        "captions": str(captions),
        "out_dir": str(out),
        "progress": False,
        "checkpoint_every": 1,
        "teacher.kind": "tiny-clip",
        "student.image_init": "random",
        "student.image_blocks": 3,
        "student.image_size": 32,
        "student.image_width": 0.25,
        "student.text_layers": [0, 2],
        "export.models_dir": str(out / "models"),
        "export.name": "tiny-student",
        "eval_every": 1000,  # validate at step 0 and at the end only: keeps the tests fast
        "select_best": False,  # keep the last step: these tests check what training changed
    }
    for stage in ("stage1", "finetune_teacher", "stage2"):
        base[f"{stage}.optim.max_steps"] = 3
        base[f"{stage}.optim.batch_size"] = 6
        base[f"{stage}.optim.warmup_steps"] = 1
    base["stage2.hard_negatives"] = 2
    base["stage2.text_hard_negatives"] = True
    base.update(overrides)
    return load_config(None, base)


@pytest.fixture(scope="module")
def captions(tmp_path_factory) -> Path:
    return make_captions(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="module")
def recipe_run(captions, tmp_path_factory):
    """The whole recipe once (about 10 s); several tests read what it left behind."""
    out = tmp_path_factory.mktemp("run")
    config = tiny_config(captions, out)
    return config, api.run_recipe(config)


def _state(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def _same(a: dict, b: dict, prefix: str) -> bool:
    keys = [k for k in a if k.startswith(prefix)]
    assert keys
    return all(torch.equal(a[k], b[k]) for k in keys)


def test_query_latency_is_the_median_and_95th_percentile_of_single_texts() -> None:
    from photosearch_train.report import query_latency, text_speed

    seconds = np.array([0.01] * 19 + [0.1])  # one slow query in twenty
    speed = text_speed(seconds)
    assert speed["texts_per_s"] == pytest.approx(20 / 0.29)
    assert speed["query_ms_p50"] == pytest.approx(10.0)
    assert speed["query_ms_p95"] == pytest.approx(10.0 + 0.05 * 90.0)  # rank 18.05 of 0..19
    assert query_latency(speed) == "10.0 / 14.5" and query_latency({}) == "-"


def test_recipe_reports_teacher_finetuned_teacher_student(recipe_run):
    config, report = recipe_run
    assert set(report["models"]) >= {"teacher T", "teacher T'", "student S"}
    for model in report["models"].values():
        ev = model["eval"]
        assert 0 <= ev["t2i_R@1"] <= ev["t2i_R@5"] <= ev["t2i_R@10"] <= 100
        assert ev["images_per_s"] > 0 and ev["texts_per_s"] > 0 and ev["disk_mb"] > 0
        assert 0 < ev["query_ms_p50"] <= ev["query_ms_p95"]
    out = Path(config.out_dir)
    assert json.loads((out / "report.json").read_text())["name"] == "tiny-student"
    assert "| student S |" in (out / "report.md").read_text()
    assert "| query ms p50 / p95 |" in (out / "report.md").read_text()
    assert "bound" in report["int8"] and report["installed"]
    log = [json.loads(x) for x in (out / "stage2-image" / "log.jsonl").read_text().splitlines()]
    steps = [r for r in log if "loss" in r]
    assert {"infonce", "kd", "hn"} <= set(steps[0]) and any("val" in r for r in log)


def test_sequential_finetuning_changes_only_the_tower_in_training(recipe_run):
    config, _ = recipe_run
    out = Path(config.out_dir)
    for before, image_phase, text_phase in (
        ("stage1", "stage2-image", "stage2-text"),
        (None, "finetune_teacher-image", "finetune_teacher-text"),
    ):
        after_image = _state(out / image_phase / "model.pt")
        after_text = _state(out / text_phase / "model.pt")
        if before:
            start = _state(out / before / "model.pt")
            assert _same(start, after_image, "textual."), "image phase touched the text tower"
            assert not _same(start, after_image, "visual."), "image phase did not train"
        assert _same(after_image, after_text, "visual."), "text phase touched the image tower"
        assert not _same(after_image, after_text, "textual."), "text phase did not train"


def test_bundle_loads_in_the_app_and_matches_pytorch(recipe_run):
    from photosearch_train.device import setup
    from photosearch_train.workspace import Workspace

    from photosearch.files.imaging import decode_for_model
    from photosearch.models.runtime import Encoder

    config, _ = recipe_run
    bundle = Path(config.out_dir) / "bundles" / "tiny-student"
    encoder = Encoder(bundle, threads=1)
    student = Workspace(config, setup()).student()
    paths = [p for p in (Path(config.captions).parent / "images").iterdir()][:4]
    pixels = np.stack([decode_for_model(p, encoder.config.preprocessing).pixels for p in paths])
    texts = ["a red dog", "the car is blue and yellow", "ball"]
    with torch.no_grad():
        torch_images = student.visual(torch.from_numpy(pixels)).numpy()
        torch_texts = student.textual(*student.tokenize(texts)).numpy()
    np.testing.assert_allclose(encoder.encode_images(pixels), torch_images, atol=1e-4)
    np.testing.assert_allclose(encoder.encode_texts(texts), torch_texts, atol=1e-4)


def test_installed_bundle_evaluates_through_the_app(recipe_run):
    from photosearch.library.evaluation import evaluate

    config, report = recipe_run
    models_dir = Path(config.export.models_dir)
    assert Path(report["installed"]).parent == models_dir
    result = evaluate(Path(config.captions), "test", models_dir=models_dir, model="tiny-student")
    assert result.images == result.indexed == 3
    assert 0 <= result.text_to_image["R@1"] <= result.text_to_image["R@10"] == 100.0


def test_a_few_steps_lower_the_loss(captions, tmp_path):
    config = tiny_config(
        captions,
        tmp_path,
        **{
            "stage1.optim.max_steps": 12,
            "stage1.optim.epochs": 12,
            "stage1.optim.batch_size": 12,
            "stage1.optim.lr": 3e-3,
            "max_train_images": 12,
        },
    )
    api.run_stage(config, "stage1")
    log = [
        json.loads(x) for x in (tmp_path / "stage1-image" / "log.jsonl").read_text().splitlines()
    ]
    losses = [r["loss"] for r in log if "loss" in r]
    assert len(losses) == 12 and losses[-1] < 0.7 * losses[0], losses


def test_resume_reproduces_the_next_step_exactly(captions, tmp_path):
    overrides = {"stage1.optim.max_steps": 5, "stage1.optim.epochs": 3}
    straight = tiny_config(captions, tmp_path / "straight", **overrides)
    api.run_stage(straight, "stage1")
    broken = tiny_config(captions, tmp_path / "broken", **overrides)
    first = api.run_stage(broken, "stage1", stop_after=3)  # mid-epoch (2 steps per epoch)
    assert first.finished is False and set(first.parts) == {"image"}
    assert first.parts["image"].finished is False and first.parts["image"].step == 3
    api.run_stage(broken, "stage1")

    def steps(run: Path) -> list[dict]:
        rows = [
            json.loads(x) for x in (run / "stage1-image" / "log.jsonl").read_text().splitlines()
        ]
        return [r for r in rows if "loss" in r]

    assert steps(tmp_path / "broken") == steps(tmp_path / "straight")
    a = _state(tmp_path / "straight" / "stage1" / "model.pt")
    b = _state(tmp_path / "broken" / "stage1" / "model.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_run_killed_between_checkpoints_resumes_with_a_clean_log(captions, tmp_path):
    """Killed at step 3 with the last checkpoint at step 2, in the middle of writing a log line:
    the resumed run redoes step 3, and its log is the uninterrupted run's, record for record."""
    overrides = {"stage1.optim.max_steps": 5, "stage1.optim.epochs": 3, "checkpoint_every": 2}
    straight = tiny_config(captions, tmp_path / "straight", **overrides)
    api.run_stage(straight, "stage1")
    broken = tiny_config(captions, tmp_path / "broken", **overrides)
    api.run_stage(broken, "stage1", stop_after=3)
    log = tmp_path / "broken" / "stage1-image" / "log.jsonl"
    with log.open("a", encoding="utf-8") as handle:
        handle.write('{"step": 4, "epoch": 1, "lr"')  # the kill
    api.run_stage(broken, "stage1")

    def records(run: Path) -> list[dict]:
        text = (run / "stage1-image" / "log.jsonl").read_text(encoding="utf-8")
        return [json.loads(x) for x in text.splitlines()]

    assert records(tmp_path / "broken") == records(tmp_path / "straight")
    assert [r["step"] for r in records(tmp_path / "broken") if "loss" in r] == [1, 2, 3, 4, 5]


def _env() -> dict[str, str]:
    return subprocess_env()


def test_registering_the_command_does_not_import_torch():
    code = (
        "import argparse, sys\n"
        "from photosearch_train.commands import register\n"
        "parser = argparse.ArgumentParser()\n"
        "register(parser.add_subparsers(dest='command'), argparse.ArgumentParser(add_help=False))\n"
        "args = parser.parse_args(['train', 'stage2', '--set', 'stage2.kd=false', '--out', 'x'])\n"
        "assert args.set == ['stage2.kd=false'] and callable(args.handler)\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "print('ok')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=_env(), timeout=60
    )
    assert result.returncode == 0 and "ok" in result.stdout, result.stderr


def test_measuring_a_bundle_needs_no_torch():
    """report.py measures bundles through the app's ONNX runtime: importable without torch."""
    code = (
        "import sys\n"
        "import photosearch_train.report\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "print('ok')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=_env(), timeout=60
    )
    assert result.returncode == 0 and "ok" in result.stdout, result.stderr


def test_print_config_applies_overrides(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "photosearch_train",
            "stage1",
            "--print-config",
            "--set",
            "stage2.hard_negatives=0",
            "--set",
            "student.text_layers=[0,1]",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    assert printed["stage2"]["hard_negatives"] == 0
    assert printed["student"]["text_layers"] == [0, 1] and printed["out_dir"] == str(tmp_path)


def test_a_section_given_in_part_keeps_its_own_defaults():
    default = load_config(None).finetune_teacher.head_optim
    config = load_config(None, {"finetune_teacher.head_optim.epochs": 7})
    head = config.finetune_teacher.head_optim
    assert head.epochs == 7 and default.epochs != 7
    assert (head.lr, head.batch_size, head.weight_decay) == (
        default.lr,
        default.batch_size,
        default.weight_decay,
    )
    assert head.lr != load_config(None).stage1.optim.lr  # not the OptimConfig class default


def test_a_stage_asked_for_before_the_one_it_builds_on_is_refused(captions, tmp_path):
    """Otherwise stage 2 would start from an untrained student (or T instead of T') and export
    would ship one, without a word."""
    config = tiny_config(captions, tmp_path)
    with pytest.raises(api.StageOrderError, match="builds on stage1 and finetune-teacher"):
        api.run_stage(config, "stage2")
    with pytest.raises(api.StageOrderError, match="'photosearch train stage2'"):
        api.run_stage(config, "export")
    assert not (tmp_path / "stage2").exists() and not (tmp_path / "models").exists()


def test_unknown_config_keys_are_refused():
    with pytest.raises(ValueError, match="unknown keys"):
        load_config(None, {"stage2.hard_negativs": 3})


@pytest.mark.parametrize(
    ("stage", "overrides"),
    [
        ("stage1", {"stage1.loss": "mse"}),
        ("stage1", {"stage1.loss": "infonce", "student.vldeformer_head": True}),
        ("finetune-teacher", {"finetune_teacher.sequential": False}),
    ],
)
def test_ablation_switches_train(captions, tmp_path, stage, overrides):
    config = tiny_config(
        captions,
        tmp_path,
        **{"stage1.optim.max_steps": 1, "finetune_teacher.optim.max_steps": 1, **overrides},
    )
    result = api.run_stage(config, stage)
    phases = list(result.parts.values())
    assert phases and all(p.finished and p.total == 1 for p in phases), result


def test_stage2_without_kd_and_hard_negatives(captions, tmp_path):
    config = tiny_config(
        captions,
        tmp_path,
        **{
            "stage1.enabled": False,
            "finetune_teacher.enabled": False,
            "stage2.kd": False,
            "stage2.hard_negatives": 0,
            "stage2.text_hard_negatives": False,
            "stage2.optim.max_steps": 1,
        },
    )
    for stage in ("stage1", "finetune-teacher", "stage2"):
        api.run_stage(config, stage)
    rows = [
        json.loads(x) for x in (tmp_path / "stage2-image" / "log.jsonl").read_text().splitlines()
    ]
    step = next(r for r in rows if "loss" in r)
    assert set(step) == {"step", "epoch", "lr", "infonce", "loss"}


def test_joint_stage2_lowers_the_loss_and_trains_both_towers(captions, tmp_path):
    config = tiny_config(
        captions,
        tmp_path,
        **{
            "stage1.enabled": False,
            "finetune_teacher.enabled": False,
            "stage2.sequential": False,
            "stage2.optim.max_steps": 10,
            "stage2.optim.epochs": 10,
            "stage2.optim.batch_size": 12,
            "stage2.optim.lr": 3e-3,
            "max_train_images": 12,
        },
    )
    for stage in ("stage1", "finetune-teacher", "stage2"):
        summary = api.run_stage(config, stage)
    joint = summary.parts["joint"]
    assert joint.finished and joint.total == 10, summary
    log = [
        json.loads(x) for x in (tmp_path / "stage2-joint" / "log.jsonl").read_text().splitlines()
    ]
    steps = [r for r in log if "loss" in r]
    assert {"infonce", "kd", "hn", "hn_text"} <= set(steps[0])
    assert steps[-1]["loss"] < 0.8 * steps[0]["loss"], [r["loss"] for r in steps]
    start, end = _state(tmp_path / "stage1" / "model.pt"), _state(tmp_path / "stage2" / "model.pt")
    assert not _same(start, end, "visual."), "joint stage 2 did not train the image tower"
    assert not _same(start, end, "textual."), "joint stage 2 did not train the text tower"


def test_ablation_runner_reuses_identical_phases(captions, tmp_path):
    from photosearch_train.ablate import run_ablation

    base = tiny_config(captions, tmp_path / "unused", **{"export.int8": True})
    rows = ["T", "T'", "full", "no-kd", "stage1-mse"]
    report = run_ablation(base, rows, parent=tmp_path / "ablation")
    assert [r["row"] for r in report["rows"]] == rows
    runs = {r["row"]: Path(r["run_dir"]) for r in report["rows"]}
    assert runs["T"] == runs["T'"] == runs["full"] == tmp_path / "ablation" / "base"
    copied = json.loads((runs["no-kd"] / "ablation-run.json").read_text())
    assert {"stage1", "stage1-image", "finetune_teacher"} <= set(copied["copied_from_earlier_runs"])
    mse = json.loads((runs["stage1-mse"] / "ablation-run.json").read_text())
    assert "finetune_teacher" in mse["copied_from_earlier_runs"]
    assert "stage1" not in mse["copied_from_earlier_runs"]
    a = _state(runs["full"] / "stage1" / "model.pt")
    assert _same(a, _state(runs["no-kd"] / "stage1" / "model.pt"), "visual.")
    assert not _same(a, _state(runs["stage1-mse"] / "stage1" / "model.pt"), "visual.")
    saved = json.loads((runs["no-kd"] / "config.json").read_text())
    assert saved["stage2"]["kd"] is False and saved["export"]["install"] is False
    assert not (tmp_path / "ablation" / "base" / "bundles" / "tiny-student-int8").exists()
    table = (tmp_path / "ablation" / "ablation.md").read_text()
    assert table.count("\n| ") == 1 + len(rows) and "w/o KD" in table
    for row in report["rows"]:
        assert 0 <= row["eval"]["t2i_R@1"] <= 100 and row["eval"]["disk_mb"] > 0
    again = run_ablation(base, rows, parent=tmp_path / "ablation")  # finished: nothing reruns
    # speeds are timed again (in turn, best of N) by each call
    speeds = {"images_per_s", "texts_per_s", "query_ms_p50", "query_ms_p95"}

    def recalls(result: dict) -> list[dict]:
        return [{k: v for k, v in r["eval"].items() if k not in speeds} for r in result["rows"]]

    assert recalls(again) == recalls(report)
    assert again["train_seconds"] == report["train_seconds"]
