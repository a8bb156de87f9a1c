"""How a phase chooses its checkpoints: recall on the val split both ways (R-sum), or, when
training on photos alone, the mean cosine of the student's vectors to the teacher's.

A check is a function of no arguments returning scores (``trainer.Validate``); the builders
here pair a tower being trained with fixed vectors of the other modality, or with the other
tower as it is now.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from torch import nn

from photosearch_train.data import embed_images, embed_texts
from photosearch_train.dual_encoder import DualEncoder
from photosearch_train.metrics import recall_scores
from photosearch_train.photos_only import sample_queries
from photosearch_train.results import Scores
from photosearch_train.trainer import Validate
from photosearch_train.workspace import Workspace

Vectors = Callable[[], np.ndarray]


def recall_check(ws: Workspace, image_vectors: Vectors, text_vectors: Vectors) -> Validate:
    """Val recall of the vectors the two functions give when the check runs."""
    return lambda: recall_scores(text_vectors(), image_vectors(), ws.val)


def val_image_vectors(ws: Workspace, dual: DualEncoder, module: nn.Module) -> Vectors:
    """``module``'s vectors of the val photos, as it is when called."""
    return lambda: embed_images(
        module, ws.val_images(), dual.preprocessing, ws.pixels, ws.ctx.device
    )


def val_text_vectors(ws: Workspace, dual: DualEncoder, module: nn.Module) -> Vectors:
    """``module``'s vectors of the val captions, as it is when called."""
    return lambda: embed_texts(module, dual, ws.val.captions, ws.ctx.device)


def fixed(values: np.ndarray) -> Vectors:
    """Vectors of a frozen tower, computed once."""
    return lambda: values


def both_towers_check(ws: Workspace, dual: DualEncoder) -> Validate:
    """Val recall of ``dual``'s two towers as they are (phases that train both)."""
    return recall_check(
        ws, val_image_vectors(ws, dual, dual.visual), val_text_vectors(ws, dual, dual.textual)
    )


def cosine_checks(
    ws: Workspace, teacher: DualEncoder, student: DualEncoder
) -> tuple[Validate, Validate]:
    """Checks without captions: mean cosine of the student's vectors to the teacher's, of
    the held-out photos (image phase) and of the shipped sample queries (text phase; not in
    the corpus the text tower learns from)."""
    queries = sample_queries()
    photos = ws.held_out_photos
    t_photos = ws.cached_images(teacher, teacher.visual, photos, "T-held-out-img")
    t_queries = ws.cached_texts(teacher, teacher.textual, queries, "T-queries")

    def image_check() -> Scores:
        vectors = embed_images(
            student.visual, photos, student.preprocessing, ws.pixels, ws.ctx.device
        )
        return {"cos_to_teacher": float((vectors * t_photos).sum(axis=1).mean())}

    def text_check() -> Scores:
        vectors = embed_texts(student.textual, student, queries, ws.ctx.device)
        return {"cos_to_teacher": float((vectors * t_queries).sum(axis=1).mean())}

    return image_check, text_check
