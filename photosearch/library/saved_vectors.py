"""A model's saved vectors as the catalog and its slot file hold them together (schema v6).

The catalog row of a vector is inline float32 (new, not yet moved) or a reference into the
model's slot file (see photosearch.vectors.vector_slots). Reading decodes both;
``spill`` moves inline vectors into the file, a chunk per transaction, so a kill leaves every
vector readable in one form or the other. A reference that fails its checksum (a damaged,
truncated or missing file) costs its photo a re-encode: the row is deleted, which makes the
photo pending, and one warning line says so. Never a wrong vector.

Reading needs no SQLAlchemy (a one-shot search re-scores through it); the writers' steps
import the catalog's ORM queries when they run.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from photosearch.catalog import Catalog, vector_changes
from photosearch.catalog.reads import vector_values
from photosearch.vectors import vector_slots
from photosearch.vectors.store import store_stem
from photosearch.vectors.vector_slots import VectorSlots

log = logging.getLogger(__name__)

SPILL_CHUNK = 5_000  # vectors per transaction (7.5 MB at 384-d)
COMPACT_FROM_BYTES = 16 << 20


def slots_for(vectors_dir: Path, identity: str, dim: int) -> VectorSlots:
    """The slot file of one model identity (beside its graph files)."""
    return VectorSlots(vectors_dir / f"{store_stem(identity)}.slots", dim)


def read(
    catalog: Catalog, model_id: int, slots: VectorSlots, ids: Sequence[int]
) -> tuple[np.ndarray, np.ndarray]:
    """(ids, float32 vectors) for those of ``ids`` with a readable vector for ``model_id``."""
    found, blobs = vector_values(catalog, model_id, ids)
    return _decoded(catalog, model_id, slots, found, blobs)


def read_present(
    catalog: Catalog, model_id: int, slots: VectorSlots, ids: Sequence[int]
) -> tuple[np.ndarray, np.ndarray]:
    """As ``read``, for the photos among ``ids`` whose files are present."""
    found, blobs = vector_changes.present_vector_values(catalog, model_id, ids)
    return _decoded(catalog, model_id, slots, found, blobs)


def spill(catalog: Catalog, model_id: int, slots: VectorSlots) -> int:
    """Move every inline vector of ``model_id`` into the slot file; returns how many moved.

    Each chunk's slots are on disk before the catalog refers to them, and a row changed
    meanwhile keeps its new value (the replacement compares the old one), so concurrent
    writers and a kill at any point lose nothing."""
    if catalog.readonly:
        return 0
    from photosearch.catalog.queries import inline_vectors, replace_vector_values

    moved, after = 0, 0
    while rows := inline_vectors(catalog, model_id, after, SPILL_CHUNK):
        after = rows[-1][0]
        sound = [(pid, blob) for _, pid, blob in rows if len(blob) == 4 * slots.dim]
        damaged = [(pid, blob) for _, pid, blob in rows if len(blob) != 4 * slots.dim]
        if damaged:
            _forget(catalog, model_id, damaged, "stored with the wrong size")
        if not sound:
            continue
        vectors = np.frombuffer(b"".join(blob for _, blob in sound), dtype=np.float32)
        references = slots.append(vectors.reshape(-1, slots.dim))
        moved += replace_vector_values(
            catalog,
            model_id,
            [(pid, blob, ref) for (pid, blob), ref in zip(sound, references, strict=True)],
        )
    if moved:
        log.info("moved %d vectors into %s", moved, slots.path)
    return moved


def worth_compacting(catalog: Catalog, moved: int, dim: int) -> bool:
    """True when ``moved`` vectors left at least 16 MB and a quarter of the catalog file
    empty (shrunk rows leave their pages in the file, not on the free list)."""
    from photosearch.catalog.queries import catalog_bytes

    left = moved * 4 * dim
    return left >= max(COMPACT_FROM_BYTES, catalog_bytes(catalog) // 4)


def _decoded(
    catalog: Catalog,
    model_id: int,
    slots: VectorSlots,
    ids: list[int],
    blobs: list[bytes],
) -> tuple[np.ndarray, np.ndarray]:
    found, vectors = vector_slots.decode(blobs, slots.dim, slots)
    if not found.all():
        lost = [(pid, blobs[n]) for n, pid in enumerate(ids) if not found[n]]
        _forget(catalog, model_id, lost, f"missing or damaged in {slots.path}")
    return np.asarray(ids, dtype=np.int64)[found], vectors[found]


def _forget(catalog: Catalog, model_id: int, rows: list[tuple[int, bytes]], why: str) -> None:
    """Unreadable vectors: their photos become pending (encoded again by the next index)."""
    if catalog.readonly:
        log.warning(
            "%d saved vectors are %s; those photos are left out of searches until "
            "`photosearch index` encodes them again",
            len(rows),
            why,
        )
        return
    from photosearch.catalog.queries import replace_vector_values

    replace_vector_values(catalog, model_id, [(pid, blob, None) for pid, blob in rows])
    log.warning("%d saved vectors are %s; those photos will be encoded again", len(rows), why)
