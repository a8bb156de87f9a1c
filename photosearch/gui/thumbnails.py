"""Thumbnails: generated in a background pool, cached on disk in the library directory.

A thumbnail's file name is the SHA-1 of the photo's path and mtime, so an edited photo gets a
new thumbnail and the photo folders are never written to. Workers return QImages (safe off the
GUI thread); the GUI thread turns them into pixmaps and keeps a bounded in-memory cache.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections import OrderedDict
from pathlib import Path

from PySide6.QtCore import QObject, QRunnable, QSize, Qt, QThread, QThreadPool, Signal
from PySide6.QtGui import QImage, QPixmap

from photosearch.errors import PhotosearchError
from photosearch.files.imaging import make_thumbnail

log = logging.getLogger(__name__)
DISK_SIZE = 256  # long side of the cached JPEG: sharp at 2x on a 128 px cell
MEMORY_ENTRIES = 600  # ~600 * 256*192*4 B = 118 MB worst case; a screen shows < 150


def thumbnail_key(path: str, mtime_ns: int) -> str:
    return hashlib.sha1(f"{path}\0{mtime_ns}".encode("utf-8", "surrogateescape")).hexdigest()


class ThumbnailCache:
    """The on-disk cache: ``<library>/thumbnails/<aa>/<sha1>.jpg``."""

    def __init__(self, directory: Path) -> None:
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
            # per process and thread: the grid's workers and the GUI thread (the "like" chip)
            # may make the same thumbnail at once
            partial = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}.tmp")
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


class _WorkStack:
    """Photos waiting for a thumbnail, most recently asked first; shared with the workers.

    The GUI thread pushes and prunes; workers pop. One lock, held for list operations only."""

    def __init__(self, threads: int) -> None:
        self.lock = threading.Lock()
        self.photos: list[str] = []  # the end of the list is the next one made
        self.threads = threads
        self.workers = 0

    def push(self, photo: str) -> bool:
        """Queue ``photo``; True when the caller must start another worker."""
        with self.lock:
            self.photos.append(photo)
            if self.workers < self.threads:
                self.workers += 1
                return True
            return False

    def pop_or_retire(self) -> str | None:
        """The next photo, or None: then the calling worker has ended (atomically, so a
        photo pushed meanwhile always finds a worker)."""
        with self.lock:
            if self.photos:
                return self.photos.pop()
            self.workers -= 1
            return None

    def keep(self, wanted: frozenset[str]) -> list[str]:
        """Drop queued photos not in ``wanted``; returns the dropped ones."""
        with self.lock:
            dropped = [p for p in self.photos if p not in wanted]
            if dropped:
                self.photos = [p for p in self.photos if p in wanted]
            return dropped

    def clear(self) -> list[str]:
        with self.lock:
            dropped, self.photos = self.photos, []
            return dropped


class _Worker(QRunnable):
    """Makes thumbnails until the stack is empty (at most ``threads`` of these run)."""

    def __init__(self, loader: ThumbnailLoader) -> None:
        super().__init__()
        self.cache, self.size, self.signals = loader.cache, loader.display_size, loader._signals
        self.stack = loader._stack

    def run(self) -> None:
        while (photo := self.stack.pop_or_retire()) is not None:
            try:
                image = self.cache.load_or_make(photo).scaled(
                    self.size,
                    Qt.AspectRatioMode.KeepAspectRatio,
                    Qt.TransformationMode.SmoothTransformation,
                )
            except (OSError, PhotosearchError) as exc:
                self.signals.failed.emit(photo, str(exc))
                continue
            except Exception as exc:  # a bug must cost one thumbnail, not the worker count
                log.exception("thumbnail of %s failed", photo)
                self.signals.failed.emit(photo, f"thumbnail failed: {exc}")
                continue
            self.signals.ready.emit(photo, image)


class ThumbnailLoader(QObject):
    """Asks for thumbnails by photo path; ``ready(path)`` fires when ``pixmap(path)`` has one.

    The most recently requested thumbnails are made first (what the user is looking at now).
    The grid reports what it painted (``keep_only``) and queued photos scrolled out of view
    are dropped, so scrolling through 100k photos queues at most a few screens of work;
    ``forget_pending`` drops all queued work when a new result set replaces the old one.
    """

    ready = Signal(str)

    def __init__(
        self,
        cache: ThumbnailCache,
        display_size: QSize,
        threads: int = 2,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.cache = cache
        self.display_size = display_size
        self.threads = threads
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(threads + 1)  # + cache pruning
        self.pool.setThreadPriority(QThread.Priority.LowPriority)
        self._signals = _Signals(self)
        self._signals.ready.connect(self._on_ready)
        self._signals.failed.connect(self._on_failed)
        self._pixmaps: OrderedDict[str, QPixmap] = OrderedDict()
        self._pending: set[str] = set()
        self._stack = _WorkStack(threads)
        self.pinned: set[str] = set()  # never dropped by keep_only (e.g. the "like" chip)
        self.failed: dict[str, str] = {}
        self.requested = 0  # thumbnails asked for so far (tests check virtualisation)

    def pixmap(self, photo: str) -> QPixmap | None:
        """The thumbnail if ready, else None (and it is queued). GUI thread only."""
        found = self._pixmaps.get(photo)
        if found is not None:
            self._pixmaps.move_to_end(photo)
            return found
        if photo not in self._pending and photo not in self.failed:
            self._pending.add(photo)
            self.requested += 1
            if self._stack.push(photo):
                self.pool.start(_Worker(self))
        return None

    def cached(self, photo: str) -> QPixmap | None:
        """The thumbnail if in memory; never queues work."""
        return self._pixmaps.get(photo)

    def keep_only(self, photos: list[str]) -> None:
        """Drop queued thumbnails of photos other than these (and the pinned ones)."""
        wanted = frozenset(photos) | frozenset(self.pinned)
        for photo in self._stack.keep(wanted):
            self._pending.discard(photo)

    def forget_pending(self) -> None:
        for photo in self._stack.clear():
            self._pending.discard(photo)

    def wait(self, msecs: int = -1) -> bool:
        return self.pool.waitForDone(msecs)

    def _on_ready(self, photo: str, image: QImage) -> None:
        self._pending.discard(photo)
        self._pixmaps[photo] = QPixmap.fromImage(image)
        while len(self._pixmaps) > MEMORY_ENTRIES:
            self._pixmaps.popitem(last=False)
        self.ready.emit(photo)

    def _on_failed(self, photo: str, reason: str) -> None:
        self._pending.discard(photo)
        self.failed[photo] = reason
        log.info("no thumbnail for %s: %s", photo, reason)
        self.ready.emit(photo)
