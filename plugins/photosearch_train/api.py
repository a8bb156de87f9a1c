"""The Python API (what the CLI and, later, the GUI in a separate process call).

    from photosearch_train.api import run_recipe
    from photosearch_train.config import load_config
    report = run_recipe(load_config(Path("recipe.json")))

Everything is resumable: a stage or phase already finished in ``out_dir`` is loaded, not rerun.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

from photosearch.errors import PhotosearchError
from photosearch_train.config import ConfigError, RecipeConfig

log = logging.getLogger(__name__)

STAGES = ("stage1", "finetune-teacher", "stage2", "export")


class StageOrderError(PhotosearchError):
    """A stage was asked for before a stage it builds on had finished in the run directory
    (it would otherwise start from untrained weights without a word)."""


def check_prerequisites(config: RecipeConfig, stage: str) -> None:
    """Raise StageOrderError when ``stage`` builds on a stage not finished in ``out_dir``."""
    from photosearch_train.head_stages import HEAD_STAGE

    out, ft = Path(config.out_dir), config.finetune_teacher
    needs: list[tuple[str, Path]] = []
    if stage == "stage2":
        if config.student.image_tower != "teacher":
            needs.append(("stage1", out / "stage1" / "model.pt"))
        if ft.enabled and ft.towers:
            needs.append(("finetune-teacher", out / "finetune_teacher" / "model.pt"))
        if ft.enabled and ft.head:
            needs.append(("finetune-teacher", out / HEAD_STAGE / "model.pt"))
    elif stage == "export":
        needs.append(("stage2", out / "stage2" / "model.pt"))
    missing = sorted({name for name, path in needs if not path.is_file()}, key=STAGES.index)
    if missing:
        raise StageOrderError(
            f"'train {stage}' builds on {' and '.join(missing)}, which has not finished in "
            f"{out}: run 'photosearch train {missing[0]}' with the same config first, or "
            "'photosearch train run-all'"
        )


# Keys a run's trained phases and caches do not depend on: they may change between the calls
# that make up one run (e.g. export again with other int8 settings, or without progress bars).
NOT_TRAINED_ON = {"out_dir", "export", "progress", "eval_split", "max_eval_images"}
NOT_TRAINED_ON |= {"num_workers", "checkpoint_every"}


class OtherRunError(PhotosearchError):
    """The run directory holds a run made with other settings, whose caches and finished
    phases this one would silently build on."""


def check_same_run(config: RecipeConfig) -> None:
    """Refuse to continue a run directory whose saved config.json trained on other settings
    (another captions file, recipe or seed); keys only one side knows (a newer plugin's) pass."""
    saved_file = Path(config.out_dir) / "config.json"
    if not saved_file.is_file():
        return
    try:
        saved = json.loads(saved_file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return  # written atomically since the start; an unreadable one predates that
    changed = [
        f"{key}: {old!r} -> {new!r}"
        for key, old, new in _differences(saved, config.to_dict())
        if key.split(".")[0] not in NOT_TRAINED_ON
    ]
    if changed:
        raise OtherRunError(
            f"{config.out_dir} holds a run with other settings ({'; '.join(changed[:4])}"
            f"{'; ...' if len(changed) > 4 else ''}): its caches and finished stages would be "
            "reused as they are. Pass --out NEW_FOLDER for a new run, or delete that folder to "
            "start this one over"
        )


def _differences(old: dict, new: dict, prefix: str = "") -> list[tuple[str, object, object]]:
    out = []
    for key in old.keys() & new.keys():
        a, b = old[key], new[key]
        if isinstance(a, dict) and isinstance(b, dict):
            out += _differences(a, b, f"{prefix}{key}.")
        elif json.dumps(a) != json.dumps(b):  # tuples saved as lists compare equal
            out.append((f"{prefix}{key}", a, b))
    return sorted(out)


def run_stage(config: RecipeConfig, stage: str, stop_after: int | None = None) -> dict:
    """Run one stage (see STAGES); returns its summary."""
    from photosearch_train import stages
    from photosearch_train.device import seed_everything, setup

    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; choose from {', '.join(STAGES)}")
    check_same_run(config)
    check_prerequisites(config, stage)
    ctx = setup()
    seed_everything(config.seed)
    ws = stages.Workspace(config, ctx)
    if ctx.is_main:
        config.save(ws.out / "config.json")
    if stage == "stage1":
        return stages.run_stage1(ws, stop_after)
    if stage == "finetune-teacher":
        return stages.run_finetune_teacher(ws, stop_after)
    if stage == "stage2":
        return stages.run_stage2(ws, stop_after)
    return run_export(ws) if ctx.is_main else {}  # export


def run_recipe(config: RecipeConfig, stages: Sequence[str] = STAGES) -> dict:
    """Every stage in order; returns the export report (or the last stage's summary)."""
    summaries = {stage: run_stage(config, stage) for stage in stages}
    return summaries.get("export") or summaries


def run_export(ws) -> dict:  # noqa: ANN001 - a stages.Workspace
    """Export teacher, fine-tuned teacher and student; measure them on the same data; keep
    int8 only if val mean recall drops by at most ``export.int8_max_drop`` points; install."""
    from photosearch_train.data import load_pairs
    from photosearch_train.export import export_bundle, install_chosen, quantize_as_configured
    from photosearch_train.head_stages import HEAD_STAGE
    from photosearch_train.onnx_teacher import onnx_bundle
    from photosearch_train.report import (
        mean_recall,
        measure_bundle,
        measure_speeds,
        write_report,
    )

    if not ws.paired:
        from photosearch_train.photos_only import run_photos_export

        return run_photos_export(ws)
    c, ex = ws.config, ws.config.export
    bundles_dir = ws.out / "bundles"
    eval_split = c.eval_split
    try:
        eval_pairs = load_pairs(Path(c.captions), eval_split, c.max_eval_images)
    except ConfigError:
        if eval_split == "val":
            raise
        # A user's own captions often have no test split: report on val (which also chose
        # the checkpoints, so the report says so) rather than fail after hours of training.
        log.warning("%s has no %r split; the report measures the val split", c.captions, eval_split)
        eval_split = "val"
        eval_pairs = load_pairs(Path(c.captions), eval_split, c.max_eval_images)
    duals = {"teacher T": ws.teacher()}
    tuned = [ws.out / "finetune_teacher" / "model.pt", ws.out / HEAD_STAGE / "model.pt"]
    if any(path.is_file() for path in tuned):
        duals["teacher T'"] = ws.finetuned_teacher()
    duals["student S"] = ws.student()
    if ex.prune_vocab:
        duals["student S"].provenance["vocabulary"] = prune_student_vocab(ws, duals["student S"])
    report: dict = {
        "name": ex.name,
        "eval_split": eval_split,
        "eval_images": len(eval_pairs.images),
        "config": c.to_dict(),
        "models": {},
    }
    bundles = {}
    for key, dual in duals.items():
        folder = {
            "teacher T": f"{ex.name}-teacher",
            "teacher T'": f"{ex.name}-teacher-ft",
            "student S": ex.name,
        }[key]
        if key != "student S":
            dual.name = folder
        bundles[key] = onnx_bundle(dual) or export_bundle(
            dual,
            bundles_dir / folder,
            description=f"MoTIS-style training run: {key}",
            provenance={"recipe": c.to_dict()},
        )
        report["models"][key] = {"eval": measure_bundle(bundles[key], eval_pairs)}
    chosen = bundles["student S"]
    if ex.int8:
        fp32_val = measure_bundle(chosen, ws.val)
        q = quantize_as_configured(chosen, bundles_dir, ex)
        q_val = measure_bundle(q, ws.val)
        drop = mean_recall(fp32_val) - mean_recall(q_val)
        keep = drop <= ex.int8_max_drop
        report["int8"] = {
            "val_mean_recall_fp32": mean_recall(fp32_val),
            "val_mean_recall_int8": mean_recall(q_val),
            "drop": drop,
            "bound": ex.int8_max_drop,
            "decision": f"{'kept' if keep else 'rejected'} (val mean R@K drop "
            f"{drop:.2f} vs bound {ex.int8_max_drop})",
        }
        report["models"]["student S int8"] = {"eval": measure_bundle(q, eval_pairs)}
        if keep:
            chosen = q
    if ex.speed_rounds > 1:
        timed = {key: bundles[key] for key in bundles}
        if "student S int8" in report["models"]:
            timed["student S int8"] = bundles_dir / f"{ex.name}-int8"
        for key, speed in measure_speeds(
            timed, eval_pairs.images, eval_pairs.captions, ex.speed_rounds
        ).items():
            report["models"][key]["eval"].update(speed)
        report["speed"] = f"best of {ex.speed_rounds} interleaved passes per model"
    report["installed"] = install_chosen(chosen, ex)
    json_path, md_path = write_report(ws.out, report)
    report["report_files"] = [str(json_path), str(md_path)]
    return report


def prune_student_vocab(ws, student) -> dict:  # noqa: ANN001 - a Workspace, a DualEncoder
    """Shrink the student's vocabulary to the train captions' and stage-1 texts' word pieces
    (see photosearch_train.vocab); rewrites its tokenizer file under ``out_dir/vocab``."""
    from photosearch_train.data import load_texts
    from photosearch_train.vocab import (
        kept_token_ids,
        prune_embedding,
        vocab_size,
        write_pruned_tokenizer,
    )

    texts = list(ws.train.captions)
    if ws.config.stage1.texts:
        texts += load_texts(Path(ws.config.stage1.texts), ws.config.stage1.max_texts)
    source = student.tokenizer_file
    kept = kept_token_ids(source, texts)
    target = ws.out / "vocab" / "tokenizer.json"
    write_pruned_tokenizer(source, target, kept)
    before = vocab_size(source)
    prune_embedding(student.textual, before, kept)
    student.tokenizer_file, student._tokenizer = target, None
    return {"pruned_from": before, "kept": len(kept), "texts": len(texts)}
