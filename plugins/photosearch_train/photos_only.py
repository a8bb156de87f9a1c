"""Training on photos alone, without captions: what most users have.

With no paired data there is no T' (the teacher stays as it is), no head fit and no recall to
measure. The student (the teacher's own image tower at a lower resolution) learns the
teacher's image vectors of random crops of the user's photos; a held-out sample of those
photos picks the epoch by the mean cosine between the student's and the teacher's vectors,
and the int8 copy is kept only while its vectors stay within a cosine bound of the fp32
student's. The text tower is the teacher's, so a query gets the teacher's vector: the
student gives the teacher's kind of results at the student's speed.
"""

from __future__ import annotations

import json
import logging
from importlib.resources import files
from pathlib import Path

import numpy as np

from photosearch_train.config import ConfigError, RecipeConfig

PHOTOS_ONLY_RECIPE = "photos-144"
HELD_OUT_FRACTION = 0.1  # of the photos listed, every k-th held out for validation ...
MAX_HELD_OUT = 100  # ... up to this many
MIN_PHOTOS = 10
QUERIES_FILE = "sample_queries.txt"  # package data: queries for text speed and the int8 check

log = logging.getLogger(__name__)


def split_photos(photos: list[Path]) -> tuple[list[Path], list[Path]]:
    """(photos to distil on, held-out photos): every k-th photo of the listing held out, so
    the held-out sample spans the library's folders as the listing does."""
    if len(photos) < MIN_PHOTOS:
        raise ConfigError(
            f"only {len(photos)} readable-looking photos to train on; at least {MIN_PHOTOS} "
            "are needed (a tenth of them is held out to check the student)"
        )
    count = min(MAX_HELD_OUT, max(1, round(len(photos) * HELD_OUT_FRACTION)))
    step = len(photos) / count
    held = {int(i * step) for i in range(count)}
    return (
        [p for i, p in enumerate(photos) if i not in held],
        [photos[i] for i in sorted(held)],
    )


def readable(photos: list[Path]) -> list[Path]:
    """``photos`` less those that cannot be decoded (each reported once): a library's odd
    file must not stop a run, and the held-out photos are read again at every check."""
    from photosearch.errors import UnsupportedImage
    from photosearch.imaging import load_image

    kept = []
    for path in photos:
        try:
            load_image(path)
        except UnsupportedImage as exc:
            log.warning("not holding out %s to check the student: %s", path, exc)
            continue
        kept.append(path)
    if not kept:
        raise ConfigError(f"none of the {len(photos)} photos held out for checking is readable")
    return kept


def check_photos_only(config: RecipeConfig) -> None:
    """Refuse, before any work, the parts of a recipe that learn from captions."""
    needs = []
    # A truncated student learns on photos alone only from an ONNX teacher (stage 1 checked
    # by cosine to the teacher; texts from the shipped corpus).
    if config.student.image_tower != "teacher" and config.teacher.kind != "onnx":
        needs.append("a truncated student (student.image_tower 'truncated')")
    ft = config.finetune_teacher
    if ft.enabled and (ft.towers or ft.head):
        needs.append("fine-tuning the teacher (finetune_teacher.towers / .head)")
    if config.stage2.crop_select != "cos_to_teacher":
        needs.append(f"checkpoints chosen by stage2.crop_select {config.stage2.crop_select!r}")
    if needs:
        raise ConfigError(
            f"this recipe needs captions for {'; '.join(needs)}: pass --captions FILE, or "
            f"train on photos alone with --recipe {PHOTOS_ONLY_RECIPE}"
        )


def sample_queries() -> list[str]:
    """Everyday search queries shipped with the plugin (no user text is needed)."""
    text = (files("photosearch_train") / QUERIES_FILE).read_text(encoding="utf-8")
    return [line.strip() for line in text.splitlines() if line.strip()]


def run_photos_student(ws, stop_after: int | None = None) -> dict:  # noqa: ANN001 - a Workspace
    """Stage 2 without captions: the fresh student (identity head) crop-distilled towards
    the teacher on the photos; resumable like any phase."""
    from photosearch_train.files import save_json
    from photosearch_train.head_stages import run_crop_distillation

    out = ws.out / "stage2"
    if (out / "done.json").is_file():
        return json.loads((out / "done.json").read_text(encoding="utf-8"))
    teacher = ws.finetuned_teacher()  # T itself: nothing is fine-tuned without captions
    truncated = ws.config.student.image_tower != "teacher"
    student = ws.student("stage1") if truncated else ws.student(fresh=True)
    summary: dict = {
        "phase": "stage2",
        "finished": True,
        "photos": len(ws.unpaired_images()),
        "held_out_photos": len(ws.held_out_photos),
    }
    if ws.config.stage2.crop_optim.epochs > 0:
        crops = run_crop_distillation(ws, student, teacher, None, stop_after)
        summary["crops"] = {k: crops.get(k) for k in ("best_val", "steps", "finished")}
        if not crops["finished"]:
            return crops
    if ws.ctx.is_main:
        ws.save("stage2", student)
        save_json(out / "done.json", summary)
    return summary


def run_photos_export(ws) -> dict:  # noqa: ANN001 - a stages.Workspace
    """Export teacher and student; measure both on the held-out photos (cosine to the
    teacher, size, speed); keep int8 only within ``export.int8_min_cosine``; install."""
    from photosearch_train.export import (
        disk_mb,
        export_bundle,
        install_chosen,
        quantize_as_configured,
    )
    from photosearch_train.onnx_teacher import onnx_bundle
    from photosearch_train.report import bundle_vectors, measure_speeds, write_report

    c, ex = ws.config, ws.config.export
    bundles_dir = ws.out / "bundles"
    photos, queries = ws.held_out_photos, sample_queries()
    teacher = ws.teacher()
    teacher.name = f"{ex.name}-teacher"
    provenance = {"recipe": c.to_dict()}
    bundles = {
        "teacher T": onnx_bundle(teacher)
        or export_bundle(
            teacher, bundles_dir / teacher.name, "photos-only training run: teacher", provenance
        ),
        "student S": export_bundle(
            ws.student(), bundles_dir / ex.name, "photos-only training run: student", provenance
        ),
    }
    vectors = {key: bundle_vectors(path, photos, queries) for key, path in bundles.items()}
    report: dict = {
        "name": ex.name,
        "mode": "photos only (no captions)",
        "held_out_photos": len(photos),
        "sample_queries": len(queries),
        "config": c.to_dict(),
        "models": {},
    }
    chosen = bundles["student S"]
    if ex.int8:
        q = quantize_as_configured(chosen, bundles_dir, ex)
        bundles["student S int8"] = q
        vectors["student S int8"] = bundle_vectors(q, photos, queries)
        fp32, int8 = vectors["student S"], vectors["student S int8"]
        image_cos, text_cos = _mean_cosine(int8[0], fp32[0]), _mean_cosine(int8[1], fp32[1])
        keep = min(image_cos, text_cos) >= ex.int8_min_cosine
        report["int8"] = {
            "image_cos_to_fp32": image_cos,
            "text_cos_to_fp32": text_cos,
            "bound": ex.int8_min_cosine,
            "decision": f"{'kept' if keep else 'rejected'} (mean cosine to the fp32 student: "
            f"photos {image_cos:.4f}, queries {text_cos:.4f}; bound {ex.int8_min_cosine})",
        }
        if keep:
            chosen = q
    speeds = measure_speeds(bundles, photos, queries, max(1, ex.speed_rounds))
    for key, path in bundles.items():
        report["models"][key] = {
            "eval": {
                "cos_to_teacher": _mean_cosine(vectors[key][0], vectors["teacher T"][0]),
                "disk_mb": disk_mb(path),
                "bundle": str(path),
                **speeds[key],
            }
        }
    report["speed"] = f"best of {max(1, ex.speed_rounds)} interleaved passes per model"
    report["installed"] = install_chosen(chosen, ex)
    json_path, md_path = write_report(ws.out, report)
    report["report_files"] = [str(json_path), str(md_path)]
    return report


def _mean_cosine(a: np.ndarray, b: np.ndarray) -> float:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return float((a * b).sum(axis=1).mean())
