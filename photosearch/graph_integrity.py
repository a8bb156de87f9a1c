"""Checks on a saved hnswlib graph file before hnswlib is allowed to read it.

hnswlib trusts its file: a damaged neighbour id makes every search read out of bounds (a
segfault), and scrambled vectors give wrong results without any error. So each save records a
checksum in the commit point and each load verifies it first.

The checksum is SHA-256 over fixed-size chunks, hashed on several threads (hashlib releases the
GIL): a 1.7 GB graph (1M photos) verifies in roughly a third of the time one hash would take,
and every byte is still checked. hnswlib also writes its file with a C++ stream that ignores a
full disk, so ``expected_size`` walks the file's own layout to catch a short write. A graph
saved before checksums existed gets ``check_links`` instead (every neighbour id in bounds).
"""

from __future__ import annotations

import hashlib
import os
import struct
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ALGORITHM = "sha256-chunked"
CHUNK_BYTES = 64 * 1024 * 1024
HASH_THREADS = max(1, min(4, os.cpu_count() or 1))
# hnswlib's header: offsetLevel0, max_elements, cur_element_count, size_data_per_element,
# label_offset, offsetData (size_t each), maxlevel (int), enterpoint (uint), maxM, maxM0, M
# (size_t), mult (double), ef_construction (size_t).
_HEADER = struct.Struct("<QQQQQQiIQQQdQ")


class GraphFileDamaged(Exception):
    """A graph file is shorter or longer than its own header says, or fails its checksum."""


def checksum(path: Path) -> dict:
    """The record a commit point keeps for ``path``: algorithm, size and chunk digests."""
    size = path.stat().st_size
    return {"algorithm": ALGORITHM, "size": size, "chunk_bytes": CHUNK_BYTES,
            "chunks": _chunk_digests(path, size, CHUNK_BYTES)}


def verify(path: Path, recorded: dict) -> None:
    """Raise GraphFileDamaged unless ``path`` matches a record made by ``checksum``."""
    if recorded.get("algorithm") != ALGORITHM:
        raise GraphFileDamaged(f"unknown checksum algorithm {recorded.get('algorithm')!r}")
    size = path.stat().st_size
    if size != recorded.get("size"):
        raise GraphFileDamaged(f"{path.name} is {size} bytes, {recorded.get('size')} were saved")
    chunk_bytes = int(recorded.get("chunk_bytes", 0))
    if chunk_bytes <= 0:
        raise GraphFileDamaged("checksum record has no chunk size")
    if _chunk_digests(path, size, chunk_bytes) != recorded.get("chunks"):
        raise GraphFileDamaged(f"{path.name} does not match its checksum")


def expected_size(path: Path) -> int:
    """The byte count hnswlib's header and per-element link lists add up to.

    Raises GraphFileDamaged when the file is too short to hold what its header announces.
    """
    with path.open("rb") as handle:
        header = handle.read(_HEADER.size)
        if len(header) < _HEADER.size:
            raise GraphFileDamaged(f"{path.name} is shorter than its header")
        fields = _HEADER.unpack(header)
        count, per_element = fields[2], fields[3]
        position = _HEADER.size + count * per_element
        handle.seek(position)
        data = handle.read()
    offset = 0
    read_u32 = struct.Struct("<I").unpack_from
    for _ in range(count):
        if offset + 4 > len(data):
            raise GraphFileDamaged(f"{path.name} ends inside its link lists")
        offset += 4 + read_u32(data, offset)[0]
    return position + offset


def check_links(path: Path) -> None:
    """Raise GraphFileDamaged when any neighbour id points past the last element or any link
    count exceeds its list. For graphs saved before checksums were recorded: it proves hnswlib
    will not read out of bounds, though not that the vectors are right."""
    import numpy as np

    with path.open("rb") as handle:
        fields = _HEADER.unpack(handle.read(_HEADER.size))
        data = np.fromfile(handle, dtype=np.uint8)
    count, per_element, max_m, max_m0 = fields[2], fields[3], fields[8], fields[9]
    level0_bytes = count * per_element
    if per_element % 4 or per_element < 4 * (1 + max_m0) or data.size < level0_bytes:
        raise GraphFileDamaged(f"{path.name} is shorter than its elements")
    if count and fields[7] >= count:
        raise GraphFileDamaged(f"{path.name} has an entry point past its last element")
    level0 = data[:level0_bytes].view("<u4").reshape(count, per_element // 4)
    _check_lists(level0[:, 0] & 0xFFFF, level0[:, 1:1 + max_m0], max_m0, count, path)
    rest, offset, list_words = data[level0_bytes:], 0, 1 + max_m
    for _ in range(count):
        size = int(rest[offset:offset + 4].view("<u4")[0]) if offset + 4 <= rest.size else -1
        if size < 0 or size % (list_words * 4) or offset + 4 + size > rest.size:
            raise GraphFileDamaged(f"{path.name} has a damaged upper-level link list")
        if size:
            lists = rest[offset + 4:offset + 4 + size].view("<u4").reshape(-1, list_words)
            _check_lists(lists[:, 0] & 0xFFFF, lists[:, 1:], max_m, count, path)
        offset += 4 + size


def _check_lists(counts, ids, capacity: int, elements: int, path: Path) -> None:  # noqa: ANN001
    import numpy as np

    if (counts > capacity).any():
        raise GraphFileDamaged(f"{path.name} has a link count over its capacity")
    used = np.arange(ids.shape[1])[None, :] < counts[:, None]
    if (ids[used] >= elements).any():
        raise GraphFileDamaged(f"{path.name} has neighbour ids past its last element")


def _chunk_digests(path: Path, size: int, chunk_bytes: int) -> list[str]:
    starts = range(0, max(size, 1), chunk_bytes)
    fd = os.open(path, os.O_RDONLY)
    try:
        def digest(start: int) -> str:
            hasher = hashlib.sha256()
            end = min(start + chunk_bytes, size)
            position = start
            while position < end:
                block = os.pread(fd, min(8 * 1024 * 1024, end - position), position)
                if not block:
                    raise GraphFileDamaged(f"{path.name} shrank while being checked")
                hasher.update(block)
                position += len(block)
            return hasher.hexdigest()

        if len(starts) == 1:
            return [digest(0)]
        with ThreadPoolExecutor(HASH_THREADS) as pool:
            return list(pool.map(digest, starts))
    finally:
        os.close(fd)


def element_count(path: Path) -> int:
    """How many vectors a graph file's header says it holds (0 when unreadable)."""
    try:
        with path.open("rb") as handle:
            header = handle.read(_HEADER.size)
    except OSError:
        return 0
    return _HEADER.unpack(header)[2] if len(header) == _HEADER.size else 0


def holds_saved_vectors(directory: Path) -> bool:
    """True when any graph file in ``directory`` holds vectors: the library has been indexed,
    so an empty catalog beside it is damage, not a new library."""
    try:
        return any(element_count(path) > 0 for path in directory.glob("*.hnsw"))
    except OSError:
        return False
