"""A small tmpfs of a test's own: remounted read-only it is a real read-only file system,
which stops root too (file modes do not, and the tests run as root); filled, a real full disk.
Skips where mounting is not allowed (not root, no CAP_SYS_ADMIN)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, capture_output=True)


@contextmanager
def own_tmpfs(target: Path, size: str = "16m") -> Iterator[Path]:
    """``target`` (created) with a fresh tmpfs mounted on it, unmounted afterwards."""
    target.mkdir()
    try:
        mount("-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(target))
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"cannot mount a tmpfs here (needs root with CAP_SYS_ADMIN): {exc}")
    try:
        yield target
    finally:
        subprocess.run(["umount", "-l", str(target)], check=False)
