"""Camera RAW files (rawpy/LibRaw): the embedded JPEG preview, a full decode only without one.

Cameras embed a full-size or large JPEG in most RAW files; decoding it is ~50x cheaper than
demosaicing and is what the camera itself shows. ``open_raw`` returns a Pillow image that
``imaging.load_image`` treats like any other file (EXIF orientation and all).
"""

from __future__ import annotations

import importlib.util
import io
from functools import cache
from pathlib import Path
from typing import BinaryIO

from PIL import Image

RAW_EXTENSIONS = frozenset(
    {
        ".cr2",
        ".cr3",
        ".nef",
        ".nrw",
        ".arw",
        ".srf",
        ".sr2",
        ".dng",
        ".orf",
        ".rw2",
        ".raf",
        ".pef",
        ".srw",
        ".x3f",
        ".3fr",
        ".iiq",
        ".rwl",
        ".erf",
        ".kdc",
        ".mrw",
    }
)


@cache
def raw_available() -> bool:
    """Whether rawpy is installed (found, not imported: importing it costs ~0.1 s)."""
    return importlib.util.find_spec("rawpy") is not None


def is_raw(path: Path) -> bool:
    return path.suffix.lower() in RAW_EXTENSIONS


def open_raw(source: Path | BinaryIO) -> Image.Image:
    """The photo inside a RAW file (a path, or a file already opened safely) as a Pillow
    image. LibRaw's errors become OSError (the caller turns those into UnsupportedImage with
    the reason)."""
    import rawpy

    try:
        with rawpy.imread(str(source) if isinstance(source, Path) else source) as raw:
            try:
                thumb = raw.extract_thumb()
            except (rawpy.LibRawNoThumbnailError, rawpy.LibRawUnsupportedThumbnailError):
                thumb = None
            if thumb is not None and thumb.format == rawpy.ThumbFormat.JPEG:
                return Image.open(io.BytesIO(thumb.data))
            if thumb is not None and thumb.format == rawpy.ThumbFormat.BITMAP:
                return Image.fromarray(thumb.data)
            return Image.fromarray(raw.postprocess(use_camera_wb=True, half_size=True))
    except rawpy.LibRawError as exc:
        raise OSError(f"camera RAW file could not be read: {type(exc).__name__}") from exc
