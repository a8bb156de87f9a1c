"""Stage 2 without captions: the student crop-distilled towards the teacher on the user's
photos (the teacher stays T: nothing is fine-tuned without captions); resumable like any
phase."""

from __future__ import annotations

from photosearch_train.phases import crop_distillation, finished_fit, save_fit
from photosearch_train.results import FitResult, StageResult, crops_summary
from photosearch_train.workspace import STAGE1, STAGE2, Workspace


def run(ws: Workspace, stop_after: int | None = None) -> StageResult:
    """The fresh "teacher" student (identity head), or the stage-1 truncated student, learns
    T's vectors of crops of the photos; saved as ``stage2``."""
    done = finished_fit(ws.out / STAGE2)
    if done is not None:
        return StageResult(STAGE2, {"student": done})
    teacher = ws.finetuned_teacher()  # T itself: nothing is fine-tuned without captions
    truncated = ws.config.student.image_tower != "teacher"
    student = ws.student(STAGE1) if truncated else ws.student(fresh=True)
    crops = None
    if ws.config.stage2.crop_optim.epochs > 0:
        phase = crop_distillation(ws, student, teacher, None, stop_after)
        if not phase.finished:
            return StageResult(STAGE2, {"crops": phase})
        crops = crops_summary(phase)
    result = FitResult(
        STAGE2,
        crops=crops,
        photos=len(ws.unpaired_images()),
        held_out_photos=len(ws.held_out_photos),
    )
    save_fit(ws, STAGE2, student, result)
    return StageResult(STAGE2, {"student": result})
