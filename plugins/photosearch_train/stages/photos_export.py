"""The export stage of a run on photos alone: teacher and student exported as bundles and
measured on the held-out photos (cosine to the teacher, size, speed); int8 kept only within
``export.int8_min_cosine`` of the fp32 student's vectors (its image graph static int8 where
that is close and faster: photosearch_train.static_int8); the chosen bundle installed."""

from __future__ import annotations

from photosearch_train.export import (
    export_bundle,
    install_chosen,
    quantize_as_configured,
    teacher_reference,
)
from photosearch_train.metrics import mean_cosine
from photosearch_train.onnx_teacher import onnx_bundle
from photosearch_train.photos_only import sample_queries
from photosearch_train.report import bundle_vectors, disk_mb, measure_speeds, write_report
from photosearch_train.static_int8 import static_visual_as_configured
from photosearch_train.workspace import Workspace


def run(ws: Workspace) -> dict:
    """Export teacher and student; measure both on the held-out photos (cosine to the
    teacher, size, speed); keep int8 only within ``export.int8_min_cosine``; install."""
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
            ws.student(),
            bundles_dir / ex.name,
            "photos-only training run: student",
            {**provenance, **teacher_reference(c.teacher)},
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
        report["int8_visual"] = static_visual_as_configured(
            chosen, q, ws.training_photos(), photos, ex
        )
        bundles["student S int8"] = q
        vectors["student S int8"] = bundle_vectors(q, photos, queries)
        fp32, int8 = vectors["student S"], vectors["student S int8"]
        image_cos, text_cos = mean_cosine(int8[0], fp32[0]), mean_cosine(int8[1], fp32[1])
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
                "cos_to_teacher": mean_cosine(vectors[key][0], vectors["teacher T"][0]),
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
