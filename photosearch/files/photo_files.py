"""Opening a photo file safely, and showing its name.

A photo folder can hold anything: FIFOs (opening one for reading blocks until a writer comes),
device files, 20 GB sparse files named ``.jpg``, names whose bytes are not UTF-8. Everything
that reads a photo opens it here: without blocking, then checks that what was opened (not what
the path named a moment earlier) is a regular file of a sane size.
"""

from __future__ import annotations

import os
import stat
from typing import BinaryIO

from photosearch.errors import NotAPhotoFile

MAX_FILE_BYTES = 2_000_000_000  # larger than any camera photo or scan we index; refused unread
SIGNATURE_BYTES = 16
_SIGNATURES = (
    b"\xff\xd8\xff",  # JPEG
    b"\x89PNG\r\n\x1a\n",
    b"GIF87a",
    b"GIF89a",
    b"BM",
    b"II*\x00",
    b"MM\x00*",
    b"II+\x00",
    b"MM\x00+",  # TIFF, BigTIFF
)
_KINDS = {
    stat.S_IFIFO: "a FIFO (named pipe)",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
    stat.S_IFDIR: "a directory",
}


def open_regular_file(path: str | os.PathLike[str], max_bytes: int | None = None) -> BinaryIO:
    """Open ``path`` for reading without ever blocking; raise NotAPhotoFile unless it is a
    regular file of at most ``max_bytes`` (default ``MAX_FILE_BYTES``).

    The check is on the opened descriptor, so a file swapped for a FIFO between a scan and
    this call is caught, not waited on. Raises OSError (FileNotFoundError, PermissionError...)
    when the path cannot be opened at all.
    """
    limit = MAX_FILE_BYTES if max_bytes is None else max_bytes
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    flags |= getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    fd = os.open(path, flags)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = _KINDS.get(stat.S_IFMT(info.st_mode), "not a regular file")
            raise NotAPhotoFile(f"not a photo: the path is {kind}")
        if info.st_size > limit:
            raise NotAPhotoFile(
                f"file is {_size(info.st_size)}, over the {_size(limit)} limit for one photo"
            )
        if getattr(os, "O_NONBLOCK", 0):
            os.set_blocking(fd, True)  # a regular file: plain reads from here on
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def has_image_signature(head: bytes) -> bool:
    """Whether the first bytes of a file start like an image format we can decode; checked
    before hashing so that a huge non-image file is refused after one read."""
    if head.startswith(_SIGNATURES):
        return True
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return True
    return head[4:8] == b"ftyp"  # HEIF / AVIF (decoded only with pillow-heif installed)


def display_path(path: str, limit: int | None = None) -> str:
    """``path`` as printable text: bytes that are not UTF-8 (kept in ``path`` as surrogate
    escapes, so the file still opens) become ``\\xff``; with ``limit``, long paths keep their
    start and end around an ellipsis."""
    text = path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    text = text.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    if limit is not None and len(text) > limit:
        keep = max(limit - 3, 2)
        text = text[: keep // 3] + "..." + text[-(keep - keep // 3) :]
    return text


def file_url(path: str) -> bytes:
    """A percent-encoded ``file://`` URL naming exactly this file, also when its name is not
    UTF-8 (a URL built from the text form would name a different file)."""
    from urllib.parse import quote

    return b"file://" + quote(os.fsencode(os.path.abspath(path)), safe="/").encode("ascii")


def printable(text: str) -> str:
    """Text safe to store in the catalog or print: lone surrogates become ``\\udcff``-style
    escapes instead of failing a UTF-8 encode."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _size(n: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"
