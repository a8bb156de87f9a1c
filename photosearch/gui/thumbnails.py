"""Thumbnails: generated in a background pool, cached on disk in the library directory.

A thumbnail's file name is the SHA-1 of the photo's path and mtime, so an edited photo gets a
new thumbnail and the photo folders are never written to. Workers return QImages (safe off the
GUI thread); the GUI thread turns them into pixmaps and keeps a bounded in-memory cache.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections import OrderedDict
from pathlib import Path

from PySide6.QtCore import QObject, QRunnable, QSize, Qt, QThread, QThreadPool, Signal
from PySide6.QtGui import QImage, QPixmap

from photosearch.errors import PhotosearchError
from photosearch.imaging import make_thumbnail

log = logging.getLogger(__name__)
DISK_SIZE = 256  # long side of the cached JPEG: sharp at 2x on a 128 px cell
MEMORY_ENTRIES = 1500  # ~1500 * 256*192*4 B = 295 MB worst case; a screen shows < 200


def thumbnail_key(path: str, mtime_ns: int) -> str:
    return hashlib.sha1(f"{path}\0{mtime_ns}".encode()).hexdigest()


class ThumbnailCache:
    """The on-disk cache: ``<library>/thumbnails/<aa>/<sha1>.jpg``."""

    def __init__(self, directory: Path):
        self.directory = directory

    def path_for(self, photo: str) -> Path:
        """Where the thumbnail of ``photo`` lives; raises OSError when the photo is gone."""
        key = thumbnail_key(photo, os.stat(photo).st_mtime_ns)
        return self.directory / key[:2] / f"{key}.jpg"

    def load_or_make(self, photo: str) -> QImage:
        """The cached thumbnail, made first if missing. Safe from any thread."""
        target = self.path_for(photo)
        if not target.is_file():
            image = make_thumbnail(Path(photo), DISK_SIZE)
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(f".{target.name}.{os.getpid()}.tmp")
            image.save(partial, "JPEG", quality=85)
            os.replace(partial, target)
        loaded = QImage(str(target))
        if loaded.isNull():
            target.unlink(missing_ok=True)
            raise PhotosearchError(f"cached thumbnail of {photo} was unreadable")
        return loaded

    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.directory.rglob("*.jpg") if p.is_file())

    def prune(self, max_bytes: int) -> int:
        """Delete the least recently written thumbnails until the cache fits; returns files
        removed. Called at start and when the limit changes, never while painting."""
        if not self.directory.is_dir():
            return 0
        files = [(p.stat(), p) for p in self.directory.rglob("*.jpg") if p.is_file()]
        total = sum(s.st_size for s, _ in files)
        removed = 0
        for stat, path in sorted(files, key=lambda item: item[0].st_mtime):
            if total <= max_bytes:
                break
            path.unlink(missing_ok=True)
            total -= stat.st_size
            removed += 1
        return removed


class _Signals(QObject):
    ready = Signal(str, QImage)
    failed = Signal(str, str)
    skipped = Signal(str)


class _ThumbnailJob(QRunnable):
    def __init__(self, cache: ThumbnailCache, photo: str, size: QSize, signals: _Signals,
                 generation: list[int], wanted: list[frozenset[str] | None]):
        super().__init__()
        self.cache, self.photo, self.size, self.signals = cache, photo, size, signals
        self.generation, self.started_in = generation, generation[0]
        self.wanted = wanted

    def run(self) -> None:
        if self.generation[0] != self.started_in:
            return  # asked for by a result set that has been replaced
        wanted = self.wanted[0]
        if wanted is not None and self.photo not in wanted:
            self.signals.skipped.emit(self.photo)  # scrolled past before its turn came
            return
        try:
            image = self.cache.load_or_make(self.photo).scaled(
                self.size, Qt.AspectRatioMode.KeepAspectRatio,
                Qt.TransformationMode.SmoothTransformation)
        except (OSError, PhotosearchError) as exc:
            self.signals.failed.emit(self.photo, str(exc))
            return
        self.signals.ready.emit(self.photo, image)


class ThumbnailLoader(QObject):
    """Asks for thumbnails by photo path; ``ready(path)`` fires when ``pixmap(path)`` has one.

    The most recently requested thumbnails are made first (what the user is looking at now),
    and ``forget_pending`` drops queued work when a new result set replaces the old one.
    """

    ready = Signal(str)

    def __init__(self, cache: ThumbnailCache, display_size: QSize, threads: int = 2,
                 parent: QObject | None = None):
        super().__init__(parent)
        self.cache = cache
        self.display_size = display_size
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(threads)
        self.pool.setThreadPriority(QThread.Priority.LowPriority)
        self._signals = _Signals(self)
        self._signals.ready.connect(self._on_ready)
        self._signals.failed.connect(self._on_failed)
        self._pixmaps: OrderedDict[str, QPixmap] = OrderedDict()
        self._pending: set[str] = set()
        self._signals.skipped.connect(self._on_skipped)
        self._wanted: list[frozenset[str] | None] = [None]  # None: every request is wanted
        self.pinned: set[str] = set()  # always made (e.g. the "like this" chip)
        self.failed: dict[str, str] = {}
        self.requested = 0  # thumbnails asked of the pool so far (tests check virtualisation)
        self._priority = 0
        self._generation = [0]  # bumped to skip queued jobs (QThreadPool.clear() on Python
        # runnables corrupts reference counts in PySide6 6.12)

    def pixmap(self, photo: str) -> QPixmap | None:
        """The thumbnail if ready, else None (and it is queued). GUI thread only."""
        found = self._pixmaps.get(photo)
        if found is not None:
            self._pixmaps.move_to_end(photo)
            return found
        if photo not in self._pending and photo not in self.failed:
            self._pending.add(photo)
            self.requested += 1
            self._priority = min(self._priority + 1, 2**30)
            self.pool.start(_ThumbnailJob(self.cache, photo, self.display_size, self._signals,
                                          self._generation, self._wanted), self._priority)
        return None

    def keep_only(self, photos: list[str]) -> None:
        """Queued thumbnails of other photos are skipped (the grid calls this with what it
        just painted, so fast scrolling through 100k photos does not decode them all)."""
        self._wanted[0] = frozenset(photos) | frozenset(self.pinned)

    def cached(self, photo: str) -> QPixmap | None:
        """The thumbnail if in memory; never queues work."""
        return self._pixmaps.get(photo)

    def forget_pending(self) -> None:
        self._generation[0] += 1
        self._pending.clear()
        self._priority = 0

    def wait(self, msecs: int = -1) -> bool:
        return self.pool.waitForDone(msecs)

    def _on_ready(self, photo: str, image: QImage) -> None:
        self._pending.discard(photo)
        self._pixmaps[photo] = QPixmap.fromImage(image)
        while len(self._pixmaps) > MEMORY_ENTRIES:
            self._pixmaps.popitem(last=False)
        self.ready.emit(photo)

    def _on_skipped(self, photo: str) -> None:
        self._pending.discard(photo)

    def _on_failed(self, photo: str, reason: str) -> None:
        self._pending.discard(photo)
        self.failed[photo] = reason
        log.info("no thumbnail for %s: %s", photo, reason)
        self.ready.emit(photo)
