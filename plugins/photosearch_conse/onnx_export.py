"""A tower as the ONNX graph a bundle holds: the one export the ConSE build and the training
plugin share, so both write what the app's runtime reads.

Image towers: ``image`` [batch, 3, size, size] -> ``embedding`` [batch, dim]. Text towers:
``input_ids`` and ``attention_mask`` [batch, sequence] -> ``embedding`` [batch, dim]. Batch
(and sequence) sizes stay dynamic; the legacy TorchScript exporter at opset 17, whose output
every supported ONNX Runtime loads. Needs torch (import this module only to export).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import nn

ONNX_OPSET = 17


def export_metadata() -> dict[str, object]:
    """What a bundle's provenance records about the export (torch version, opset)."""
    return {"torch": torch.__version__.split("+")[0], "opset": ONNX_OPSET}


@contextmanager
def _quiet_export() -> Iterator[None]:
    """Silence the legacy exporter's expected chatter (its deprecation notice, and the note
    that the reversed Slice it emits for F.pad cannot be constant-folded)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export.*")
        warnings.filterwarnings("ignore", message=".*Only steps=1 can be constant folded.*")
        warnings.filterwarnings("ignore", message="The feature will be removed")
        yield


def export_image_tower(module: nn.Module, size: int, path: Path) -> None:
    """Write ``module`` (pixels -> unit vectors) to ``path``, traced on a batch of 2."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with _quiet_export(), torch.no_grad():
        torch.onnx.export(
            module,
            (torch.zeros(2, 3, size, size),),
            str(path),
            dynamo=False,
            opset_version=ONNX_OPSET,
            input_names=["image"],
            output_names=["embedding"],
            dynamic_axes={"image": {0: "batch"}, "embedding": {0: "batch"}},
            do_constant_folding=True,
        )


def export_text_tower(
    module: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor, path: Path
) -> None:
    """Write ``module`` (ids + mask -> unit vectors) to ``path``, traced on the example
    batch given (two texts of different lengths, padded, keep the mask's path in the graph)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with _quiet_export(), torch.no_grad():
        torch.onnx.export(
            module,
            (input_ids, attention_mask),
            str(path),
            dynamo=False,
            opset_version=ONNX_OPSET,
            input_names=["input_ids", "attention_mask"],
            output_names=["embedding"],
            dynamic_axes={
                "input_ids": {0: "batch", 1: "sequence"},
                "attention_mask": {0: "batch", 1: "sequence"},
                "embedding": {0: "batch"},
            },
            do_constant_folding=True,
        )
