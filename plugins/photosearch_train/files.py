"""Writing a run's files so that a kill, a crash or a full disk never leaves a half-written one.

A training run is resumed by loading what the last one left (caches, checkpoints, ``done.json``
markers), so a truncated file would turn an interrupted run into one that cannot restart.
Every file goes through the core's ``write_atomically``: the target is the old file or the new
one, never a mix.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from photosearch.vectors.atomic_write import write_atomically

__all__ = ["save_array", "save_json", "save_text", "save_torch", "write_atomically"]


def save_array(path: Path, array: np.ndarray) -> Path:
    return write_atomically(path, lambda handle: np.save(handle, array, allow_pickle=False))


def save_text(path: Path, text: str) -> Path:
    return write_atomically(path, lambda handle: handle.write(text.encode("utf-8")))


def save_json(path: Path, data: Any) -> Path:
    return save_text(path, json.dumps(data, indent=2) + "\n")


def save_torch(path: Path, obj: Any) -> Path:
    import torch  # here, not at the top: data.py (and so report.py) imports this without torch

    return write_atomically(path, lambda handle: torch.save(obj, handle))
