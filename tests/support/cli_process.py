"""The photosearch CLI as a subprocess argument list, run the way a user runs it: a fresh
interpreter, ``python -m photosearch``, the library and models folders named on the line."""

from __future__ import annotations

import sys
from pathlib import Path


def photosearch_command(
    library: Path, models: Path, *args: str | bytes, model: str | None = "tiny"
) -> list[str | bytes]:
    """The argument list; ``model=None`` leaves ``--model`` out (the library's own choice)."""
    chosen = ["--model", model] if model else []
    return [
        sys.executable,
        "-m",
        "photosearch",
        "--library",
        str(library),
        "--models-dir",
        str(models),
        *chosen,
        *args,
    ]
