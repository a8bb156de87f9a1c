"""Writing a run's files so that a kill, a crash or a full disk never leaves a half-written one.

A training run is resumed by loading what the last one left (caches, checkpoints, ``done.json``
markers), so a truncated file would turn an interrupted run into one that cannot restart.
Every file is written beside its target under a temporary name and renamed over it: the target
is the old file or the new one, never a mix.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import numpy as np


def write_atomically(path: Path, write: Callable[[IO[bytes]], None]) -> Path:
    """Call ``write`` with a binary handle on a temporary file, then rename it to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        with partial.open("wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)  # only left when writing failed
    return path


def save_array(path: Path, array: np.ndarray) -> Path:
    return write_atomically(path, lambda handle: np.save(handle, array, allow_pickle=False))


def save_json(path: Path, data: Any) -> Path:
    text = json.dumps(data, indent=2) + "\n"
    return write_atomically(path, lambda handle: handle.write(text.encode("utf-8")))


def save_text(path: Path, text: str) -> Path:
    return write_atomically(path, lambda handle: handle.write(text.encode("utf-8")))


def save_torch(path: Path, obj: Any) -> Path:
    import torch

    return write_atomically(path, lambda handle: torch.save(obj, handle))
