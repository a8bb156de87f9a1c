"""Safe photo decoding and model preprocessing.

Every failure becomes an ``UnsupportedImage`` with a sentence a user can act on; nothing here
writes to the photo. JPEGs are decoded in draft mode at a reduced scale (the encoder needs only
~224 px), which makes 12 MP photos several times cheaper to decode.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from photosearch.errors import UnsupportedImage
from photosearch.models.bundle import Preprocessing
from photosearch.raw_images import RAW_EXTENSIONS, is_raw, open_raw, raw_available

log = logging.getLogger(__name__)

SUPPORTED_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".jpe", ".png", ".webp", ".tif", ".tiff", ".bmp", ".gif"}
)
HEIF_EXTENSIONS = frozenset({".heic", ".heif", ".avif"})
MAX_PIXELS = 180_000_000  # larger than any camera; above this a file is treated as a bomb
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


def load_image(path: Path, min_size: int | None = None) -> tuple[Image.Image, PhotoInfo]:
    """Decode ``path`` into an upright RGB image, at reduced scale when ``min_size`` allows.

    With ``min_size`` the decoder may shrink the image (JPEG draft mode) as long as both sides
    stay at least ``min_size`` pixels. Raises UnsupportedImage with a readable reason.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with open_raw(path) if is_raw(path) else Image.open(path) as image:
                width, height = image.size
                if width * height > MAX_PIXELS:
                    raise UnsupportedImage(
                        f"image is {width}x{height} pixels, over the "
                        f"{MAX_PIXELS // 1_000_000}-megapixel safety limit"
                    )
                exif = image.getexif()
                if min_size and image.format == "JPEG":
                    image.draft("RGB", (min_size, min_size))
                image.load()
                upright = ImageOps.exif_transpose(image) or image
                rgb = _to_rgb(upright)
    except UnsupportedImage:
        raise
    except FileNotFoundError as exc:
        raise UnsupportedImage("file disappeared before it could be read") from exc
    except PermissionError as exc:
        raise UnsupportedImage("permission denied: the file is not readable") from exc
    except IsADirectoryError as exc:
        raise UnsupportedImage("path is a directory, not a photo") from exc
    except UnidentifiedImageError as exc:
        raise UnsupportedImage("not an image, or an image format this app cannot read") from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise UnsupportedImage(f"refused as a possible decompression bomb: {exc}") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise UnsupportedImage(f"corrupt or truncated image: {_short(exc)}") from exc
    except Exception as exc:  # a decoder bug must cost one file, not the run
        raise UnsupportedImage(f"decoder failed: {type(exc).__name__}: {_short(exc)}") from exc
    orientation = exif.get(0x0112, 1)
    if orientation in (5, 6, 7, 8):
        width, height = height, width
    return rgb, PhotoInfo(width, height, _capture_time(exif), _camera(exif))


def to_model_input(image: Image.Image, preprocessing: Preprocessing) -> np.ndarray:
    """Resize/crop as the bundle says and normalise: float32 [3, size, size]."""
    size = preprocessing.size
    resample = _RESAMPLING.get(preprocessing.interpolation, Image.Resampling.BICUBIC)
    if preprocessing.resize_mode == "squash":
        image = image.resize((size, size), resample=resample)
    else:
        width, height = image.size
        scale = size / min(width, height)
        new_w, new_h = max(size, round(width * scale)), max(size, round(height * scale))
        image = image.resize((new_w, new_h), resample=resample)
        left, top = (new_w - size) // 2, (new_h - size) // 2
        image = image.crop((left, top, left + size, top + size))
    array = np.asarray(image, dtype=np.float32) / 255.0
    mean = np.asarray(preprocessing.mean, dtype=np.float32)
    std = np.asarray(preprocessing.std, dtype=np.float32)
    return np.ascontiguousarray(((array - mean) / std).transpose(2, 0, 1))


def decode_for_model(path: Path, preprocessing: Preprocessing) -> DecodedPhoto:
    """Decode and preprocess one photo for the image encoder (safe to call from threads)."""
    image, info = load_image(path, min_size=preprocessing.size)
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
