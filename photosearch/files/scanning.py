"""Walking photo folders and hashing files: what is on disk, without touching the catalog.

Skips hidden files and folders, common system folders, the library's own directory, user
ignore patterns, and symlink loops. Unreadable folders are reported, never fatal.
"""

from __future__ import annotations

import errno
import fnmatch
import gc
import hashlib
import os
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from photosearch.errors import PhotosearchError
from photosearch.files.imaging import supported_extensions
from photosearch.files.photo_files import SIGNATURE_BYTES, has_image_signature, open_regular_file
from photosearch.paths import is_under

SYSTEM_FOLDERS = frozenset(
    {
        ".thumbnails",
        "@eadir",
        ".git",
        "node_modules",
        "$recycle.bin",
        "system volume information",
        ".trash",
        ".trashes",
        "lost+found",
        "__pycache__",
        ".cache",
        ".photosearch",
    }
)
HASH_CHUNK = 1 << 20
PATH_MAX = 4096  # Linux: a longer path cannot be opened by name, so it is reported, not read


class FileStat(NamedTuple):
    """What a walk sees of one candidate photo (a tuple: a walk makes one per file)."""

    path: str
    size: int
    mtime_ns: int


@dataclass
class IgnoreRules:
    """Which paths a walk leaves out. ``patterns`` are fnmatch globs on names or full paths."""

    patterns: tuple[str, ...] = ()
    excluded_dirs: tuple[str, ...] = ()  # absolute paths, e.g. the library directory
    extensions: frozenset[str] = field(default_factory=supported_extensions)

    def skips_name(self, name: str) -> bool:
        return name.startswith(".") or name.lower() in SYSTEM_FOLDERS

    def skips_path(self, path: str) -> bool:
        name = os.path.basename(path)
        return any(
            fnmatch.fnmatch(name, pattern) or fnmatch.fnmatch(path, pattern)
            for pattern in self.patterns
        )

    def is_excluded_dir(self, path: str) -> bool:
        return any(is_under(path, excluded) for excluded in self.excluded_dirs)

    def wants_file(self, path: str) -> bool:
        return self.wants_entry(os.path.basename(path), path)

    def wants_entry(self, name: str, path: str) -> bool:
        """``wants_file`` for a walk that has the name already (it runs once per file)."""
        dot = name.rfind(".")  # os.path.splitext's extension, for a name not starting with "."
        if name[:1] == "." or dot < 0 or name[dot:].lower() not in self.extensions:
            return False
        if name.lower() in SYSTEM_FOLDERS:
            return False
        return not self.patterns or not self.skips_path(path)


def photo_folder(path: Path, library_dir: Path) -> Path:
    """``path`` resolved, if a library may read photos from it: an existing folder outside the
    library's own directory (which is never read). Raises PhotosearchError saying why not."""
    resolved = path.expanduser().resolve()
    if not resolved.is_dir():
        raise PhotosearchError(f"{path} is not a folder")
    if is_under(str(resolved), str(library_dir)):
        raise PhotosearchError(f"{path} is inside the library's own directory")
    return resolved


def walk_photos(
    root: Path,
    rules: IgnoreRules,
    on_error: Callable[[str, str], None] | None = None,
) -> Iterator[FileStat]:
    """Yield every wanted photo file under ``root``; ``on_error(path, reason)`` for the rest.

    Follows symlinks to folders but visits each real folder once, so loops end.
    """
    seen_dirs: set[tuple[int, int]] = set()
    stack = [str(root)]
    while stack:
        directory = stack.pop()
        try:
            info = os.stat(directory)
        except OSError as exc:
            _report(on_error, directory, exc)
            continue
        key = (info.st_dev, info.st_ino)
        if key in seen_dirs:
            continue
        seen_dirs.add(key)
        try:
            entries = list(os.scandir(directory))
        except OSError as exc:
            _report(on_error, directory, exc)
            continue
        subdirs: list[str] = []
        for entry in entries:
            path = entry.path
            try:
                is_dir = entry.is_dir(follow_symlinks=True)
            except OSError:
                is_dir = False
            if is_dir:
                if rules.skips_name(entry.name) or rules.skips_path(path):
                    continue
                if rules.is_excluded_dir(path):
                    continue
                subdirs.append(path)
                continue
            if not rules.wants_entry(entry.name, path):
                continue
            try:
                st = entry.stat(follow_symlinks=True)
            except OSError as exc:
                _report(on_error, path, exc)
                continue
            if stat.S_ISREG(st.st_mode):
                yield FileStat(path, st.st_size, st.st_mtime_ns)
        stack.extend(sorted(subdirs, reverse=True))


@contextmanager
def gc_paused() -> Iterator[None]:
    """Hold off Python's cycle collector while a scan builds one small tuple per file: with
    100k of them alive it would otherwise walk them all again and again (a sixth of an
    unchanged rescan). The tuples hold no cycles; collection resumes afterwards."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def stat_photo(path: str) -> FileStat | None:
    """Stat one path (following symlinks); None when it is gone or not a regular file."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    return FileStat(path, st.st_size, st.st_mtime_ns)


def content_hash(path: str, max_bytes: int | None = None) -> str:
    """BLAKE2b-128 of the file: identifies a photo across renames, moves and touches.

    The whole file is hashed when it starts like an image. A file that does not (a 20 GB
    sparse file named .jpg) is hashed by its first chunk and its size only, so it costs one
    read; the decoder then records why it is not a photo. A FIFO, a device or a file over
    ``max_bytes`` (default ``photo_files.MAX_FILE_BYTES``) is not read at all: NotAPhotoFile.
    Raises OSError when the file cannot be read.
    """
    digest = hashlib.blake2b(digest_size=16)
    with open_regular_file(path, max_bytes) as handle:
        chunk = handle.read(HASH_CHUNK)
        if not has_image_signature(chunk[:SIGNATURE_BYTES]) and len(chunk) == HASH_CHUNK:
            digest.update(chunk)
            digest.update(b"\0not an image, size %d" % os.fstat(handle.fileno()).st_size)
            return digest.hexdigest()
        while chunk:
            digest.update(chunk)
            chunk = handle.read(HASH_CHUNK)
    return digest.hexdigest()


def _report(on_error: Callable[[str, str], None] | None, path: str, exc: OSError) -> None:
    if on_error is None:
        return
    if isinstance(exc, PermissionError):
        reason = "permission denied"
    elif isinstance(exc, FileNotFoundError):
        reason = "disappeared during the scan"
    elif exc.errno == errno.ENAMETOOLONG or len(os.fsencode(path)) >= PATH_MAX:
        reason = f"path too long to open ({len(path):,} characters)"
    elif exc.errno == errno.ELOOP:
        reason = "too many levels of symbolic links"
    else:
        reason = exc.strerror or str(exc)
    on_error(path, reason)
