"""Hand freed heap memory back to the operating system (glibc keeps it otherwise).

Creating an ONNX Runtime session parses the whole model file into temporary buffers; glibc's
allocator keeps most of what they freed inside the process. ``malloc_trim`` returns it:
about 35 MB in the desktop app after its sessions are made (benchmarks/bench_app_memory.py).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys


def give_back_freed_heap() -> None:
    """Return freed heap pages to the system; a no-op where the C library is not glibc."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):  # musl and others have no malloc_trim
        return
    trim(0)
