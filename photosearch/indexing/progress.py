"""A terminal progress bar with count, rate and ETA (stderr only; no dependency)."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from photosearch.indexing.encode import IndexProgress


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


class ProgressBar:
    """Redraws in place on a terminal; prints a line every few seconds otherwise."""

    def __init__(self, label: str, stream: TextIO | None = None, width: int = 30) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self.width = width
        self.interactive = self.stream.isatty()
        self._last = 0.0

    def __call__(self, progress: IndexProgress) -> None:
        now = time.monotonic()
        finished = progress.done >= progress.total
        interval = 0.2 if self.interactive else 5.0
        if not finished and now - self._last < interval:
            return
        self._last = now
        total = max(progress.total, 1)
        filled = int(self.width * progress.done / total)
        bar = "#" * filled + "-" * (self.width - filled)
        label = f"encoding for {progress.model}" if progress.model else self.label
        line = (
            f"{label} [{bar}] {progress.done}/{progress.total} "
            f"{progress.rate:.1f} photos/s ETA {format_duration(progress.eta_s)}"
        )
        if progress.failed:
            line += f" ({progress.failed} failed)"
        if self.interactive:
            self.stream.write("\r" + line + ("\n" if finished else ""))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()
