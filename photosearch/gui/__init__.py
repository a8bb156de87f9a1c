"""The PySide6 desktop app. Importing this package does not import Qt; ``run_gui`` does."""

from __future__ import annotations

from pathlib import Path


def run_gui(library_dir: Path | None = None, models_dir: Path | None = None) -> int:
    """Start the desktop app and return its exit code (the `photosearch` no-argument path)."""
    import sys

    from photosearch.gui.display_check import display_problem

    problem = display_problem()
    if problem is not None:
        print(f"photosearch: {problem}", file=sys.stderr)
        return 1
    from photosearch.gui.app import run

    return run(library_dir=library_dir, models_dir=models_dir)


__all__ = ["run_gui"]
