"""Folder events -> debounced, settled change sets (watchdog in, plain path batches out).

Why: a copy of 10,000 files raises tens of thousands of events, and a file still being written
must not be read. ``ChangeCollector`` keeps the paths that changed, waits until each file's size
and mtime stop changing (two stat()s ``settle_s`` apart), and hands out one batch once the
folders have been quiet for ``quiet_s`` (or every ``max_delay_s`` during a long copy). The two
ends of a move are always handed out together, so the catalog keeps the photo and its vectors.
No catalog access here: ``photosearch.library.watch_service`` turns batches into catalog changes.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    FileAttribEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)

from photosearch.files.scanning import IgnoreRules, walk_photos
from photosearch.paths import is_under

# Events that can change what a folder holds; opens and read-only closes (our own decoding
# raises those) are never subscribed, so reading a photo cannot feed back into the watcher.
WATCHED_EVENTS: list[type[FileSystemEvent]] = [
    FileCreatedEvent,
    FileModifiedEvent,
    FileClosedEvent,
    FileAttribEvent,
    FileMovedEvent,
    FileDeletedEvent,
    DirCreatedEvent,
    DirMovedEvent,
    DirDeletedEvent,
]
Signature = tuple[int, int] | None  # (size, mtime_ns), None when the path is not a file


@dataclass(frozen=True)
class ChangeBatch:
    """Paths to look at again. ``paths`` are files to stat (settled, moved, or vanished);
    ``gone_dirs`` are folders deleted or moved away: every photo known under them is gone
    unless it is still on disk."""

    paths: frozenset[str]
    gone_dirs: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.paths) + len(self.gone_dirs)


@dataclass
class _Settling:
    signature: Signature
    since: float  # monotonic time the signature was last seen to change


def file_signature(path: str) -> Signature:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_size, st.st_mtime_ns)


class ChangeCollector:
    """Thread-safe accumulator fed by watchdog's thread and drained by one worker.

    Times are in seconds. ``take_ready`` stats only files whose settle time has passed, so a
    large copy in progress costs one stat per file per ``settle_s``, not a busy loop.
    """

    def __init__(
        self,
        rules: IgnoreRules,
        *,
        settle_s: float = 0.75,
        quiet_s: float = 0.5,
        max_delay_s: float = 5.0,
        max_batch: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rules = rules
        self.settle_s = settle_s
        self.quiet_s = quiet_s
        self.max_delay_s = max_delay_s
        self.max_batch = max_batch
        self._clock = clock
        self._cond = threading.Condition()
        self._settling: dict[str, _Settling] = {}
        self._ready: set[str] = set()  # moves (both ends) and paths found some other way
        self._vanished: set[str] = set()  # deleted or moved out: held while others settle
        self._vanished_since: float | None = None
        self._gone_dirs: set[str] = set()
        self._new_dirs: set[str] = set()  # walked into settling (a copy may still be running)
        self._moved_in_dirs: set[str] = set()  # walked into ready (moved whole, so complete)
        self._last_event = 0.0
        self._first_pending: float | None = None
        self._woken = False

    # --- fed by the event handler (watchdog's thread) --------------------------------------

    def file_changed(self, path: str) -> None:
        signature = file_signature(path)
        with self._cond:
            now = self._touch()
            self._ready.discard(path)
            self._vanished.discard(path)
            self._settling[path] = _Settling(signature, now)

    def file_gone(self, path: str) -> None:
        """A deletion waits for files still settling (up to ``max_delay_s``): a move that the
        OS reports as delete + create must meet its other half in one batch."""
        with self._cond:
            now = self._touch()
            self._settling.pop(path, None)
            self._vanished.add(path)
            if self._vanished_since is None:
                self._vanished_since = now

    def file_moved(self, source: str, destination: str) -> None:
        with self._cond:
            self._touch()
            self._settling.pop(source, None)
            self._settling.pop(destination, None)
            self._ready.update((source, destination))

    def dir_created(self, path: str) -> None:
        with self._cond:
            self._touch()
            self._new_dirs.add(path)

    def dir_gone(self, path: str) -> None:
        with self._cond:
            now = self._touch()
            self._gone_dirs.add(path)
            if self._vanished_since is None:
                self._vanished_since = now
            for pending in [p for p in self._settling if is_under(p, path)]:
                del self._settling[pending]
                self._vanished.add(pending)

    def dir_moved(self, source: str, destination: str) -> None:
        with self._cond:
            self._touch()
            self.dir_gone(source)
            self._moved_in_dirs.add(destination)

    def add_paths(self, paths: list[str], gone_dirs: list[str]) -> None:
        """Queue paths found some other way (a folder coming back online): ready at once."""
        with self._cond:
            now = self._touch()
            self._ready.update(paths)
            self._gone_dirs.update(gone_dirs)
            if gone_dirs and self._vanished_since is None:
                self._vanished_since = now

    # --- drained by the worker -------------------------------------------------------------

    @property
    def pending(self) -> int:
        with self._cond:
            return (
                len(self._settling)
                + len(self._ready)
                + len(self._vanished)
                + len(self._gone_dirs)
                + len(self._new_dirs)
                + len(self._moved_in_dirs)
            )

    def wait(self, timeout: float | None) -> None:
        """Block until an event arrives, ``wake()`` is called, or ``timeout`` passes."""
        with self._cond:
            if not self._woken:
                self._cond.wait(timeout)
            self._woken = False

    def wake(self) -> None:
        with self._cond:
            self._woken = True
            self._cond.notify_all()

    def poll_interval(self) -> float | None:
        """How soon ``take_ready`` may have something; None when nothing is pending."""
        if not self.pending:
            return None
        return max(0.05, min(self.settle_s, self.quiet_s) / 2)

    def take_ready(self) -> ChangeBatch | None:
        """The next batch, or None while nothing is due (still settling, or events flowing)."""
        with self._cond:
            now = self._clock()
            self._expand_new_dirs(now)
            settled = self._settled(now)
            hold_vanished = (
                len(self._settling) > len(settled)
                and self._vanished_since is not None
                and now - self._vanished_since < self.max_delay_s
            )
            if hold_vanished:  # nothing goes until the other half of a move may have settled
                return None
            waiting = (
                len(self._ready)
                + len(settled)
                + len(self._vanished)
                + len(self._gone_dirs)
                + len(self._moved_in_dirs)
            )
            if not waiting:
                return None
            quiet = now - self._last_event >= self.quiet_s
            overdue = (
                self._first_pending is not None and now - self._first_pending >= self.max_delay_s
            )
            if not (quiet or overdue or waiting >= self.max_batch):
                return None
            paths = set(self._ready) | set(settled)
            for directory in self._moved_in_dirs:
                paths.update(found.path for found in walk_photos(Path(directory), self.rules))
            for path in settled:
                del self._settling[path]
            paths |= self._vanished
            batch = ChangeBatch(frozenset(paths), tuple(sorted(self._gone_dirs)))
            self._ready.clear()
            self._vanished.clear()
            self._gone_dirs.clear()
            self._moved_in_dirs.clear()
            self._vanished_since = None
            self._first_pending = now if self._settling else None
            return batch

    # --- internals -------------------------------------------------------------------------

    def _touch(self) -> float:
        now = self._clock()
        self._last_event = now
        if self._first_pending is None:
            self._first_pending = now
        self._cond.notify_all()
        return now

    def _expand_new_dirs(self, now: float) -> None:
        for directory in self._new_dirs:
            for found in walk_photos(Path(directory), self.rules):
                if found.path not in self._settling and found.path not in self._ready:
                    self._settling[found.path] = _Settling((found.size, found.mtime_ns), now)
        self._new_dirs.clear()

    def _settled(self, now: float) -> list[str]:
        settled: list[str] = []
        for path, entry in self._settling.items():
            if now - entry.since < self.settle_s:
                continue
            signature = file_signature(path)
            if signature != entry.signature:
                entry.signature, entry.since = signature, now
                continue
            settled.append(path)
        return settled


class FolderEventHandler(FileSystemEventHandler):
    """Feeds one watched root's events into a collector, leaving out what a scan leaves out
    (hidden and system folders, the library itself, ignore patterns, non-photo files)."""

    def __init__(self, root: str, collector: ChangeCollector) -> None:
        self.root = root
        self.collector = collector
        self.rules = collector.rules

    def dispatch(self, event: FileSystemEvent) -> None:
        source = os.fsdecode(event.src_path)
        destination = os.fsdecode(event.dest_path) if event.dest_path else ""
        collector = self.collector
        if isinstance(event, FileMovedEvent):
            keep_source = self.wants(source, False)
            keep_destination = self.wants(destination, False)
            if keep_source and keep_destination:
                collector.file_moved(source, destination)
            elif keep_source:
                collector.file_gone(source)
            elif keep_destination:
                collector.file_changed(destination)
        elif isinstance(event, DirMovedEvent):
            keep_source = self.wants(source, True)
            keep_destination = self.wants(destination, True)
            if keep_source and keep_destination:
                collector.dir_moved(source, destination)
            elif keep_source:
                collector.dir_gone(source)
            elif keep_destination:
                collector.dir_created(destination)
        elif isinstance(event, FileDeletedEvent):
            if self.wants(source, False):
                collector.file_gone(source)
        elif isinstance(event, DirDeletedEvent):
            if self.wants(source, True):
                collector.dir_gone(source)
        elif isinstance(event, DirCreatedEvent):
            if self.wants(source, True):
                collector.dir_created(source)
        elif isinstance(
            event, FileCreatedEvent | FileModifiedEvent | FileClosedEvent | FileAttribEvent
        ) and self.wants(source, False):
            collector.file_changed(source)

    def wants(self, path: str, is_dir: bool) -> bool:
        """Whether ``path`` (inside this root) is something a scan would look at."""
        if not is_under(path, self.root) or self.rules.is_excluded_dir(path):
            return False
        relative = os.path.relpath(path, self.root)
        if relative == ".":
            return is_dir
        parts = relative.split(os.sep)
        ancestor = self.root
        for part in parts[:-1] if not is_dir else parts:
            ancestor = os.path.join(ancestor, part)
            if self.rules.skips_name(part) or self.rules.skips_path(ancestor):
                return False
        return is_dir or self.rules.wants_file(path)
