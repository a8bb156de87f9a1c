"""Where the app keeps its files, and the two questions every layer asks about a folder.

A library is a directory holding everything the app writes: ``catalog.sqlite``, ``vectors/``
(one HNSW graph per model) and ``write.lock``. Model bundles live in a models directory shared
by libraries. Photo folders are only ever read. This module imports nothing of the app, so
every layer may use it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

CATALOG_FILE = "catalog.sqlite"
VECTORS_DIR = "vectors"
LOCK_FILE = "write.lock"


def default_library_dir() -> Path:
    """$PHOTOSEARCH_LIBRARY, else the platform's user data directory."""
    if env := os.environ.get("PHOTOSEARCH_LIBRARY"):
        return Path(env).expanduser()
    from platformdirs import user_data_path

    return user_data_path("photosearch", appauthor=False)


def default_models_dir() -> Path:
    """$PHOTOSEARCH_MODELS, else ``models/`` in the platform's user data directory."""
    if env := os.environ.get("PHOTOSEARCH_MODELS"):
        return Path(env).expanduser()
    from platformdirs import user_data_path

    return user_data_path("photosearch", appauthor=False) / "models"


def is_under(path: str, directory: str) -> bool:
    """``path`` is ``directory`` or inside it, compared as text (no file-system access), so
    "/photos2" is not under "/photos". Both must be absolute and normalised alike."""
    return path == directory or path.startswith(directory.rstrip(os.sep) + os.sep)


def folder_available(
    path: str, *, was_mount: bool = False, had_photos: Callable[[], bool] | None = None
) -> bool:
    """Whether a library folder can be read now; False means "offline, keep its photos".

    Missing or unreadable roots are offline. An unmounted disk leaves an empty mount point,
    and treating that as "everything deleted" would drop the user's catalog, so a root that
    ``was_mount`` and is no longer one is offline, and so is an empty root when
    ``had_photos()`` says the catalog knew photos in it (to forget a folder's photos, the user
    removes the folder). ``had_photos`` is only called for an empty root.
    """
    if not os.path.isdir(path) or not os.access(path, os.R_OK | os.X_OK):
        return False
    if was_mount and not os.path.ismount(path):
        return False
    if had_photos is None:
        return True
    try:
        empty = not any(os.scandir(path))
    except OSError:
        return False
    return not (empty and had_photos())
