"""The encoding pipeline: pending photos -> decode pool -> batched encoder -> catalog + store.

Decoding runs in worker processes (``DecodePool``: a time limit per photo, one memory budget
for all) a bounded number of photos ahead of the encoder, so the encoder never waits on the
disk. Each batch's vectors and metadata are committed in one transaction; an interrupted run
loses at most the batch in flight, and the next run resumes from what the catalog says is still
pending.
"""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass

import numpy as np
from sqlalchemy import Select, delete, exists, func, select, update

from photosearch.catalog import Catalog, Folder, Photo, PhotoStatus, Vector
from photosearch.files.decode_pool import DecodePool
from photosearch.files.imaging import DecodedPhoto, DecodeLimits
from photosearch.files.photo_files import printable
from photosearch.models.runtime import Encoder
from photosearch.vectors.store import VectorStore
from photosearch.vectors.vector_slots import as_stored

log = logging.getLogger(__name__)
SAVE_EVERY_SECONDS = 60.0
# Photos per encoder call. On CPU, 8 encodes as fast as 32 (1,000 Flickr8k photos: 29.8 s vs
# 32.3 s) while ONNX Runtime's arena peaks far lower (process peak 381 MB vs 1,064 MB;
# benchmarks/bench_memory.py).
BATCH_SIZE = 8


@dataclass(frozen=True)
class IndexProgress:
    """A progress report: ``done`` of ``total`` photos handled in this run."""

    done: int
    total: int
    failed: int
    elapsed_s: float
    model: str | None = None  # set while encoding for a model the library is switching to

    @property
    def rate(self) -> float:
        return self.done / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def eta_s(self) -> float | None:
        return (self.total - self.done) / self.rate if self.rate > 0 else None


@dataclass(frozen=True)
class IndexResult:
    encoded: int
    failed: int
    vanished: int
    seconds: float
    stopped: bool


ProgressCallback = Callable[[IndexProgress], None]


def pending_photos(catalog: Catalog, model_id: int) -> list[tuple[int, str]]:
    """(id, path) of decodable photos in online folders that have no vector for ``model_id``
    yet, in id order."""
    with catalog.session() as session:
        rows = session.execute(_pending(select(Photo.id, Photo.path), model_id).order_by(Photo.id))
        return [(int(i), str(p)) for i, p in rows]


def pending_count(catalog: Catalog, model_id: int) -> int:
    """How many photos ``pending_photos`` would return."""
    with catalog.session() as session:
        return int(session.scalar(_pending(select(func.count(Photo.id)), model_id)) or 0)


def _pending(query: Select, model_id: int) -> Select:
    has_vector = exists().where(Vector.photo_id == Photo.id, Vector.model_id == model_id)
    return (
        query.select_from(Photo)
        .join(Folder, Folder.id == Photo.folder_id)
        .where(
            Photo.status == PhotoStatus.OK, Photo.present(), Folder.online.is_(True), ~has_vector
        )
    )


def encode_pending(
    catalog: Catalog,
    store: VectorStore,
    encoder: Encoder,
    model_id: int,
    *,
    progress: ProgressCallback | None = None,
    should_stop: Callable[[], bool] | None = None,
    batch_size: int = BATCH_SIZE,
    decode_workers: int | None = None,
    save: bool = True,
    limits: DecodeLimits | None = None,
) -> IndexResult:
    """Encode every pending photo. Stops between batches when ``should_stop()`` turns True.

    Photos are decoded in worker processes under ``limits`` (default: ``DecodeLimits.current()``,
    i.e. the time limit per photo and the memory all decodes share); a photo over a limit is
    recorded as failed with the reason. ``save=False`` leaves saving the store to the caller
    (the watcher saves on a timer; the catalog holds every vector, so an unsaved store is
    repaired on the next open).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, not {batch_size}")
    todo = pending_photos(catalog, model_id)
    started = time.monotonic()
    done = failed = vanished = encoded = 0
    last_save = started
    workers = min(decode_workers or max(1, min(4, os.cpu_count() or 1)), max(1, len(todo)))
    stopped = False
    preprocessing = encoder.config.preprocessing
    if not todo:
        return IndexResult(0, 0, 0, time.monotonic() - started, False)
    try:
        with DecodePool(workers, preprocessing, limits) as pool:
            for batch in _decoded_batches(pool, todo, batch_size):
                ok = [(pid, path, d) for pid, path, d in batch if isinstance(d, DecodedPhoto)]
                bad = [(pid, path, d) for pid, path, d in batch if isinstance(d, Exception)]
                vectors = (  # rounded as the slot file keeps them: the graph holds the same
                    as_stored(encoder.encode_images(np.stack([d.pixels for _, _, d in ok])))
                    if ok
                    else np.zeros((0, encoder.embed_dim), dtype=np.float32)
                )
                vanished += _commit_batch(catalog, model_id, ok, bad, vectors)
                store.add([pid for pid, _, _ in ok], vectors)
                encoded += len(ok)
                failed += len(bad)
                done += len(batch)
                if progress:
                    progress(IndexProgress(done, len(todo), failed, time.monotonic() - started))
                if time.monotonic() - last_save > SAVE_EVERY_SECONDS:
                    store.save()
                    last_save = time.monotonic()
                if should_stop and should_stop():
                    stopped = True
                    break
    finally:
        if encoded:
            encoder.release_memory()
        if save and store.dirty:
            store.save()
    failed -= vanished
    return IndexResult(encoded, failed, vanished, time.monotonic() - started, stopped)


def _decoded_batches(
    pool: DecodePool,
    todo: list[tuple[int, str]],
    batch_size: int,
) -> Iterator[list[tuple[int, str, DecodedPhoto | Exception]]]:
    """Yield batches in order while the pool decodes up to three batches ahead."""
    window: deque[tuple[int, str, Future]] = deque()
    items = iter(todo)
    ahead = batch_size * 3

    def fill() -> None:
        while len(window) < ahead:
            try:
                pid, path = next(items)
            except StopIteration:
                return
            window.append((pid, path, pool.submit(path)))

    try:
        fill()
        batch: list[tuple[int, str, DecodedPhoto | Exception]] = []
        while window:
            pid, path, future = window.popleft()
            batch.append((pid, path, future.result()))
            fill()
            if len(batch) == batch_size:
                yield batch
                batch = []
        if batch:
            yield batch
    finally:
        for _, _, future in window:
            future.cancel()


def _commit_batch(
    catalog: Catalog,
    model_id: int,
    ok: list[tuple[int, str, DecodedPhoto]],
    bad: list[tuple[int, str, Exception]],
    vectors: np.ndarray,
) -> int:
    """Write one batch in one transaction; returns how many failed photos had vanished."""
    vanished = 0
    with catalog.session() as session:
        for (pid, _, decoded), vector in zip(ok, vectors, strict=True):
            info = decoded.info
            session.execute(
                update(Photo)
                .where(Photo.id == pid)
                .values(
                    width=info.width,
                    height=info.height,
                    taken_at=info.taken_at,
                    camera=info.camera,
                    status=PhotoStatus.OK,
                    error=None,
                    phash=decoded.phash,
                )
            )
            session.merge(
                Vector(
                    photo_id=pid,
                    model_id=model_id,
                    vector=np.asarray(vector, dtype=np.float32).tobytes(),
                )
            )
        for pid, path, error in bad:
            if not os.path.lexists(path):
                root = session.scalar(
                    select(Folder.path)
                    .join(Photo, Photo.folder_id == Folder.id)
                    .where(Photo.id == pid)
                )
                if root is not None and not os.path.isdir(root):
                    continue  # its folder went offline: keep it pending until it returns
                session.execute(delete(Photo).where(Photo.id == pid))  # deleted mid-scan
                vanished += 1
                continue
            session.execute(
                update(Photo)
                .where(Photo.id == pid)
                .values(status=PhotoStatus.FAILED, error=printable(str(error)))
            )
    return vanished
