"""Moving photos to the platform trash: the one change the app ever makes in a photo folder.

Only on the user's explicit, confirmed request (the GUI asks first). Each file goes through
send2trash (recoverable from the system trash), then the library forgets exactly those files
the same way the watcher does when a file vanishes (``Library.apply_changes`` with no stat), so
they leave the timeline and the search results at once.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from photosearch.library.facade import Library


@dataclass(frozen=True)
class TrashReport:
    trashed: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)


def move_to_trash(library: Library, paths: list[str], lock_wait_s: float = 30.0) -> TrashReport:
    """Trash ``paths`` and drop them from the library; a file that cannot be trashed is kept,
    reported, and stays in the library. Raises LibraryLocked if another writer holds on."""
    from send2trash import send2trash
    from send2trash.exceptions import TrashPermissionError

    trashed: list[str] = []
    failed: list[tuple[str, str]] = []
    for path in paths:
        try:
            send2trash(path)
        except (OSError, TrashPermissionError) as exc:
            failed.append((path, str(exc) or type(exc).__name__))
            continue
        trashed.append(path)
    gone = [path for path in trashed if not os.path.lexists(path)]
    if gone:
        library.lock.acquire(lock_wait_s)
        try:
            library.apply_changes(dict.fromkeys(gone))
            store = library.store
            if store.dirty:
                store.save()
        finally:
            library.lock.release()
    return TrashReport(trashed, failed)
