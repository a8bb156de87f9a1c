"""Why the desktop app cannot open a window here, said before Qt aborts the process.

Qt ends the process (qFatal) when no platform plugin loads: no display at all, or, since
Qt 6.5, an X11 session without the libxcb-cursor0 system library. Both are common on fresh
Linux installs and servers, so they are checked first and explained in one line.
"""

from __future__ import annotations

import ctypes.util
import os
import sys
from collections.abc import Callable


def display_problem(
    environ: dict[str, str] | None = None,
    platform: str = sys.platform,
    find_library: Callable[[str], str | None] = ctypes.util.find_library,
) -> str | None:
    """A readable reason the window cannot open, or None when it should (or when we cannot
    tell: another platform plugin chosen explicitly, macOS, Windows)."""
    env = os.environ if environ is None else environ
    if not platform.startswith("linux"):
        return None
    chosen = env.get("QT_QPA_PLATFORM", "")
    if chosen and not chosen.startswith("xcb"):
        return None  # offscreen, wayland, eglfs ...: Qt reports its own errors
    if not chosen and env.get("WAYLAND_DISPLAY"):
        return None
    if not env.get("DISPLAY"):
        return (
            "no graphical display found (DISPLAY is not set): the desktop app needs a "
            "desktop session; the command line works without one (photosearch --help)"
        )
    if find_library("xcb-cursor") is None:
        return (
            "the desktop app needs the libxcb-cursor0 system library on X11 "
            "(Debian/Ubuntu: sudo apt install libxcb-cursor0; Fedora: sudo dnf install "
            "xcb-util-cursor)"
        )
    return None
