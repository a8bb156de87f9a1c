"""The ``photosearch.extractors`` entry point of the built-in OCR: RapidOCR.

``rapidocr-onnxruntime`` ships the PP-OCRv4 detection and recognition ONNX models in its wheel
and runs them on the ONNX Runtime the app already uses (no torch, no download). Reading a photo
costs two steps: a gate runs the detection model on the photo shrunk to ``GATE_SIDE`` pixels,
and only where it finds a text region does the full pass (detection at RapidOCR's own size,
then recognition of each region) run. Most photos have no text, so most cost the gate alone
(benchmarks/bench_text_in_photos.py measures both and what the gate misses).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import PackageNotFoundError, version
from importlib.util import find_spec
from typing import Any

import numpy as np
from PIL import Image

from photosearch.indexing.extractors import ExtractorUnavailable

INSTALL_HINT = (
    "text in photos needs the ocr extra: pip install 'photosearch[ocr]' and "
    "pip install --no-deps rapidocr-onnxruntime==1.4.4 (scripts/setup.sh does both)"
)
# The gate: the detection model on the photo's long side shrunk to this many pixels.
GATE_SIDE = 320
# The full pass: detection on the photo shrunk to at most FULL_MAX_SIDE on its long side and,
# when smaller, enlarged so its short side is FULL_MIN_SIDE. RapidOCR's own 736 read 74.0% of
# the rendered words on Flickr8k-1k train/val photos (<= 500 px) at 2.4x the cost of 480, which
# read 71.9% (benchmarks/bench_text_in_photos.py).
FULL_MAX_SIDE = 1600
FULL_MIN_SIDE = 480
# Detection regions scored below this are ignored by the gate (RapidOCR's own default: 0.5).
GATE_BOX_THRESHOLD = 0.5
# Recognised lines with a lower confidence are dropped (RapidOCR's default text_score).
MIN_LINE_SCORE = 0.5
# ONNX Runtime threads per model: reading text is background work beside the encoder and the
# app, so it never takes every core.
THREADS = 2
# Bumped when a setting above changes what is read, so every photo is read again.
SETTINGS_VERSION = 2


def _library_version() -> str:
    try:
        return version("rapidocr-onnxruntime")
    except PackageNotFoundError:
        return "unknown"


class RapidOcrExtractor:
    """Reads text with RapidOCR where a cheap detection pass finds some. Not thread-safe on its
    own; ``read_text`` serialises callers."""

    name = "rapidocr"

    def __init__(self, threads: int = THREADS, gate_side: int = GATE_SIDE) -> None:
        if find_spec("rapidocr_onnxruntime") is None or find_spec("cv2") is None:
            raise ExtractorUnavailable(INSTALL_HINT)
        self.version = f"{_library_version()}.{SETTINGS_VERSION}"
        self.threads = threads
        self.gate_side = gate_side
        self.full_min_side = FULL_MIN_SIDE
        self._engine: Any = None
        self._lock = threading.Lock()
        self.gated = 0  # photos the gate looked at
        self.passed = 0  # photos the gate passed to the full pass

    def read_text(self, image: Image.Image) -> str:
        bgr = np.ascontiguousarray(np.asarray(image.convert("RGB"))[:, :, ::-1])
        with self._lock:
            if not self.finds_text(bgr):
                return ""
            self.passed += 1
            return "\n".join(line for line, _score in self.read_lines(bgr))

    def finds_text(self, bgr: np.ndarray) -> bool:
        """The gate: does the detection model find any text region at ``gate_side`` px?"""
        self.gated += 1
        with self._detection_size("min", 0):  # "min" with 0: no enlarging, only shrunk below
            boxes, _ = self.engine.text_det(_shrunk(bgr, self.gate_side))
        return boxes is not None and len(boxes) > 0

    def read_lines(self, bgr: np.ndarray) -> list[tuple[str, float]]:
        """The full pass: every recognised line with its confidence, top to bottom."""
        with self._detection_size("min", self.full_min_side):
            result, _ = self.engine(_shrunk(bgr, FULL_MAX_SIDE), use_cls=False)
        lines = []
        for _box, text, score in result or []:
            text = str(text).strip()
            if text and float(score) >= MIN_LINE_SCORE:
                lines.append((text, float(score)))
        return lines

    @contextmanager
    def _detection_size(self, limit_type: str, side: int) -> Iterator[None]:
        """RapidOCR's detector reads its input size from these attributes on every call (its
        "max" mode ignores the side it is given, so the gate shrinks the photo itself)."""
        detector = self.engine.text_det
        saved = detector.limit_side_len, detector.limit_type
        detector.limit_side_len, detector.limit_type = side, limit_type
        try:
            yield
        finally:
            detector.limit_side_len, detector.limit_type = saved

    @property
    def engine(self) -> Any:
        """RapidOCR's pipeline, loaded on first use (three ONNX sessions, ~0.5 s)."""
        if self._engine is None:
            from rapidocr_onnxruntime import RapidOCR

            self._engine = RapidOCR(
                intra_op_num_threads=self.threads,
                inter_op_num_threads=1,
                det_box_thresh=GATE_BOX_THRESHOLD,
                text_score=MIN_LINE_SCORE,
            )
        return self._engine


def _shrunk(bgr: np.ndarray, long_side: int) -> np.ndarray:
    """``bgr`` with its long side at most ``long_side`` pixels (area-averaged)."""
    import cv2

    height, width = bgr.shape[:2]
    scale = long_side / max(height, width)
    if scale >= 1:
        return bgr
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)
