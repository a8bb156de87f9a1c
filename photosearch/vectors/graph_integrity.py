"""Checks on a saved hnswlib graph file before hnswlib is allowed to read it.

hnswlib trusts its file: a damaged neighbour id makes every search read out of bounds (a
segfault), and scrambled vectors give wrong results without any error. So each save records a
checksum in the commit point and each load verifies it first.

The checksum is XXH3-128 (xxhash): the threat is damage (disk errors, partial copies, edits),
not an attacker, and it hashes at about 10 GB/s against SHA-256's 1-1.5 GB/s, so a 1.7 GB graph
(1M photos) verifies in about 0.5 s, reading included, instead of 2 s (measured on a busy 2-core
machine by benchmarks/bench_catalog_check.py --hash-gb 1.7). hnswlib also writes its file with
a C++ stream that ignores a full disk, so ``expected_size`` walks the file's own layout to catch
a short write. A graph saved before checksums existed gets ``check_links`` instead (every
neighbour id in bounds).
"""

from __future__ import annotations

import struct
from pathlib import Path

import xxhash

ALGORITHM = "xxh3-128"
READ_BYTES = 8 * 1024 * 1024
# hnswlib's header: offsetLevel0, max_elements, cur_element_count, size_data_per_element,
# label_offset, offsetData (size_t each), maxlevel (int), enterpoint (uint), maxM, maxM0, M
# (size_t), mult (double), ef_construction (size_t).
_HEADER = struct.Struct("<QQQQQQiIQQQdQ")


class GraphFileDamaged(Exception):
    """A graph file is shorter or longer than its own header says, or fails its checksum."""


def checksum(path: Path) -> dict:
    """The record a commit point keeps for ``path``: algorithm, size and digest."""
    return {"algorithm": ALGORITHM, "size": path.stat().st_size, "digest": _digest(path)}


def verify(path: Path, recorded: dict) -> None:
    """Raise GraphFileDamaged unless ``path`` matches a record made by ``checksum``."""
    if recorded.get("algorithm") != ALGORITHM:
        raise GraphFileDamaged(f"unknown checksum algorithm {recorded.get('algorithm')!r}")
    size = path.stat().st_size
    if size != recorded.get("size"):
        raise GraphFileDamaged(f"{path.name} is {size} bytes, {recorded.get('size')} were saved")
    if _digest(path) != recorded.get("digest"):
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
    _check_lists(level0[:, 0] & 0xFFFF, level0[:, 1 : 1 + max_m0], max_m0, count, path)
    rest, offset, list_words = data[level0_bytes:], 0, 1 + max_m
    for _ in range(count):
        size = int(rest[offset : offset + 4].view("<u4")[0]) if offset + 4 <= rest.size else -1
        if size < 0 or size % (list_words * 4) or offset + 4 + size > rest.size:
            raise GraphFileDamaged(f"{path.name} has a damaged upper-level link list")
        if size:
            lists = rest[offset + 4 : offset + 4 + size].view("<u4").reshape(-1, list_words)
            _check_lists(lists[:, 0] & 0xFFFF, lists[:, 1:], max_m, count, path)
        offset += 4 + size


def _check_lists(counts, ids, capacity: int, elements: int, path: Path) -> None:  # noqa: ANN001
    import numpy as np

    if (counts > capacity).any():
        raise GraphFileDamaged(f"{path.name} has a link count over its capacity")
    used = np.arange(ids.shape[1])[None, :] < counts[:, None]
    if (ids[used] >= elements).any():
        raise GraphFileDamaged(f"{path.name} has neighbour ids past its last element")


def _digest(path: Path) -> str:
    hasher = xxhash.xxh3_128()
    with path.open("rb") as handle:
        while block := handle.read(READ_BYTES):
            hasher.update(block)
    return hasher.hexdigest()


def element_count(path: Path) -> int:
    """How many vectors a graph file's header says it holds (0 when unreadable)."""
    try:
        with path.open("rb") as handle:
            header = handle.read(_HEADER.size)
    except OSError:
        return 0
    return _HEADER.unpack(header)[2] if len(header) == _HEADER.size else 0


def holds_saved_vectors(directory: Path) -> bool:
    """True when any graph or slot file in ``directory`` holds vectors: the library has been
    indexed, so an empty catalog beside it is damage, not a new library."""
    try:
        return any(element_count(path) > 0 for path in directory.glob("*.hnsw")) or any(
            path.stat().st_size > 64
            for path in directory.glob("*.slots")  # a header and more
        )
    except OSError:
        return False
