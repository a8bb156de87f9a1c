"""The PySide6 desktop app. Importing this package does not import Qt; ``run_gui`` does."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any


def run_gui(
    library_dir: Path | None = None,
    models_dir: Path | None = None,
    serve: Callable[[Any], Any] | None = None,
) -> int:
    """Start the desktop app and return its exit code (the `photosearch` no-argument path).
    ``serve(library)``: starts answering other processes' searches (the CLI's
    ``serve_searches``; returns an object with ``close()``, or None)."""
    import sys

    from photosearch.gui.display_check import display_problem

    problem = display_problem()
    if problem is not None:
        print(f"photosearch: {problem}", file=sys.stderr)
        return 1
    from photosearch.gui.app import run

    return run(library_dir=library_dir, models_dir=models_dir, serve=serve)


__all__ = ["run_gui"]
