"""Ablation runner: each row of a MoTIS-style table (Tables 1-3) as a variant of one base
recipe, in its own run directory under one parent, measured on ``eval_split``.

Rows whose configs agree on what a group of phases depends on reuse that group: the finished
phase folders (``stage1*``, ``finetune_teacher*``) and the ``cache/`` of an earlier run are
copied into the new run directory before it starts (caches and finished phases are keyed by
the run directory, so a copy is only made when the relevant config sections are equal). T and
T' are measured once, from the base run. Students are exported in float32 (no int8 step).
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from photosearch_train import api
from photosearch_train.config import ConfigError, RecipeConfig, from_dict
from photosearch_train.data import load_pairs
from photosearch_train.device import setup
from photosearch_train.export import export_bundle
from photosearch_train.files import save_json
from photosearch_train.report import measure_bundle, measure_speeds, query_latency
from photosearch_train.stages.export import prune_student_vocab
from photosearch_train.workspace import Workspace

TEACHER, TUNED, STUDENT = "teacher T", "teacher T'", "student S"


@dataclass(frozen=True)
class Row:
    """One table row: a label, the overrides (dotted keys) on the base config, which model of
    that run it reports, and the run directory name (rows with equal overrides share one)."""

    label: str
    run: str
    model: str = STUDENT
    overrides: dict[str, Any] = field(default_factory=dict)


NO_HN = {"stage2.hard_negatives": 0, "stage2.text_hard_negatives": False}
ROWS: dict[str, Row] = {
    "T": Row("teacher T (zero-shot)", "base", TEACHER),
    "T'": Row("teacher T' (fine-tuned)", "base", TUNED),
    "baseline": Row(
        "student, InfoNCE only (no stage 1, no KD, no HN)",
        "baseline",
        overrides={"stage1.enabled": False, "stage2.kd": False, **NO_HN},
    ),
    "full": Row("student, full recipe", "base"),
    "no-stage1": Row("w/o stage 1", "no-stage1", overrides={"stage1.enabled": False}),
    "stage1-mse": Row("stage 1 with MSE", "stage1-mse", overrides={"stage1.loss": "mse"}),
    "stage1-infonce": Row(
        "stage 1 with inter-modal InfoNCE", "stage1-infonce", overrides={"stage1.loss": "infonce"}
    ),
    "no-sf": Row("w/o SF (joint stage 2)", "no-sf", overrides={"stage2.sequential": False}),
    "no-kd": Row("w/o KD", "no-kd", overrides={"stage2.kd": False}),
    "no-hn": Row("w/o HN", "no-hn", overrides=NO_HN),
    "no-kd-hn": Row("w/o KD + HN", "no-kd-hn", overrides={"stage2.kd": False, **NO_HN}),
    # Noise: the full recipe again with other seeds (batch order, init of new layers)
    "full-seed1": Row("student, full recipe, seed 1", "seed1", overrides={"seed": 1}),
    "full-seed2": Row("student, full recipe, seed 2", "seed2", overrides={"seed": 2}),
    # Rows of the "teacher" student recipe (student.image_tower = teacher)
    "head-no-kd": Row(
        "w/o KD (head fit: InfoNCE only)", "head-no-kd", overrides={"stage2.kd": False}
    ),
    "head-no-crops": Row(
        "w/o crop distillation (image head only)",
        "head-no-crops",
        overrides={"stage2.crop_optim.epochs": 0},
    ),
    "head-no-extra-T'": Row(
        "teacher T' w/o Lite0 pooled features in the head",
        "head-no-extra",
        TUNED,
        {"finetune_teacher.head_extra": False},
    ),
    "head-no-extra": Row(
        "student w/o Lite0 pooled features in the heads",
        "head-no-extra",
        overrides={"finetune_teacher.head_extra": False},
    ),
}
TRUNCATED_ROWS = (
    "T",
    "T'",
    "baseline",
    "full",
    "no-stage1",
    "stage1-mse",
    "stage1-infonce",
    "no-sf",
    "no-kd",
    "no-hn",
    "no-kd-hn",
)
HEAD_ROWS = (
    "T",
    "T'",
    "full",
    "head-no-crops",
    "head-no-kd",
    "head-no-extra-T'",
    "head-no-extra",
)

# Phase groups that can be copied between runs, and the config sections each depends on
# (besides the data/seed/selection keys every phase depends on).
GROUPS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "cache": (("cache",), ("teacher", "student", "finetune_teacher")),
    "stage1": (("stage1", "stage1-image", "stage1-text"), ("teacher", "student", "stage1")),
    "finetune_teacher": (
        (
            "finetune_teacher",
            "finetune_teacher-image",
            "finetune_teacher-text",
            "finetune_teacher-joint",
            "finetune_teacher-head",
        ),
        ("teacher", "finetune_teacher"),
    ),
}
NOT_RESULTS = {"out_dir", "export", "progress", "eval_split", "max_eval_images", "num_workers"}
NOT_RESULTS |= {"checkpoint_every", "teacher", "student", "stage1", "finetune_teacher", "stage2"}


def default_rows(config: RecipeConfig) -> tuple[str, ...]:
    return HEAD_ROWS if config.student.image_tower == "teacher" else TRUNCATED_ROWS


def row_config(base: RecipeConfig, parent: Path, row: Row) -> RecipeConfig:
    """The base config with the row's overrides, its own out_dir, never installed, fp32."""
    data = base.to_dict()
    for key, value in row.overrides.items():
        node = data
        *parents, leaf = key.split(".")
        for part in parents:
            node = node[part]
        node[leaf] = value
    data["out_dir"] = str(parent / row.run)
    data["export"] |= {"install": False, "int8": False}
    return from_dict(RecipeConfig, data)


def group_key(config: RecipeConfig, group: str) -> str:
    data = config.to_dict()
    shared = {k: v for k, v in data.items() if k not in NOT_RESULTS}
    return json.dumps([shared, [data[s] for s in GROUPS[group][1]]], sort_keys=True)


def _finished(folder: Path) -> bool:
    """A phase folder is finished with done.json; a stage folder with model.pt."""
    return (folder / "done.json").is_file() or (folder / "model.pt").is_file()


def reuse_phases(config: RecipeConfig, earlier: Sequence[RecipeConfig]) -> list[str]:
    """Copy finished phase groups (and caches) from earlier runs with equal keys into
    ``config.out_dir``; returns what was copied. Checkpoints (last.pt, best.pt) are left out."""
    target, copied = Path(config.out_dir), []
    for group, (folders, _) in GROUPS.items():
        key = group_key(config, group)
        for other in earlier:
            source = Path(other.out_dir)
            if group_key(other, group) != key or source == target:
                continue
            present = [source / f for f in folders if (source / f).is_dir()]
            if group == "cache":
                for file in sorted((source / "cache").glob("*")) if present else []:
                    dest = target / "cache" / file.name
                    if file.is_file() and not dest.exists():
                        dest.parent.mkdir(parents=True, exist_ok=True)
                        shutil.copyfile(file, dest)
                        copied.append(f"cache/{file.name}")
                continue
            if not present or not all(_finished(f) for f in present):
                continue
            for folder in present:
                dest = target / folder.name
                if not dest.exists():
                    ignore = shutil.ignore_patterns("last.pt", "best.pt", "*.tmp")
                    shutil.copytree(folder, dest, ignore=ignore)
                    copied.append(folder.name)
            break
    return copied


def measure(config: RecipeConfig, model: str) -> dict:
    """Export ``model`` (T, T' or the student) of a finished run as a float32 bundle and
    measure it on ``eval_split`` (cached in the run directory as ablation-<model>.json)."""
    out = Path(config.out_dir)
    slug = {TEACHER: "teacher", TUNED: "teacher-ft", STUDENT: "student"}[model]
    result_file = out / f"ablation-{slug}.json"
    if result_file.is_file():
        return json.loads(result_file.read_text(encoding="utf-8"))
    ws = Workspace(config, setup())
    dual = {TEACHER: ws.teacher, TUNED: ws.finetuned_teacher, STUDENT: ws.student}[model]()
    if model == STUDENT and config.export.prune_vocab:
        dual.provenance["vocabulary"] = prune_student_vocab(ws, dual)
    dual.name = f"{config.export.name}-{slug}"
    bundle = export_bundle(
        dual,
        out / "bundles" / dual.name,
        description=f"MoTIS-style ablation run {out.name}: {model}",
        provenance={"recipe": config.to_dict()},
    )
    pairs = load_pairs(Path(config.captions), config.eval_split, config.max_eval_images)
    result = measure_bundle(bundle, pairs)
    save_json(result_file, result)
    return result


def run_ablation(
    base: RecipeConfig, rows: Sequence[str] | None = None, parent: Path | None = None
) -> dict:
    """Run every row (see ROWS; default: the recipe's own set) under ``parent`` (default the
    base out_dir), reusing identical finished phases; writes ablation.json and ablation.md."""
    if not base.captions:
        raise ConfigError(
            "the ablation table measures recall on captioned photos: pass --captions FILE"
        )
    names = list(rows or default_rows(base))
    unknown = [n for n in names if n not in ROWS]
    if unknown:
        raise ValueError(f"unknown ablation rows {unknown}; choose from {', '.join(ROWS)}")
    parent = Path(parent or base.out_dir)
    parent.mkdir(parents=True, exist_ok=True)
    base.save(parent / "base-config.json")
    runs: dict[str, RecipeConfig] = {}
    seconds: dict[str, float] = {}
    for name in names:
        row = ROWS[name]
        if row.run in runs:
            continue
        config = row_config(base, parent, row)
        note_file = Path(config.out_dir) / "ablation-run.json"
        earlier = list(runs.values())
        runs[row.run] = config
        students = any(ROWS[n].run == row.run and ROWS[n].model == STUDENT for n in names)
        wanted = ("stage1", "finetune-teacher", "stage2") if students else ("finetune-teacher",)
        note = json.loads(note_file.read_text(encoding="utf-8")) if note_file.is_file() else {}
        if note and set(wanted) <= set(note.get("stages", wanted)):
            seconds[row.run] = note["train_seconds"]  # trained by an earlier call: re-entering
            continue  # finished stages still recomputes some embeddings (minutes)
        copied = reuse_phases(config, earlier)
        started = time.time()
        for stage in wanted:
            api.run_stage(config, stage)
        seconds[row.run] = round(time.time() - started, 1)
        note = {
            "copied_from_earlier_runs": copied,
            "stages": wanted,
            "train_seconds": seconds[row.run],
        }
        save_json(note_file, note)
    results = []
    for name in names:
        row = ROWS[name]
        started = time.time()
        scores = measure(runs[row.run], row.model)
        results.append(
            {
                "row": name,
                "label": row.label,
                "model": row.model,
                "run_dir": runs[row.run].out_dir,
                "overrides": row.overrides,
                "eval": scores,
                "measure_seconds_this_call": round(time.time() - started, 1),
            }
        )
    if base.export.speed_rounds > 1 and results:
        # One pass per model while rows were trained hours apart is not comparable: time all
        # the table's bundles again, in turn, best of N (see report.measure_speeds).
        pairs = load_pairs(Path(base.captions), base.eval_split, base.max_eval_images)
        bundles = {r["row"]: Path(r["eval"]["bundle"]) for r in results}
        speeds = measure_speeds(bundles, pairs.images, pairs.captions, base.export.speed_rounds)
        for r in results:
            r["eval"] = {**r["eval"], **speeds[r["row"]]}
    report = {
        "eval_split": base.eval_split,
        "base_config": base.to_dict(),
        "train_seconds": seconds,
        "rows": results,
    }
    (parent / "ablation.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    (parent / "ablation.md").write_text(to_markdown(report), encoding="utf-8")
    return report


def to_markdown(report: dict) -> str:
    lines = [
        f"# Ablation on `{report['eval_split']}`",
        "",
        "| row | t2i R@1 | R@5 | R@10 | i2t R@1 | R@5 | R@10 | R-sum | disk MB | img/s | txt/s "
        "| query ms p50 / p95 |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report["rows"]:
        ev = r["eval"]
        lines.append(
            f"| {r['label']} | {ev['t2i_R@1']:.1f} | {ev['t2i_R@5']:.1f} | {ev['t2i_R@10']:.1f} "
            f"| {ev['i2t_R@1']:.1f} | {ev['i2t_R@5']:.1f} | {ev['i2t_R@10']:.1f} "
            f"| {ev['rsum']:.1f} | {ev['disk_mb']:.1f} | {ev['images_per_s']:.0f} "
            f"| {ev['texts_per_s']:.0f} | {query_latency(ev)} |"
        )
    return "\n".join(lines) + "\n"
