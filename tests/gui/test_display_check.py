"""Without a usable display the app says why in one line instead of Qt aborting."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from photosearch.gui.display_check import display_problem


def test_no_display_is_explained_and_exits_cleanly(tmp_path: Path):
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")
    }
    env["HOME"] = str(tmp_path)
    run = subprocess.run(
        [sys.executable, "-m", "photosearch", "--library", str(tmp_path / "lib")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 1, run.stderr
    assert "no graphical display found" in run.stderr
    assert "Aborted" not in run.stderr and "qt.qpa" not in run.stderr


def test_x11_without_xcb_cursor_names_the_package():
    problem = display_problem({"DISPLAY": ":0"}, "linux", find_library=lambda name: None)
    assert problem is not None and "libxcb-cursor0" in problem


def test_other_platforms_and_explicit_plugins_are_left_to_qt():
    missing = {"find_library": lambda name: None}
    assert display_problem({}, "darwin", **missing) is None
    assert display_problem({"QT_QPA_PLATFORM": "offscreen"}, "linux", **missing) is None
    assert display_problem({"WAYLAND_DISPLAY": "wayland-0"}, "linux", **missing) is None
    assert (
        display_problem({"DISPLAY": ":0"}, "linux", find_library=lambda name: "libxcb-cursor.so.0")
        is None
    )
