"""Safe photo decoding and model preprocessing.

Every failure becomes an ``UnsupportedImage`` with a sentence a user can act on; nothing here
writes to the photo. JPEGs are decoded in draft mode at a reduced scale (the encoder needs only
~224 px), which makes 12 MP photos several times cheaper to decode.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from photosearch.errors import DecodeRefused, UnsupportedImage
from photosearch.files.photo_files import open_regular_file
from photosearch.files.raw_images import RAW_EXTENSIONS, is_raw, open_raw, raw_available
from photosearch.models.bundle import Preprocessing

log = logging.getLogger(__name__)

SUPPORTED_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".jpe", ".png", ".webp", ".tif", ".tiff", ".bmp", ".gif"}
)
HEIF_EXTENSIONS = frozenset({".heic", ".heif", ".avif"})
MAX_PIXELS = 180_000_000  # larger than any camera; above this a file is treated as a bomb
# Memory all decodes running at once may use (and so the most one photo may use). A 16-bit
# 9400x9400 PNG is 177 KB on disk and 177 MB decoded; a 100 Mpx JPEG in draft mode ~12 MB.
DECODE_MEMORY_BYTES = 512 * 1024**2
DECODE_SECONDS = 20.0  # a photo that takes longer to decode is recorded as failed, with why
SHRINK_ABOVE_BYTES = 64 * 1024**2  # full-size RGB copies above this are avoided by reducing
_HIGH_BIT_MODES = frozenset({"I;16", "I;16B", "I;16L", "I;16N", "I", "F"})
_BYTES_PER_PIXEL = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16B": 2, "I;16L": 2, "I;16N": 2}
# Our own pixel check (below) runs on the header before decoding, in every thread alike, so
# Pillow's warning (a global, thread-unsafe warnings filter used to turn it into an error) is
# silenced; Pillow's hard error at twice this many pixels stays as a backstop.
Image.MAX_IMAGE_PIXELS = MAX_PIXELS
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
_EXIF_IFD = 0x8769
_DATETIME_ORIGINAL = 36867
_DATETIME = 306
_MAKE = 271
_MODEL = 272

_RESAMPLING = {
    "bicubic": Image.Resampling.BICUBIC,
    "bilinear": Image.Resampling.BILINEAR,
    "nearest": Image.Resampling.NEAREST,
    "lanczos": Image.Resampling.LANCZOS,
    "box": Image.Resampling.BOX,
}


def _heif_available() -> bool:
    try:
        from pillow_heif import register_heif_opener  # type: ignore[import-not-found]
    except ImportError:
        return False
    register_heif_opener()
    return True


HEIF_SUPPORTED = _heif_available()


def supported_extensions() -> frozenset[str]:
    """File extensions (lower case, with dot) this installation can decode."""
    heif = HEIF_EXTENSIONS if HEIF_SUPPORTED else frozenset()
    return SUPPORTED_EXTENSIONS | heif | (RAW_EXTENSIONS if raw_available() else frozenset())


@dataclass(frozen=True)
class PhotoInfo:
    """Metadata read while decoding: oriented size, EXIF capture time and camera."""

    width: int
    height: int
    taken_at: datetime | None
    camera: str | None


@dataclass(frozen=True)
class DecodedPhoto:
    """A photo ready for the encoder: its model input tensor and the metadata read on the way."""

    pixels: np.ndarray  # float32 [3, size, size]
    info: PhotoInfo
    phash: str | None = None  # photosearch.files.perceptual_hash.stored_hash of the decoded image


@dataclass(frozen=True)
class DecodeLimits:
    """What one photo may cost to decode. Plain data, so it can be sent to worker processes."""

    max_pixels: int
    memory_bytes: int
    seconds: float
    max_file_bytes: int

    @classmethod
    def current(cls) -> DecodeLimits:
        """The limits in force now: this module's defaults, overridden by the environment
        variables PHOTOSEARCH_DECODE_SECONDS (time per photo) and PHOTOSEARCH_DECODE_MEMORY_MB
        (memory all decodes share). A value that is not a positive number is ignored."""
        from photosearch.files import photo_files

        seconds = _env_number("PHOTOSEARCH_DECODE_SECONDS") or DECODE_SECONDS
        memory_mb = _env_number("PHOTOSEARCH_DECODE_MEMORY_MB")
        memory = int(memory_mb * 1024**2) if memory_mb else DECODE_MEMORY_BYTES
        return cls(MAX_PIXELS, memory, seconds, photo_files.MAX_FILE_BYTES)

    def with_changes(self, **changes: float) -> DecodeLimits:
        return replace(self, **changes)


class DecodeBudget:
    """Memory shared by every decode running at once: a decode reserves what its header says
    it will need and waits while others hold too much, so four bomb-sized photos decode one
    after another instead of together. Thread-safe."""

    def __init__(self, total_bytes: int) -> None:
        self.total_bytes = total_bytes
        self._used = 0
        self._changed = threading.Condition()

    @property
    def used_bytes(self) -> int:
        with self._changed:
            return self._used

    @contextmanager
    def reserve(self, nbytes: int) -> Iterator[None]:
        """Hold ``nbytes`` (capped at the total, so one photo alone always fits) until exit."""
        nbytes = max(0, min(nbytes, self.total_bytes))
        with self._changed:
            self._changed.wait_for(lambda: self._used + nbytes <= self.total_bytes)
            self._used += nbytes
        try:
            yield
        finally:
            with self._changed:
                self._used -= nbytes
                self._changed.notify_all()


def _env_number(name: str) -> float | None:
    try:
        value = float(os.environ.get(name, ""))
    except ValueError:
        return None
    return value if 0 < value < float("inf") else None


_process_budget: DecodeBudget | None = None
_process_budget_lock = threading.Lock()


def process_budget() -> DecodeBudget:
    """The decode budget every decode in this process shares (indexing, thumbnails, --like)."""
    global _process_budget
    with _process_budget_lock:
        if _process_budget is None:
            _process_budget = DecodeBudget(DecodeLimits.current().memory_bytes)
        return _process_budget


def load_image(
    path: Path,
    min_size: int | None = None,
    limits: DecodeLimits | None = None,
    budget: DecodeBudget | None = None,
) -> tuple[Image.Image, PhotoInfo]:
    """Decode ``path`` into an upright RGB image, at reduced scale when ``min_size`` allows.

    With ``min_size`` the decoder may shrink the image (JPEG draft mode, else a box reduction
    right after decoding) as long as both sides stay at least ``min_size`` pixels. The file is
    opened without blocking and must be a regular file; its header is checked against
    ``limits`` before any pixel is decoded, and the decode waits for its memory in ``budget``
    (default: this process's shared budget). Raises UnsupportedImage with a readable reason.
    """
    limits = limits or DecodeLimits.current()
    budget = budget or process_budget()
    try:
        with (
            _opening_reasons(limits),
            open_regular_file(path, limits.max_file_bytes) as handle,
            open_raw(handle) if is_raw(path) else Image.open(handle) as image,
        ):
            width, height = image.size
            cost = _plan(image, min_size, limits)
            exif = image.getexif()
            with budget.reserve(cost):
                image.load()
                reduced = _shrink(image, min_size)
                upright = ImageOps.exif_transpose(reduced) or reduced
                rgb = _to_rgb(upright)
    except UnsupportedImage:
        raise
    except MemoryError as exc:
        raise DecodeRefused("ran out of memory while decoding") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise UnsupportedImage(f"corrupt or truncated image: {_short(exc)}") from exc
    except Exception as exc:  # a decoder bug must cost one file, not the run
        raise UnsupportedImage(f"decoder failed: {type(exc).__name__}: {_short(exc)}") from exc
    orientation = exif.get(0x0112, 1)
    if orientation in (5, 6, 7, 8):
        width, height = height, width
    return rgb, PhotoInfo(width, height, _capture_time(exif), _camera(exif))


@contextmanager
def _opening_reasons(limits: DecodeLimits) -> Iterator[None]:
    """Turn the ways opening a photo fails into UnsupportedImage/DecodeRefused with a reason a
    person can read (shared by load_image and decode_cost)."""
    try:
        yield
    except FileNotFoundError as exc:
        raise UnsupportedImage("file disappeared before it could be read") from exc
    except PermissionError as exc:
        raise UnsupportedImage("permission denied: the file is not readable") from exc
    except IsADirectoryError as exc:
        raise UnsupportedImage("path is a directory, not a photo") from exc
    except UnidentifiedImageError as exc:
        raise UnsupportedImage("not an image, or an image format this app cannot read") from exc
    except Image.DecompressionBombError as exc:
        raise DecodeRefused(_bomb_reason(exc, limits)) from exc


def decode_cost(path: Path, min_size: int | None = None, limits: DecodeLimits | None = None) -> int:
    """Bytes of memory decoding ``path`` at ``min_size`` will take, from its header alone.

    Raises UnsupportedImage for what ``load_image`` would refuse before decoding (not a regular
    file, too large, over the pixel or memory limit, not an image). Reads only the header, so a
    caller can reserve the memory before handing the decode to another process.
    """
    limits = limits or DecodeLimits.current()
    try:
        with (
            _opening_reasons(limits),
            open_regular_file(path, limits.max_file_bytes) as handle,
            open_raw(handle) if is_raw(path) else Image.open(handle) as image,
        ):
            return _plan(image, min_size, limits)
    except UnsupportedImage:
        raise
    except Exception as exc:  # a header the parser chokes on is a bad photo, not a crash
        raise UnsupportedImage(f"corrupt image header: {_short(exc)}") from exc


def _plan(image: Image.Image, min_size: int | None, limits: DecodeLimits) -> int:
    """Check an opened (not yet decoded) image against the limits, switch JPEGs to draft
    mode when ``min_size`` allows, and return the bytes the decode will need."""
    width, height = image.size
    if width * height > limits.max_pixels:
        raise DecodeRefused(
            f"image is {width}x{height} pixels, over the "
            f"{limits.max_pixels // 1_000_000}-megapixel safety limit"
        )
    if min_size and image.format == "JPEG":
        image.draft("RGB", (min_size, min_size))
    cost = _decoded_bytes(image.mode, *image.size)
    if not (min_size and _worth_shrinking(image.mode, *image.size, min_size)):
        cost += image.size[0] * image.size[1] * 4  # a full-size RGB working copy
    if cost > limits.memory_bytes:
        raise DecodeRefused(
            f"decoding would need {cost / 1e6:,.0f} MB of memory ({width}x{height} "
            f"{image.mode}), over the {limits.memory_bytes / 1e6:,.0f} MB limit for one photo"
        )
    return cost


def _bomb_reason(exc: Image.DecompressionBombError, limits: DecodeLimits) -> str:
    pixels = re.search(r"\((\d+) pixels\)", str(exc))
    size = f"{int(pixels.group(1)) / 1e6:,.0f} megapixels, " if pixels else ""
    return (
        f"image is {size}over the {limits.max_pixels // 1_000_000}-megapixel safety limit "
        f"(refused as a possible decompression bomb)"
    )


def _decoded_bytes(mode: str, width: int, height: int) -> int:
    """Pillow's in-memory size of an image: 1, 2 or 4 bytes per pixel (multi-band modes are
    stored as 4 bytes per pixel)."""
    return width * height * _BYTES_PER_PIXEL.get(mode, 4)


def _worth_shrinking(mode: str, width: int, height: int, min_size: int) -> bool:
    """Reduce right after decoding when the image is at least twice the size needed and
    converting it at full size would be costly (high bit depth, or a very large image)."""
    if min(width, height) < 2 * min_size:
        return False
    return mode in _HIGH_BIT_MODES or width * height * 4 > SHRINK_ABOVE_BYTES


def _shrink(image: Image.Image, min_size: int | None) -> Image.Image:
    """A box-reduced copy of a decoded image, keeping both sides at least ``min_size``; the
    full-size image is released as soon as the copy exists."""
    width, height = image.size
    if not (min_size and _worth_shrinking(image.mode, width, height, min_size)):
        return image
    factor = min(width, height) // min_size
    size = (max(1, width // factor), max(1, height // factor))
    try:
        small = image.reduce(factor)
    except ValueError:  # modes reduce() cannot do (1, P, I;16): resize (nearest for 1 and P)
        small = image.resize(size, Image.Resampling.BOX)
    small.info = dict(image.info)
    exif = image.getexif()
    if exif:
        small.getexif().update(exif)  # keeps the orientation for exif_transpose
    return small


def to_model_input(image: Image.Image, preprocessing: Preprocessing) -> np.ndarray:
    """Resize/crop as the bundle says and normalise: float32 [3, size, size].

    The arithmetic is torchvision's (what open_clip models were trained with and Immich
    reproduces): short side to ``size``, long side truncated, centre crop with rounded offsets.
    """
    size = preprocessing.size
    resample = _RESAMPLING.get(preprocessing.interpolation, Image.Resampling.BICUBIC)
    if preprocessing.resize_mode == "squash":
        image = image.resize((size, size), resample=resample)
    else:
        new_size = resized_size(image.size, size)
        if new_size != image.size:
            image = image.resize(new_size, resample=resample)
        image = image.crop(centre_crop_box(image.size, size))
    array = np.asarray(image, dtype=np.float32) / 255.0
    mean = np.asarray(preprocessing.mean, dtype=np.float32)
    std = np.asarray(preprocessing.std, dtype=np.float32)
    return np.ascontiguousarray(((array - mean) / std).transpose(2, 0, 1))


def resized_size(image_size: tuple[int, int], size: int) -> tuple[int, int]:
    """torchvision ``Resize(size)``: the short side becomes ``size``, the long side
    ``int(size * long / short)`` (truncated, not rounded: 298 px, not 299, for 4:3 at 224)."""
    width, height = image_size
    short, long = (width, height) if width <= height else (height, width)
    new_long = int(size * long / short)
    return (size, new_long) if width <= height else (new_long, size)


def centre_crop_box(image_size: tuple[int, int], size: int) -> tuple[int, int, int, int]:
    """torchvision ``CenterCrop(size)``'s box: offsets ``int(round((side - size) / 2))``."""
    width, height = image_size
    left = int(round((width - size) / 2.0))
    top = int(round((height - size) / 2.0))
    return left, top, left + size, top + size


# JPEG draft decoding (DCT scaling by 1/2, 1/4 or 1/8) is a large speed win on camera photos,
# but a decode scaled down to just the model's size keeps too little detail for the final
# resize. The draft may shrink a photo only while its short side stays at least this many
# times the model input. Measured (benchmarks/bench_preprocess_parity.py): no Flickr8k-1k photo
# (<= 500 px) is drafted, so their vectors equal a full decode's (at 1x, 51 of 1,000 were, worst
# cosine 0.887 with the default model); on 12 MP photos decoding is 5.1x faster than in full,
# and a ViT-B/32 stays >= 0.99996 cosine to the full decode.
DRAFT_MARGIN = 2


def draft_size(preprocessing: Preprocessing) -> int:
    """The smallest short side a draft-mode JPEG decode may give for this preprocessing (a
    bundle may set its own margin: one trained on draft-decoded photos)."""
    margin = preprocessing.draft_margin
    return preprocessing.size * (DRAFT_MARGIN if margin is None else margin)


def decode_for_model(path: Path, preprocessing: Preprocessing) -> DecodedPhoto:
    """Decode and preprocess one photo for the image encoder (safe to call from threads)."""
    image, info = load_image(path, min_size=draft_size(preprocessing))
    try:
        pixels = to_model_input(image, preprocessing)
    except Exception as exc:
        raise UnsupportedImage(f"could not prepare image: {_short(exc)}") from exc
    return DecodedPhoto(pixels, info)


def make_thumbnail(path: Path, max_size: int) -> Image.Image:
    """An upright RGB thumbnail no larger than ``max_size`` on its long side."""
    image, _ = load_image(path, min_size=max_size)
    image.thumbnail((max_size, max_size), Image.Resampling.LANCZOS)
    return image


def _to_rgb(image: Image.Image) -> Image.Image:
    """Any Pillow mode to 8-bit RGB; transparency is flattened onto white."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        array = np.asarray(image, dtype=np.float64)
        high = array.max() if array.size else 0.0
        scale = 255.0 / high if high > 255 else 1.0
        return Image.fromarray(np.clip(array * scale, 0, 255).astype(np.uint8)).convert("RGB")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if image.mode != "RGB":
        return image.convert("RGB")
    return image


def _capture_time(exif: Image.Exif) -> datetime | None:
    raw = None
    try:
        raw = exif.get_ifd(_EXIF_IFD).get(_DATETIME_ORIGINAL) or exif.get(_DATETIME)
    except Exception:  # malformed EXIF must not fail the photo
        return None
    if not isinstance(raw, str):
        return None
    try:
        return datetime.strptime(raw.strip().rstrip("\x00")[:19], "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None


def _camera(exif: Image.Exif) -> str | None:
    make = str(exif.get(_MAKE, "") or "").strip().strip("\x00")
    model = str(exif.get(_MODEL, "") or "").strip().strip("\x00")
    if model and make and model.lower().startswith(make.lower()):
        return model
    camera = f"{make} {model}".strip()
    return camera or None


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."
