"""``photosearch train ...``: the entry point of group ``photosearch.commands``.

Registration imports only argparse-level code; torch loads inside the handlers, so the
everyday app never pays for it. The same parser serves ``python -m photosearch_train`` (e.g.
under ``torchrun --nproc_per_node N -m photosearch_train stage2 ...`` for multi-GPU DDP).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from photosearch_train.config import builtin_recipes, load_config
from photosearch_train.results import StageResult

DISTIL_RECIPE = "distil-bundle"  # --teacher-bundle without --recipe / --config
STAGE_HELP = {
    "stage1": "task-agnostic distillation on unpaired images and texts (L_v2v, L_t2t)",
    "finetune-teacher": "fine-tune the teacher on paired captions, tower by tower (T -> T')",
    "stage2": "fine-tune the student: InfoNCE + KD + corpus hard negatives, tower by tower",
    "export": "export T, T' and the student as bundles, measure them, install the student",
    "run-all": "every stage in order (resumes finished stages and phases)",
    "ablate": "run the ablation rows (variants of --config) under --out and tabulate them",
}


def register(subparsers, common_parent: argparse.ArgumentParser) -> None:  # noqa: ANN001
    train = subparsers.add_parser(
        "train",
        parents=[common_parent],
        help="train a smaller, faster model by distillation (needs torch)",
        description="MoTIS-style two-stage compression of the default model into a student "
        "bundle. Each stage resumes where it stopped; see docs/training.md.",
    )
    stages = train.add_subparsers(dest="train_command", metavar="STAGE")
    for name, text in STAGE_HELP.items():
        parser = stages.add_parser(name, parents=[common_parent], help=text, description=text)
        add_recipe_options(parser, name)
        parser.set_defaults(handler=_handler(name))


def add_recipe_options(parser: argparse.ArgumentParser, stage: str = "") -> None:
    if stage == "ablate":
        parser.add_argument(
            "--rows",
            metavar="ROW,...",
            help="comma-separated ablation rows (default: the recipe's set; see "
            "photosearch_train.ablate.ROWS)",
        )
    parser.add_argument(
        "--recipe",
        metavar="NAME",
        help="start from a built-in recipe (then --config, then --set on top): "
        + "; ".join(f"{name}: {text}" for name, text in _recipes().items()),
    )
    parser.add_argument(
        "--config",
        type=Path,
        metavar="JSON",
        help="recipe config file (default: built-in defaults, or --recipe's)",
    )
    parser.add_argument(
        "--captions",
        metavar="JSONL",
        help="paired training data: a captions.jsonl with train and val splits "
        "(config key captions); without it, --recipe photos-144 trains on --images alone",
    )
    parser.add_argument(
        "--images",
        metavar="DIR",
        help="unpaired photos for distillation: the library you will search (the student "
        "comes closest to the teacher on photos it was distilled on; config key "
        "stage1.images; default: the train split's photos; without --captions a tenth of "
        "them, up to 100, is held out to check the student)",
    )
    parser.add_argument(
        "--teacher-bundle",
        metavar="NAME|PATH",
        help="distil an installed model bundle (its name, or a bundle folder), run through "
        "the app's ONNX runtime (config keys teacher.kind=onnx, teacher.bundle); without "
        f"--recipe or --config, uses recipe {DISTIL_RECIPE}",
    )
    parser.add_argument(
        "--texts",
        metavar="FILE",
        help="your own texts (one per line) for the text student, added to the shipped "
        "COCO caption corpus when stage1.corpus is on (config key stage1.texts)",
    )
    parser.add_argument(
        "--out",
        metavar="DIR",
        help="run directory (config key out_dir; default: training/EXPORT_NAME in the user "
        "data folder, or under $PHOTOSEARCH_TRAINING); rerunning with the same DIR resumes",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key, dotted, value as JSON "
        "(e.g. --set stage2.hard_negatives=0); repeatable",
    )
    parser.add_argument(
        "--print-config", action="store_true", help="print the resolved config and stop"
    )


def _recipes() -> dict[str, str]:
    return builtin_recipes()


def parse_overrides(items: list[str]) -> dict[str, object]:
    overrides: dict[str, object] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep:
            raise argparse.ArgumentTypeError(f"--set needs KEY=VALUE, got {item!r}")
        try:
            overrides[key.strip()] = json.loads(raw)
        except ValueError:
            overrides[key.strip()] = raw
    return overrides


def _handler(stage: str):  # noqa: ANN202
    def handle(args: argparse.Namespace) -> int:
        overrides = parse_overrides(args.set)
        for option, key in (
            ("out", "out_dir"),
            ("captions", "captions"),
            ("images", "stage1.images"),
            ("texts", "stage1.texts"),
            ("teacher_bundle", "teacher.bundle"),
        ):
            if getattr(args, option):
                overrides[key] = getattr(args, option)
        recipe = args.recipe
        if args.teacher_bundle:
            overrides["teacher.kind"] = "onnx"
            overrides["teacher.bundle"] = _teacher_bundle(args)
            if not recipe and args.config is None:
                recipe = DISTIL_RECIPE
        if getattr(args, "models_dir", None):
            overrides.setdefault("export.models_dir", str(args.models_dir))
        config = load_config(args.config, overrides, recipe)
        if args.print_config:
            print(config.to_json())
            return 0
        if stage == "ablate":
            from photosearch_train.ablate import run_ablation, to_markdown

            rows = [r.strip() for r in args.rows.split(",")] if args.rows else None
            print(to_markdown(run_ablation(config, rows)))
            return 0
        from photosearch_train import api  # imports torch

        result = api.run_recipe(config) if stage == "run-all" else api.run_stage(config, stage)
        print(json.dumps(_summary(result), indent=2, default=str))
        return 0

    return handle


def _teacher_bundle(args: argparse.Namespace) -> str:
    """--teacher-bundle as given, or, when it names a bundle installed in the global
    --models-dir (not a folder here), that bundle's path: the run then reads the teacher the
    user named, not a same-named one in the default models folder."""
    name, models_dir = args.teacher_bundle, getattr(args, "models_dir", None)
    if models_dir and not Path(name).expanduser().is_dir() and (Path(models_dir) / name).is_dir():
        return str((Path(models_dir) / name).resolve())
    return name


def _summary(result: StageResult | dict) -> dict:
    """What the CLI prints: a stage's result, or the headline of an export report."""
    if isinstance(result, StageResult):
        return result.to_dict()
    if "models" not in result:  # run-all without export: results by stage
        return {stage: _summary(value) for stage, value in result.items()}
    return {
        "installed": result.get("installed"),
        "int8": result.get("int8", {}).get("decision"),
        "report": result.get("report_files"),
        "eval": {
            k: {m: round(v, 2) for m, v in d["eval"].items() if isinstance(v, float)}
            for k, d in result["models"].items()
        },
    }
