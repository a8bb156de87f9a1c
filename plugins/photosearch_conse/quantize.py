"""The default bundle's text tower in int8: a desktop app holds it for as long as it runs.

MiniLM-L6 in float32 is 90 MB of weights, about 100 MB of the app's resident memory once its
ONNX Runtime session has run; with its MatMul weights and its word-embedding table (Gather) in
dynamic int8, per output channel, it is 23 MB on disk and about 41 MB resident, and a query
encodes as fast or faster (benchmarks/bench_app_memory.py). Text->image retrieval is unchanged
within the noise (Flickr8k-1k R@1/5/10, int8 vs float32: val 23.2/56.0/69.8 vs 23.0/56.2/70.2,
train 10.7/27.5/38.2 vs 10.9/27.5/38.3; see the plugin's README).

The image tower stays float32: it makes the vectors a library stores, and EfficientNet's
convolutions gain little from dynamic int8 on CPUs. Needs onnx (the ``build-models`` extra).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

QUANTISED_OPS = ("MatMul", "Gemm", "Gather")
# The least cosine between a float32 query vector and its int8 twin the build accepts (the
# default model measures 0.989 at worst on Flickr8k val captions, 0.994 on average).
MIN_AGREEMENT = 0.98


def quantize_text_tower(source: Path, target: Path) -> None:
    """Write ``source`` (a float32 text graph) to ``target`` with int8 weights."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    target.parent.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger()
    root.addFilter(_no_preprocessing_advice)
    try:
        quantize_dynamic(
            str(source),
            str(target),
            op_types_to_quantize=list(QUANTISED_OPS),
            weight_type=QuantType.QInt8,
            per_channel=True,
        )
    finally:
        root.removeFilter(_no_preprocessing_advice)


def _no_preprocessing_advice(record: logging.LogRecord) -> bool:
    """ONNX Runtime advises shape-inference pre-processing on every call (a root-logger
    warning a user building the model need not read): it serves static quantisation."""
    return "pre-processing before quantization" not in record.getMessage()


def text_agreement(first: Path, second: Path, tokenizer: Path, texts: Sequence[str]) -> float:
    """The least cosine between the two text graphs' vectors for ``texts`` (each run alone,
    as the app encodes a query)."""
    import onnxruntime as ort
    from tokenizers import Tokenizer

    tokens = Tokenizer.from_file(str(tokenizer))
    sessions = [
        ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        for path in (first, second)
    ]
    worst = 1.0
    for text in texts:
        encoding = tokens.encode(text)
        feeds = {
            "input_ids": np.asarray([encoding.ids], np.int64),
            "attention_mask": np.asarray([encoding.attention_mask], np.int64),
        }
        a, b = (session.run(None, feeds)[0][0] for session in sessions)
        cosine = float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
        worst = min(worst, cosine)
    return worst
