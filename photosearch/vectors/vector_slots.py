"""The one copy at rest of a model's vectors: an append-only file of 16-bit vectors that the
catalog's vector rows point into (schema v6).

The catalog row of a (photo, model) vector holds either the float32 vector itself ("inline",
what a new vector is written as, in the same transaction as its photo) or a 17-byte reference
into this file: a tag byte, the slot number and an XXH3-64 checksum of the slot's bytes. The
store's owner moves inline vectors here (``spill``) when it saves, so between saves the catalog
holds only what changed, and at rest each vector is here once, at half the size, beside the
graph that is rebuilt from it.

A slot is a vector as int16 steps of a per-vector power-of-two scale (2 bytes a value plus 4),
cut toward zero so that no similarity can exceed 1. Chosen by measurement over float16, which is
as compact: on benchmarks/bench_stored_vectors.py's 100k real vectors (100 caption queries) the
recall@10/50/1000 of exact search against float32 is 0.999/1.0/1.0, float16's 0.998/0.9996/
0.9998 (scores move by 6.4e-6 on average against 8.6e-6), and an HNSW graph of 20k built from
it finds what one built from float32 finds (0.995/0.9954/0.9975 both). The encoder's output is
rounded to it before anything stores or searches it (``as_stored``), so the graph, the catalog
and this file agree exactly.

Crash safety without a transaction spanning two files: a slot is written and fsynced before any
catalog row refers to it, and a reference is only ever checked against the bytes it names. A
kill before the catalog commits leaves an unreferenced slot (harmless garbage); a damaged,
truncated or missing file fails the checksum of the references into it, and their photos are
encoded again (never a wrong vector). Slots are never rewritten, so a catalog restored from a
backup still finds its vectors. Appends from several processes are serialised by an exclusive
``flock`` on the file.

Layout: a 64-byte header (magic, dimension), then one row per slot: the scale (float32), then
``dim`` int16 values, little-endian.
"""

from __future__ import annotations

import errno
import logging
import os
import struct
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import xxhash

try:
    import fcntl
except ImportError:  # Windows: one writer per library (the write lock) is all there is
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

MAGIC = b"PSVSLOT1"
HEADER = struct.Struct("<8sI52x")  # 64 bytes: rows start aligned
REFERENCE_TAG = b"@"
_REFERENCE = struct.Struct("<cQQ")
REFERENCE_BYTES = _REFERENCE.size  # 17: odd, so never an inline vector; in schema v6 too


class SlotFileDamaged(Exception):
    """The file's header is not a slot file of this dimension."""


def as_stored(vectors: np.ndarray) -> np.ndarray:
    """``vectors`` as a slot gives them back (float32): what an encoder's output is stored and
    searched as, so the graph, the catalog and the slot file always agree. Applying it twice
    changes nothing (the scale is a power of two)."""
    return _dequantize(_quantize(np.asarray(vectors, dtype=np.float32)))


def _row_type(dim: int) -> np.dtype:
    return np.dtype([("scale", "<f4"), ("values", "<i2", (dim,))])


def _quantize(vectors: np.ndarray) -> np.ndarray:
    """Rows of (scale, int16 values): the scale is the smallest power of two that lets the
    largest value of the vector fit in 32767 steps, so scaling is exact both ways. Values are
    cut toward zero, never rounded up, so a unit vector's norm (and a photo's similarity to
    itself) never exceeds 1."""
    rows = np.zeros(len(vectors), dtype=_row_type(vectors.shape[1]))
    peak = np.abs(vectors).max(axis=1).astype(np.float64) / 32767
    mantissa, exponent = np.frexp(peak)  # peak = mantissa * 2**exponent, 0.5 <= mantissa < 1
    scale = np.ldexp(1.0, np.where(mantissa == 0.5, exponent - 1, exponent)).astype(np.float32)
    rows["scale"] = scale
    rows["values"] = np.trunc(vectors / scale[:, None]).astype(np.int16)
    return rows


def _dequantize(rows: np.ndarray) -> np.ndarray:
    return rows["values"].astype(np.float32) * rows["scale"][:, None]


def is_reference(blob: bytes) -> bool:
    return len(blob) == REFERENCE_BYTES and blob[:1] == REFERENCE_TAG


def slot_of(blob: bytes) -> int:
    return _REFERENCE.unpack(blob)[1]


class VectorSlots:
    """One model's slot file (``<stem>.slots`` in the vectors directory)."""

    def __init__(self, path: Path, dim: int) -> None:
        self.path = path
        self.dim = dim
        self.row_type = _row_type(dim)
        self.row_bytes = self.row_type.itemsize

    def append(self, vectors: np.ndarray) -> list[bytes]:
        """Write ``vectors`` (rows, float32) as slots, flushed to disk; returns one reference
        per row for the catalog to store."""
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.dim:
            raise ValueError(f"vectors of shape {vectors.shape} for a {self.dim}-d slot file")
        if not len(vectors):
            return []
        data = _quantize(vectors).tobytes()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while (first := self._write(data)) is None:
            pass  # the file was replaced meanwhile (moved aside by another writer): again
        step = self.row_bytes
        return [
            _REFERENCE.pack(
                REFERENCE_TAG, first + n, xxhash.xxh3_64_intdigest(data[n * step : (n + 1) * step])
            )
            for n in range(len(vectors))
        ]

    def _write(self, data: bytes) -> int | None:
        """Write whole rows after the last whole slot; returns the first slot number, or None
        when the file at ``path`` changed before the lock was ours."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            with _exclusive(fd):
                if not _same_file(fd, self.path):
                    return None
                size = os.fstat(fd).st_size
                if size >= HEADER.size and not self._header_ok(os.pread(fd, HEADER.size, 0)):
                    # nothing in it can be trusted (every reference into it fails its
                    # checksum): kept aside for inspection, and a new file is started
                    aside = self.path.with_name(f"{self.path.name}.damaged-{os.getpid()}")
                    os.replace(self.path, aside)
                    log.warning(
                        "vector slot file %s is damaged; moved aside to %s", self.path, aside
                    )
                    return None
                if size < HEADER.size:  # new, or its header was cut short by a kill
                    _write_all(fd, HEADER.pack(MAGIC, self.dim), 0)
                    size = HEADER.size
                # a slot torn by a kill is skipped: rows always start on a row boundary
                first = -(-(size - HEADER.size) // self.row_bytes)
                _write_all(fd, data, HEADER.size + first * self.row_bytes)
                os.fsync(fd)
                return first
        finally:
            os.close(fd)

    def read(self, references: Sequence[bytes]) -> tuple[np.ndarray, np.ndarray]:
        """(found, vectors): float32 vectors for the references whose slot exists and matches
        its checksum (``found`` marks them, in order; the others are zero rows)."""
        found = np.zeros(len(references), dtype=bool)
        vectors = np.zeros((len(references), self.dim), dtype=np.float32)
        if not references:
            return found, vectors
        try:
            with self.path.open("rb") as handle:
                self._check_header(handle.read(HEADER.size))
                rows = (os.fstat(handle.fileno()).st_size - HEADER.size) // self.row_bytes
                if rows <= 0:
                    return found, vectors
                matrix = np.memmap(
                    handle, dtype=self.row_type, mode="r", offset=HEADER.size, shape=(rows,)
                )
                unpacked = [_REFERENCE.unpack(reference) for reference in references]
                at = np.asarray([slot for _, slot, _ in unpacked], dtype=np.uint64)
                inside = np.flatnonzero(at < rows)
                gathered = np.asarray(matrix[at[inside].astype(np.int64)])
                sound = [
                    xxhash.xxh3_64_intdigest(row.tobytes()) == unpacked[n][2]
                    for row, n in zip(gathered, inside.tolist(), strict=True)
                ]
                good = inside[np.asarray(sound, dtype=bool)]
                vectors[good] = _dequantize(gathered[np.asarray(sound, dtype=bool)])
                found[good] = True
        except (FileNotFoundError, SlotFileDamaged):
            pass
        return found, vectors

    def _check_header(self, header: bytes) -> None:
        if not self._header_ok(header):
            raise SlotFileDamaged(f"{self.path.name} is not a {self.dim}-d vector slot file")

    def _header_ok(self, header: bytes) -> bool:
        return len(header) == HEADER.size and HEADER.unpack(header) == (MAGIC, self.dim)

    def size_on_disk(self) -> int:
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0


def decode(blobs: Sequence[bytes], dim: int, slots: VectorSlots) -> tuple[np.ndarray, np.ndarray]:
    """(found, float32 vectors) for catalog vector values: inline float32 vectors as they
    are, references read from ``slots``; anything else (a damaged row) is not found."""
    found = np.zeros(len(blobs), dtype=bool)
    vectors = np.zeros((len(blobs), dim), dtype=np.float32)
    referenced = [n for n, blob in enumerate(blobs) if is_reference(blob)]
    for n, blob in enumerate(blobs):
        if len(blob) == 4 * dim:
            vectors[n] = np.frombuffer(blob, dtype=np.float32)
            found[n] = True
    if referenced:
        ok, read = slots.read([blobs[n] for n in referenced])
        at = np.asarray(referenced, dtype=np.int64)
        vectors[at[ok]] = read[ok]
        found[at[ok]] = True
    return found, vectors


def _write_all(fd: int, data: bytes, offset: int) -> None:
    written = os.pwrite(fd, data, offset)
    if written != len(data):  # a full disk can cut a write short without raising
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "a vector slot file")


def _same_file(fd: int, path: Path) -> bool:
    try:
        on_disk = os.stat(path)
    except FileNotFoundError:
        return False
    opened = os.fstat(fd)
    return (opened.st_dev, opened.st_ino) == (on_disk.st_dev, on_disk.st_ino)


@contextmanager
def _exclusive(fd: int):  # noqa: ANN202 - a context manager
    if fcntl is None:
        yield
        return
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
