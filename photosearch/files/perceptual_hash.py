"""Perceptual hashes of photos, for finding near-duplicates (resized, recompressed, mirrored).

The hash is the classic DCT "pHash" exactly as ``imagehash.phash`` computes it (grey 32x32
Lanczos thumbnail, 2-D DCT-II, the 8x8 lowest frequencies compared with their median: 64 bits,
stored as 16 hex digits), bit for bit (benchmarks/bench_duplicates.py checks this against
imagehash when it is installed). It is written here with numpy rather than imported because
imagehash pulls in SciPy (35 MB wheel, ~110 MB installed) and PyWavelets for this one 32x32
transform, which the desktop app and its frozen build would otherwise carry.

A mirrored photo's DCT differs only in the sign of its odd horizontal frequencies, so its
hash is computed from the same coefficients at no extra decoding cost (``hashes_with_mirror``).
The hash sees only grey levels, so the photo's mean colour is kept beside it: two graphics with
the same layout in different colours hash alike, but are not copies.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

if TYPE_CHECKING:
    from PIL import Image

HASH_SIZE = 8  # 8x8 low frequencies: a 64-bit hash
_SAMPLE_SIZE = HASH_SIZE * 4  # imagehash's highfreq_factor=4: a 32x32 thumbnail
HEX_DIGITS = HASH_SIZE * HASH_SIZE // 4
STORED_DIGITS = 2 * HEX_DIGITS + 6  # hash, mirror hash, mean colour (photos.phash)
# Below this spread of grey levels (standard deviation, 0-255) a thumbnail is flat: its hash
# is the same for every flat photo (an all-black pocket shot, a blank screen), so none is kept.
FLAT_BELOW = 2.0
NO_HASH = ""  # what photos.phash holds for a flat photo: hashed, but never grouped


# mirroring a row negates its odd DCT frequencies (the horizontal ones are the second axis)
_MIRROR_SIGNS = np.where(np.arange(HASH_SIZE) % 2 == 1, -1.0, 1.0)[None, :]


@cache
def _dct_matrix(n: int) -> np.ndarray:
    """The unnormalised DCT-II as a matrix (what scipy.fftpack.dct computes by default)."""
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    return 2.0 * np.cos(np.pi * k * (2 * i + 1) / (2 * n))


def _thumbnail(image: Image.Image) -> np.ndarray:
    from PIL import Image  # here, not above: a search compares stored hashes without Pillow

    grey = image.convert("L").resize((_SAMPLE_SIZE, _SAMPLE_SIZE), Image.Resampling.LANCZOS)
    return np.asarray(grey, dtype=np.float64)


def _low_frequencies(pixels: np.ndarray) -> np.ndarray:
    basis = _dct_matrix(_SAMPLE_SIZE)
    coefficients = basis @ pixels @ basis.T  # DCT along columns, then along rows
    return coefficients[:HASH_SIZE, :HASH_SIZE]


def _to_hex(low: np.ndarray) -> str:
    bits = (low > np.median(low)).flatten()
    return f"{int(''.join('1' if b else '0' for b in bits), 2):0{HEX_DIGITS}x}"


def perceptual_hash(image: Image.Image) -> str:
    """The 64-bit pHash of a decoded image as 16 hex digits (same as ``str(imagehash.phash)``)."""
    return _to_hex(_low_frequencies(_thumbnail(image)))


def hashes_with_mirror(image: Image.Image) -> tuple[str, str]:
    """The pHash of ``image`` and of its left-right mirror image, from one DCT."""
    low = _low_frequencies(_thumbnail(image))
    return _to_hex(low), _to_hex(low * _MIRROR_SIGNS)


def stored_hash(image: Image.Image) -> str:
    """What photos.phash holds: the photo's pHash and its mirror's (a mirrored copy is found by
    comparing one photo's hash with the other's mirror hash), then its mean red, green and blue
    (0-255): 38 hex digits. ``NO_HASH`` for a flat image."""
    pixels = _thumbnail(image)
    if pixels.std() < FLAT_BELOW:
        return NO_HASH
    low = _low_frequencies(pixels)
    from PIL import Image

    small = image.convert("RGB").resize((_SAMPLE_SIZE, _SAMPLE_SIZE), Image.Resampling.BOX)
    colour = np.asarray(small, dtype=np.float64).reshape(-1, 3).mean(axis=0)
    return _to_hex(low) + _to_hex(low * _MIRROR_SIGNS) + bytes(int(round(c)) for c in colour).hex()


class StoredHash(NamedTuple):
    """A photos.phash value read back: the hash, the mirror image's hash, the mean colour."""

    own: int
    mirror: int
    colour: tuple[int, int, int]


def split_stored(value: str | None) -> StoredHash | None:
    """A photos.phash value as numbers; None when absent, flat, or not one this module wrote."""
    if not value or len(value) != STORED_DIGITS:
        return None
    try:
        red, green, blue = bytes.fromhex(value[2 * HEX_DIGITS :])
        return StoredHash(
            int(value[:HEX_DIGITS], 16),
            int(value[HEX_DIGITS : 2 * HEX_DIGITS], 16),
            (red, green, blue),
        )
    except ValueError:
        return None


def hamming(a: int, b: int) -> int:
    """How many of the 64 bits differ."""
    return (a ^ b).bit_count()
