"""The Python API (what the CLI and, later, the GUI in a separate process call).

    from photosearch_train.api import run_recipe
    from photosearch_train.config import load_config
    report = run_recipe(load_config(Path("recipe.json")))

Everything is resumable: a stage or phase already finished in ``out_dir`` is loaded, not rerun.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

from photosearch.errors import PhotosearchError
from photosearch_train.config import ConfigError, RecipeConfig
from photosearch_train.device import seed_everything, setup
from photosearch_train.results import StageResult
from photosearch_train.stages import (
    export,
    finetune_teacher,
    photos_export,
    photos_student,
    stage1,
    stage2,
    student_head,
)
from photosearch_train.workspace import (
    FINETUNE_TEACHER,
    HEAD_STAGE,
    STAGE1,
    STAGE2,
    Workspace,
    model_file,
)

# A stage's result; the export stage's is the run's report (the JSON written as report.json)
Result = StageResult | dict

STAGES = ("stage1", "finetune-teacher", "stage2", "export")


class StageOrderError(PhotosearchError):
    """A stage was asked for before a stage it builds on had finished in the run directory
    (it would otherwise start from untrained weights without a word)."""


def check_prerequisites(config: RecipeConfig, stage: str) -> None:
    """Raise StageOrderError when ``stage`` builds on a stage not finished in ``out_dir``."""
    out, ft = Path(config.out_dir), config.finetune_teacher
    needs: list[tuple[str, Path]] = []
    if stage == "stage2":
        if config.student.image_tower != "teacher":
            needs.append(("stage1", model_file(out, STAGE1)))
        if ft.enabled and ft.towers:
            needs.append(("finetune-teacher", model_file(out, FINETUNE_TEACHER)))
        if ft.enabled and ft.head:
            needs.append(("finetune-teacher", model_file(out, HEAD_STAGE)))
    elif stage == "export" and config.export.teacher_only:
        if not ft.enabled or not (ft.towers or ft.head):
            raise ConfigError(
                "export.teacher_only exports the fine-tuned teacher T', which this recipe does "
                "not make (it needs --captions, finetune_teacher.enabled and towers or head)"
            )
        if ft.towers:
            needs.append(("finetune-teacher", model_file(out, FINETUNE_TEACHER)))
        if ft.head:
            needs.append(("finetune-teacher", model_file(out, HEAD_STAGE)))
    elif stage == "export":
        needs.append(("stage2", model_file(out, STAGE2)))
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


StageRunner = Callable[[Workspace, int | None], StageResult]
ExportRunner = Callable[[Workspace], dict]
RunKind = Literal["truncated", "teacher", "photos"]
RUN_KINDS: tuple[RunKind, ...] = ("truncated", "teacher", "photos")

# Which module runs a stage, by kind of run: a truncated student, T's own towers as the student
# ("teacher"), or photos alone without captions. Every stage module is a leaf: it imports no
# other stage, so this table is the one place that knows them all.
TRAINING_STAGES: dict[str, dict[RunKind, StageRunner]] = {
    "stage1": dict.fromkeys(RUN_KINDS, stage1.run),
    "finetune-teacher": dict.fromkeys(RUN_KINDS, finetune_teacher.run),
    "stage2": {"truncated": stage2.run, "teacher": student_head.run, "photos": photos_student.run},
}
EXPORTS: dict[RunKind, ExportRunner] = {
    "truncated": export.run,
    "teacher": export.run,
    "photos": photos_export.run,
}


def run_kind(ws: Workspace) -> RunKind:
    """The kind of run, which picks the stage modules (see TRAINING_STAGES)."""
    if not ws.paired:
        return "photos"
    return "teacher" if ws.config.student.image_tower == "teacher" else "truncated"


def run_stage(config: RecipeConfig, stage: str, stop_after: int | None = None) -> Result:
    """Run one stage (see STAGES); returns its result (the export stage: the run's report)."""
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; choose from {', '.join(STAGES)}")
    check_same_run(config)
    check_prerequisites(config, stage)
    ctx = setup()
    seed_everything(config.seed)
    ws = Workspace(config, ctx)
    if ctx.is_main:
        config.save(ws.out / "config.json")
    if stage != "export":
        return TRAINING_STAGES[stage][run_kind(ws)](ws, stop_after)
    return EXPORTS[run_kind(ws)](ws) if ctx.is_main else {}


def run_recipe(config: RecipeConfig, stages: Sequence[str] = STAGES) -> Result:
    """Every stage in order (with ``export.teacher_only``, those T' needs); returns the
    export report (or, without export, the results of the stages run, by stage)."""
    if config.export.teacher_only:  # T' alone: no student to train
        stages = [stage for stage in stages if stage not in ("stage1", "stage2")]
    results = {stage: run_stage(config, stage) for stage in stages}
    return results.get("export") or results
