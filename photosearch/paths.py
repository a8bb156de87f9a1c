"""Default folders, cheap to import (the CLI's fast paths read them before anything else)."""

from __future__ import annotations

import os
from pathlib import Path


def default_library_dir() -> Path:
    """$PHOTOSEARCH_LIBRARY, else the platform's user data directory."""
    if env := os.environ.get("PHOTOSEARCH_LIBRARY"):
        return Path(env).expanduser()
    from platformdirs import user_data_path

    return user_data_path("photosearch", appauthor=False)
