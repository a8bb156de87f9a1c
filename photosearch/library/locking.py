"""One writer per library: an advisory lock file that the OS releases if the process dies,
and, inside a process, one writing thread at a time (``WriteLock.writing``)."""

from __future__ import annotations

import errno
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType

from photosearch.catalog import Catalog
from photosearch.catalog.database import CatalogReadOnly
from photosearch.errors import LibraryLocked, PhotosearchError
from photosearch.paths import VECTORS_DIR

try:
    import fcntl
except ImportError:  # Windows: fall back to an exclusive-create lock file
    fcntl = None  # type: ignore[assignment]


class LibraryReadOnly(PhotosearchError):
    """The library's directory or files cannot be written (read-only media or permissions)."""


class WriteLock:
    """Exclusive lock on ``<library>/write.lock``. Readers never take it.

    ``acquire(wait_s)`` waits up to ``wait_s`` seconds, calling ``on_wait`` once if it has to,
    then raises LibraryLocked naming the holder's pid. The lock is per process and counted:
    a nested ``acquire`` (a folder edit while this process indexes) needs a matching
    ``release`` before the lock is let go.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        self._depth = 0
        self._guard = threading.Lock()
        self._writer = threading.RLock()  # the one thread of this process that writes
        self._waiting = 0  # threads of this process waiting in ``writing``
        self._writer_thread: int | None = None  # the thread inside ``writing``, if any

    def acquire(
        self, wait_s: float = 0.0, on_wait: Callable[[int | None], None] | None = None
    ) -> None:
        deadline = time.monotonic() + wait_s
        told = False
        while True:
            with self._guard:
                if self._try_acquire():
                    self._depth += 1
                    return
            if time.monotonic() >= deadline:
                raise LibraryLocked(
                    f"another photosearch process (pid {self.holder() or '?'}) is writing to "
                    f"this library; try again when it has finished"
                )
            if on_wait and not told:
                on_wait(self.holder())
                told = True
            time.sleep(0.2)

    def release(self) -> None:
        with self._guard:
            if self._fd is None:
                return
            self._depth = max(0, self._depth - 1)
            if self._depth == 0:
                self._let_go()

    def release_all(self) -> None:
        """Let go whatever the nesting (closing the library)."""
        with self._guard:
            if self._fd is not None:
                self._depth = 0
                self._let_go()

    @contextmanager
    def holding(
        self, wait_s: float = 0.0, on_wait: Callable[[int | None], None] | None = None
    ) -> Iterator[WriteLock]:
        """``with lock.holding(wait_s):`` acquire, and release on the way out."""
        self.acquire(wait_s, on_wait)
        try:
            yield self
        finally:
            self.release()

    @contextmanager
    def writing(
        self,
        wait_s: float = 0.0,
        on_wait: Callable[[int | None], None] | None = None,
        *,
        thread_wait_s: float | None = None,
    ) -> Iterator[WriteLock]:
        """``with lock.writing():`` be the library's only writer: no other process (waits
        ``wait_s`` for one, then raises LibraryLocked) and no other thread of this one (waits
        ``thread_wait_s``, by default until it is done: long writers poll ``contended`` and
        yield at their next batch). Re-entrant on one thread."""
        if not self._writer.acquire(blocking=False):
            with self._guard:
                self._waiting += 1
            try:
                got = self._writer.acquire(timeout=-1 if thread_wait_s is None else thread_wait_s)
            finally:
                with self._guard:
                    self._waiting -= 1
            if not got:
                raise LibraryLocked(
                    "this library is being written to by another task of this "
                    "process; try again when it has finished"
                )
        outer = self._writer_thread is None
        self._writer_thread = threading.get_ident()
        try:
            with self.holding(wait_s, on_wait):
                yield self
        finally:
            if outer:
                self._writer_thread = None
            self._writer.release()

    @property
    def writing_elsewhere_here(self) -> bool:
        """Another thread of this process is inside ``writing`` now."""
        owner = self._writer_thread
        return owner is not None and owner != threading.get_ident()

    @property
    def contended(self) -> bool:
        """Another thread of this process waits to write: a long writer stops at its next
        batch (what is left stays pending in the catalog)."""
        return self._waiting > 0

    def _let_go(self) -> None:
        assert self._fd is not None
        if fcntl is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None
        if fcntl is None:
            self.path.unlink(missing_ok=True)

    def holder(self) -> int | None:
        try:
            return int(self.path.read_text().strip() or 0) or None
        except (OSError, ValueError):
            return None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> WriteLock:
        self.acquire()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()

    def _try_acquire(self) -> bool:
        if self._fd is not None:
            return True
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if fcntl is None:
                try:
                    fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_RDWR)
                except FileExistsError:
                    return False
            else:
                fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o644)
        except OSError as exc:
            if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
                raise LibraryReadOnly(
                    f"cannot write {self.path.parent} ({(exc.strerror or str(exc)).lower()}); "
                    f"searching and status work, indexing and changes need write access"
                ) from exc
            raise
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                return False
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        return True


def check_writable(paths: list[Path]) -> None:
    """Raise LibraryReadOnly naming the first existing path that cannot be written, and why."""
    for path in paths:
        if path.exists() and not os.access(path, os.W_OK):
            raise LibraryReadOnly(
                f"cannot write {path} ({_why_unwritable(path)}); searching and status work, "
                f"indexing and changes need write access"
            )


def check_library_writable(directory: Path, catalog: Catalog) -> None:
    """Raise LibraryReadOnly for the library in ``directory`` when its directory, catalog or
    vectors cannot be written, and CatalogReadOnly when its catalog was opened read-only."""
    check_writable([directory, catalog.path, directory / VECTORS_DIR])
    if catalog.readonly:
        raise CatalogReadOnly("this library was opened read-only")


def _why_unwritable(path: Path) -> str:
    try:
        read_only = bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        read_only = False
    return "read-only file system" if read_only else "permission denied"
