"""Library.retry_failed: failed photos whose file is still there are encoded by the next index.

A failure is otherwise retried only when the file changes (size or mtime), so a file that was
unreadable for a passing reason (still being copied, a flaky disk) would stay failed forever.
"""

from __future__ import annotations

import os
from pathlib import Path

from photosearch.library.facade import Library
from tests.conftest import make_photo


def break_keeping_stat(path: Path) -> bytes:
    """Overwrite ``path`` with zeros of the same size; returns the good bytes."""
    good = path.read_bytes()
    path.write_bytes(bytes(len(good)))
    return good


def restore_keeping_stat(path: Path, good: bytes) -> None:
    """Put the good bytes back with the broken file's size and mtime: a scan sees no change."""
    stat = path.stat()
    path.write_bytes(good)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def test_retry_failed_resets_failures_so_the_next_index_encodes_them(
    library: Library, photo_dir: Path
):
    red = photo_dir / "red.jpg"
    good = break_keeping_stat(red)
    library.add_folder(photo_dir)
    first = library.index()
    assert first.encoding.failed == 1
    assert library.status().failures[0][0] == str(red)

    restore_keeping_stat(red, good)
    assert library.index().encoding.encoded == 0  # unchanged on disk: not retried by itself
    assert library.status().failed == 1

    assert library.retry_failed() == 1
    status = library.status()
    assert (status.failed, status.pending) == (0, 1)
    assert library.index().encoding.encoded == 1
    status = library.status()
    assert (status.failed, status.pending, status.indexed) == (0, 0, 5)
    assert library.retry_failed() == 0


def test_retry_failed_skips_files_that_are_gone(library: Library, photo_dir: Path):
    broken = make_photo(photo_dir / "broken.jpg", "blue")
    break_keeping_stat(broken)
    still_broken = make_photo(photo_dir / "still.jpg", "green")
    break_keeping_stat(still_broken)
    library.add_folder(photo_dir)
    assert library.index().encoding.failed == 2
    broken.unlink()
    assert library.retry_failed() == 1  # only the file that still exists
    report = library.index()
    assert report.encoding.failed == 1  # still broken: fails again, with its reason
    failures = dict(library.status().failures)
    assert list(failures) == [str(still_broken)] and failures[str(still_broken)]
