"""The library's perceptual-hash table kept in a file beside the vectors, so that a one-shot
search folds copies without reading every photo's stored hash from the catalog (0.7 s of a
2 s search at 1M photos, benchmarks/bench_million_search.py).

The file records the catalog's hash generation (schema v7: triggers give it a new random value
whenever a photo row is inserted or deleted or its id, phash or missing_since changes) read in
the same SQLite snapshot as the hashes it holds. It is used only while that generation is the
catalog's current one and the XXH3 checksum over every byte after the checksum field matches,
so it is either exactly what the catalog would give or not used at all. Processes that write the
library rewrite it (atomically) after they change photos; readers never write it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np

from photosearch.vectors.atomic_write import write_atomically

FILE_NAME = "photo-hashes.bin"
MAGIC = b"PSHASH1\n"
# magic, checksum, generation, rows, colour cell width
HEADER = struct.Struct("<8sQqqq")
_CHECKSUM_END = 16  # the checksum covers everything after it: the header's rest and the arrays
ROW_BYTES = 8 * 6 + 2 * 3  # id, hash, mirror hash, cell, row in cell order, its cell; colour


@dataclass(frozen=True)
class SavedHashes:
    """The arrays of ``duplicates._HashTable`` (in the catalog's row order) and its colour
    cells of ``cell_width`` levels (``_HashTable.cells``: each row's cell, the rows sorted by it
    and the sorted cells), as saved at catalog hash ``generation``: a search reads them instead
    of computing them (60 ms at 1M photos)."""

    generation: int
    ids: np.ndarray  # int64
    own: np.ndarray  # uint64
    mirror: np.ndarray  # uint64
    colour: np.ndarray  # int16 [n, 3]
    cell_width: int
    cells: np.ndarray  # int64: each row's colour cell
    cell_order: np.ndarray  # int64: the rows sorted (stably) by colour cell
    sorted_cells: np.ndarray  # int64: cells[cell_order]


def write(path: Path, saved: SavedHashes) -> None:
    """Replace ``path`` with ``saved`` (temporary file, fsync, rename: a kill leaves the old
    file or the new one). Raises OSError when the directory cannot be written."""
    rows = len(saved.ids)
    arrays = [
        np.ascontiguousarray(saved.ids, dtype="<i8"),
        np.ascontiguousarray(saved.own, dtype="<u8"),
        np.ascontiguousarray(saved.mirror, dtype="<u8"),
        np.ascontiguousarray(saved.cells, dtype="<i8"),
        np.ascontiguousarray(saved.cell_order, dtype="<i8"),
        np.ascontiguousarray(saved.sorted_cells, dtype="<i8"),
        np.ascontiguousarray(saved.colour, dtype="<i2").reshape(rows, 3),
    ]
    rest = HEADER.pack(MAGIC, 0, saved.generation, rows, saved.cell_width)[_CHECKSUM_END:]
    checksum = _checksum(rest, arrays)
    header = HEADER.pack(MAGIC, checksum, saved.generation, rows, saved.cell_width)

    def put(handle: IO[bytes]) -> None:
        handle.write(header)
        for array in arrays:
            handle.write(array.tobytes())

    write_atomically(path, put)


def read(path: Path, generation: int) -> SavedHashes | None:
    """The file's table when it was saved at ``generation`` and is whole (size and checksum);
    None when it is missing, unreadable, of another generation or damaged in any way."""
    try:
        with path.open("rb") as handle:
            head = handle.read(HEADER.size)
            if len(head) < HEADER.size:
                return None
            magic, checksum, saved_at, rows, width = HEADER.unpack(head)
            if magic != MAGIC or saved_at != generation or rows < 0 or width < 1:
                return None
            body = handle.read(rows * ROW_BYTES + 1)
    except OSError:
        return None
    if len(body) != rows * ROW_BYTES:  # truncated, or longer than its header says
        return None
    at = 0

    def take(dtype: str, count: int) -> np.ndarray:
        nonlocal at
        array = np.frombuffer(body, dtype=dtype, count=count, offset=at)
        at += array.nbytes
        return array

    ids, own, mirror, cells, order, ordered = (
        take(t, rows) for t in ("<i8", "<u8", "<u8", "<i8", "<i8", "<i8")
    )
    colour = take("<i2", 3 * rows).reshape(rows, 3)
    if _checksum(head[_CHECKSUM_END:], [body]) != checksum:
        return None
    if rows and not (int(order.min()) >= 0 and int(order.max()) < rows):
        return None  # whole, yet not one this module wrote
    return SavedHashes(saved_at, ids, own, mirror, colour, width, cells, order, ordered)


def _checksum(header_rest: bytes, parts: list) -> int:
    import xxhash

    hasher = xxhash.xxh3_64()
    hasher.update(header_rest)
    for part in parts:
        hasher.update(part)
    return hasher.intdigest()
