"""How the catalog stores a file path: as text, or as the raw bytes of a name that is not
UTF-8 (Python holds those as str with surrogate escapes, which SQLite text cannot).

Used by the ORM's ``FilePath`` column type and by the plain-SQL reads (catalog.reads), so a
path is stored and read back the same way on both.
"""

from __future__ import annotations

import os


def stored_path(path: str) -> str | bytes:
    """The value to store (or look up) for ``path``: itself, or its raw bytes when not UTF-8."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return os.fsencode(path)
    return path


def loaded_path(value: str | bytes) -> str:
    """The path a stored value stands for (the same str the OS gave)."""
    return os.fsdecode(value) if isinstance(value, bytes) else value
