"""Real hostile photo files, written small: the tests and benchmarks/bench_hostile.py share them.

Each writer streams its output, so making a "9400x9400 16-bit" PNG or a "20 GB" file needs
neither the memory nor the disk space the file claims.
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path

from PIL import Image


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data))
        + kind
        + data
        + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def write_flat_png(
    path: Path, width: int, height: int, *, bit_depth: int = 16, colour_type: int = 0
) -> Path:
    """A valid PNG of one flat colour (zeros), compressed row by row: a 16-bit greyscale
    9400x9400 image (177 MB decoded) is ~180 KB on disk and takes ~50 ms to write."""
    channels = {0: 1, 2: 3, 4: 2, 6: 4}[colour_type]
    row = b"\x00" * (1 + width * channels * bit_depth // 8)  # filter byte + samples
    compressor = zlib.compressobj(9)
    body = bytearray()
    for _ in range(height):
        body += compressor.compress(row)
    body += compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", bytes(body))
        + png_chunk(b"IEND", b"")
    )
    return path


def _segments(data: bytes) -> list[tuple[int, int, int]]:
    """(marker, start, end) of each JPEG segment; a scan runs to the next non-RST marker."""
    found, i = [], 2
    while i < len(data):
        marker = data[i + 1]
        if marker == 0xD9:
            found.append((marker, i, i + 2))
            break
        end = i + 2 + struct.unpack(">H", data[i + 2 : i + 4])[0]
        if marker == 0xDA:
            while True:
                end = data.index(b"\xff", end)
                if data[end + 1] == 0 or 0xD0 <= data[end + 1] <= 0xD7:
                    end += 2
                    continue
                break
        found.append((marker, i, end))
        i = end
    return found


def write_many_scans_jpeg(path: Path, size: int, scans: int) -> Path:
    """A valid progressive JPEG whose smallest scan is repeated ``scans`` times: every scan
    walks all the image's blocks, so decoding takes time in proportion to size x scans while
    the file stays small (4096 px and 3,000 scans: ~165 KB, ~1.5-3 s to decode)."""
    buffer = io.BytesIO()
    Image.new("L", (size, size), 128).save(buffer, "JPEG", progressive=True, quality=90)
    data = buffer.getvalue()
    scans_found = [(start, end) for marker, start, end in _segments(data) if marker == 0xDA]
    start, end = min(scans_found, key=lambda span: span[1] - span[0])
    eoi = data.rindex(b"\xff\xd9")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data[:eoi] + data[start:end] * scans + b"\xff\xd9")
    return path


def write_large_jpeg(path: Path, width: int, height: int, mode: str = "L") -> Path:
    """A real baseline JPEG of ``width`` x ``height`` (e.g. 100 Mpx), flat with a gradient
    band so it is not trivially empty."""
    image = Image.new(mode, (width, height), 90 if mode == "L" else (90, 120, 60))
    image.paste(200 if mode == "L" else (200, 80, 40), (0, 0, width, height // 8))
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, "JPEG", quality=85)
    return path


def write_sparse(path: Path, size: int, head: bytes = b"") -> Path:
    """A sparse file of ``size`` bytes starting with ``head``: takes no disk space."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(head)
        handle.truncate(size)
    return path


def make_deep_photo(root: Path, depth: int, name_length: int, photo: bytes) -> str:
    """A photo at the bottom of ``depth`` nested folders, created relative to open folder
    descriptors so the total path may exceed PATH_MAX; returns that path."""
    root.mkdir(parents=True, exist_ok=True)
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    parts = [str(root)]
    try:
        for level in range(depth):
            name = f"{level:05d}" + "d" * max(0, name_length - 5)
            os.mkdir(name, dir_fd=fd)
            child = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = child
            parts.append(name)
        out = os.open("deep.jpg", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
        with os.fdopen(out, "wb") as handle:
            handle.write(photo)
    finally:
        os.close(fd)
    return os.path.join(*parts, "deep.jpg")


def remove_deep_tree(top: Path) -> None:
    """Remove a tree too deep for shutil.rmtree's recursion, bottom up, by descriptors."""
    chain = [os.open(top, os.O_RDONLY | os.O_DIRECTORY)]
    names: list[str] = []
    try:
        while True:
            subdirs = [
                entry.name for entry in os.scandir(chain[-1]) if entry.is_dir(follow_symlinks=False)
            ]
            for entry in os.scandir(chain[-1]):
                if not entry.is_dir(follow_symlinks=False):
                    os.unlink(entry.name, dir_fd=chain[-1])
            if not subdirs:
                if not names:
                    break
                os.close(chain.pop())
                os.rmdir(names.pop(), dir_fd=chain[-1])
                continue
            names.append(subdirs[0])
            chain.append(os.open(subdirs[0], os.O_RDONLY | os.O_DIRECTORY, dir_fd=chain[-1]))
    finally:
        for fd in chain:
            os.close(fd)
    os.rmdir(top)
