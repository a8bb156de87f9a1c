"""The export stage of a run with captions: T, T' and the student exported as bundles and
measured on the same data through the app's runtime; int8 kept only if val mean recall drops
by at most ``export.int8_max_drop`` points (its image graph static int8 where that is close
and faster: photosearch_train.static_int8); the chosen bundle installed; the report written."""

from __future__ import annotations

import logging
from pathlib import Path

from photosearch_train.config import ConfigError
from photosearch_train.data import Pairs, load_pairs, load_texts
from photosearch_train.dual_encoder import DualEncoder
from photosearch_train.export import (
    export_bundle,
    install_chosen,
    quantize_as_configured,
    teacher_reference,
)
from photosearch_train.onnx_teacher import onnx_bundle
from photosearch_train.report import mean_recall, measure_bundle, measure_speeds, write_report
from photosearch_train.static_int8 import static_visual_as_configured
from photosearch_train.vocab import (
    kept_token_ids,
    prune_embedding,
    vocab_size,
    write_pruned_tokenizer,
)
from photosearch_train.workspace import FINETUNE_TEACHER, HEAD_STAGE, Workspace, model_file

log = logging.getLogger(__name__)

TEACHER, TUNED, STUDENT = "teacher T", "teacher T'", "student S"


def run(ws: Workspace) -> dict:
    """Export, measure, choose, install; returns the report (also written as report.json
    and report.md in the run folder)."""
    c, ex = ws.config, ws.config.export
    if ex.teacher_only:
        return _run_tuned_teacher_only(ws)
    bundles_dir = ws.out / "bundles"
    eval_split, eval_pairs = _eval_pairs(ws)
    report: dict = {
        "name": ex.name,
        "eval_split": eval_split,
        "eval_images": len(eval_pairs.images),
        "config": c.to_dict(),
        "models": {},
    }
    folders = {TEACHER: f"{ex.name}-teacher", TUNED: f"{ex.name}-teacher-ft", STUDENT: ex.name}
    bundles = {}
    for key, dual in _models(ws).items():
        if key != STUDENT:
            dual.name = folders[key]
        bundles[key] = onnx_bundle(dual) or export_bundle(
            dual,
            bundles_dir / folders[key],
            description=f"MoTIS-style training run: {key}",
            provenance={
                "recipe": c.to_dict(),
                **(_teacher_of_student(c, folders) if key == STUDENT else {}),
            },
        )
        report["models"][key] = {"eval": measure_bundle(bundles[key], eval_pairs)}
    chosen = bundles[STUDENT]
    if ex.int8:
        chosen = _try_int8(ws, chosen, eval_pairs, report)
    if ex.speed_rounds > 1:
        timed = dict(bundles)
        if f"{STUDENT} int8" in report["models"]:
            timed[f"{STUDENT} int8"] = bundles_dir / f"{ex.name}-int8"
        speeds = measure_speeds(timed, eval_pairs.images, eval_pairs.captions, ex.speed_rounds)
        for key, speed in speeds.items():
            report["models"][key]["eval"].update(speed)
        report["speed"] = f"best of {ex.speed_rounds} interleaved passes per model"
    report["installed"] = install_chosen(chosen, ex)
    json_path, md_path = write_report(ws.out, report)
    report["report_files"] = [str(json_path), str(md_path)]
    return report


def _run_tuned_teacher_only(ws: Workspace) -> dict:
    """``export.teacher_only``: T' exported (fp32) under ``export.name``, measured on the eval
    split, installed; no student. Such a bundle teaches through ``--teacher-bundle``."""
    c, ex = ws.config, ws.config.export
    eval_split, eval_pairs = _eval_pairs(ws)
    tuned = ws.finetuned_teacher()
    tuned.name = ex.name
    bundle = export_bundle(
        tuned,
        ws.out / "bundles" / ex.name,
        description=f"MoTIS-style training run: {TUNED}",
        provenance={"recipe": c.to_dict()},  # no teacher named: T' is not re-ranked by T
    )
    report: dict = {
        "name": ex.name,
        "eval_split": eval_split,
        "eval_images": len(eval_pairs.images),
        "config": c.to_dict(),
        "models": {TUNED: {"eval": measure_bundle(bundle, eval_pairs)}},
        "int8": {"decision": "not tried (export.teacher_only: T' stays fp32)"},
        "installed": install_chosen(bundle, ex),
    }
    json_path, md_path = write_report(ws.out, report)
    report["report_files"] = [str(json_path), str(md_path)]
    return report


def _eval_pairs(ws: Workspace) -> tuple[str, Pairs]:
    """The split the report measures: ``eval_split``, or val when the captions have none."""
    c = ws.config
    try:
        return c.eval_split, load_pairs(Path(c.captions), c.eval_split, c.max_eval_images)
    except ConfigError:
        if c.eval_split == "val":
            raise
    # A user's own captions often have no test split: report on val (which also chose the
    # checkpoints, so the report says so) rather than fail after hours of training.
    log.warning("%s has no %r split; the report measures the val split", c.captions, c.eval_split)
    return "val", load_pairs(Path(c.captions), "val", c.max_eval_images)


def _models(ws: Workspace) -> dict[str, DualEncoder]:
    """T, T' when a fine-tuning stage saved one, and the student (vocabulary pruned when
    ``export.prune_vocab``)."""
    duals = {TEACHER: ws.teacher()}
    tuned = [model_file(ws.out, FINETUNE_TEACHER), model_file(ws.out, HEAD_STAGE)]
    if any(path.is_file() for path in tuned):
        duals[TUNED] = ws.finetuned_teacher()
    duals[STUDENT] = ws.student()
    if ws.config.export.prune_vocab:
        duals[STUDENT].provenance["vocabulary"] = prune_student_vocab(ws, duals[STUDENT])
    return duals


def _try_int8(ws: Workspace, fp32: Path, eval_pairs: Pairs, report: dict) -> Path:
    """Quantise the student; keep int8 if val mean recall drops by at most the bound. Adds
    the decision and the int8 model's figures to ``report``; returns the bundle to install."""
    ex = ws.config.export
    fp32_val = measure_bundle(fp32, ws.val)
    q = quantize_as_configured(fp32, ws.out / "bundles", ex)
    report["int8_visual"] = static_visual_as_configured(
        fp32, q, ws.training_photos(), ws.val_images(), ex
    )
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
    report["models"][f"{STUDENT} int8"] = {"eval": measure_bundle(q, eval_pairs)}
    return q if keep else fp32


def prune_student_vocab(ws: Workspace, student: DualEncoder) -> dict:
    """Shrink the student's vocabulary to the train captions' and stage-1 texts' word pieces
    (see photosearch_train.vocab); rewrites its tokenizer file under ``out_dir/vocab``."""
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


def _teacher_of_student(c, folders: dict[str, str]) -> dict[str, str]:  # noqa: ANN001 - a RecipeConfig
    """The student learnt from the fine-tuned teacher T' this run exports (an ONNX teacher
    cannot be fine-tuned: then from that bundle)."""
    if c.teacher.kind == "onnx":
        return teacher_reference(c.teacher)
    return teacher_reference(c.teacher, folders[TUNED])
