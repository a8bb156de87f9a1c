"""One writer per library: an advisory lock file that the OS releases if the process dies."""

from __future__ import annotations

import os
import time
from pathlib import Path
from types import TracebackType

from photosearch.errors import LibraryLocked

try:
    import fcntl
except ImportError:  # Windows: fall back to an exclusive-create lock file
    fcntl = None  # type: ignore[assignment]


class WriteLock:
    """Exclusive lock on ``<library>/write.lock``. Readers never take it.

    ``acquire(wait_s)`` waits up to ``wait_s`` seconds, calling ``on_wait`` once if it has to,
    then raises LibraryLocked naming the holder's pid.
    """

    def __init__(self, path: Path):
        self.path = path
        self._fd: int | None = None

    def acquire(self, wait_s: float = 0.0, on_wait=None) -> None:  # noqa: ANN001
        deadline = time.monotonic() + wait_s
        told = False
        while True:
            if self._try_acquire():
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
        if self._fd is None:
            return
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
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if fcntl is None:
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_RDWR)
            except FileExistsError:
                return False
        else:
            fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                return False
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        return True
