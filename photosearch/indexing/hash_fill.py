"""Perceptual hashes for photos encoded before the catalog kept them (schema v4).

New photos get their hash from the decode the encoder already does (indexing.encode_pending).
Photos encoded by an older version have a vector but no hash; ``fill_missing_hashes`` decodes
each of them once, in the same worker pool and under the same time and memory limits, and
writes the hash a batch at a time: ``photosearch index`` runs it after encoding, and an
interrupted run resumes from whatever the catalog still lacks. A photo that fails to decode
keeps no hash (it is tried again next run; a changed file is re-encoded anyway).
"""

from __future__ import annotations

import logging
import os
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future

from sqlalchemy import exists, select, update

from photosearch.catalog import Catalog, Folder, Photo, Vector
from photosearch.files.decode_pool import DecodePool
from photosearch.files.imaging import DecodedPhoto, DecodeLimits
from photosearch.indexing.encode import IndexProgress, ProgressCallback
from photosearch.models.bundle import Preprocessing

log = logging.getLogger(__name__)

BATCH = 64  # hashes written per transaction


def photos_without_hash(catalog: Catalog, model_id: int) -> list[tuple[int, str]]:
    """(id, path) of photos in online folders that have a vector for ``model_id`` but no
    perceptual hash, in id order."""
    encoded = exists().where(Vector.photo_id == Photo.id, Vector.model_id == model_id)
    with catalog.session() as session:
        rows = session.execute(
            select(Photo.id, Photo.path)
            .join(Folder, Folder.id == Photo.folder_id)
            .where(
                Photo.phash.is_(None),
                Photo.status == "ok",
                Photo.present(),
                Folder.online.is_(True),
                encoded,
            )
            .order_by(Photo.id)
        )
        return [(int(pid), str(path)) for pid, path in rows]


def fill_missing_hashes(
    catalog: Catalog,
    model_id: int,
    preprocessing: Preprocessing,
    *,
    should_stop: Callable[[], bool] | None = None,
    progress: ProgressCallback | None = None,
    decode_workers: int | None = None,
    limits: DecodeLimits | None = None,
) -> int:
    """Hash every photo ``photos_without_hash`` lists; returns how many got a hash. Stops
    between batches when ``should_stop()`` turns True (what is done stays written); reports
    each batch to ``progress`` like the encoder does."""
    todo = photos_without_hash(catalog, model_id)
    if not todo:
        return 0
    log.info("computing perceptual hashes of %d photos indexed before they were kept", len(todo))
    started = time.monotonic()
    done = 0
    workers = min(decode_workers or max(1, min(4, os.cpu_count() or 1)), len(todo))
    filled = 0
    window: deque[tuple[int, Future]] = deque()
    items = iter(todo)
    batch: dict[int, str] = {}
    with DecodePool(workers, preprocessing, limits) as pool:
        while True:
            while len(window) < workers * 4 and (item := next(items, None)) is not None:
                window.append((item[0], pool.submit(item[1])))
            if not window:
                break
            pid, future = window.popleft()
            decoded = future.result()
            done += 1
            if isinstance(decoded, DecodedPhoto) and decoded.phash is not None:
                batch[pid] = decoded.phash
            if len(batch) >= BATCH or not window:
                filled += _write(catalog, batch)
                batch = {}
                if progress:
                    progress(
                        IndexProgress(done, len(todo), done - filled, time.monotonic() - started)
                    )
                if should_stop and should_stop():
                    break
    return filled + _write(catalog, batch)


def _write(catalog: Catalog, hashes: dict[int, str]) -> int:
    if not hashes:
        return 0
    with catalog.session() as session:
        for pid, value in hashes.items():
            session.execute(
                update(Photo).where(Photo.id == pid, Photo.phash.is_(None)).values(phash=value)
            )
    return len(hashes)
