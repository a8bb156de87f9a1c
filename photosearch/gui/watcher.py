"""WatcherWorker: the GUI's slot for the folder-watcher service (photosearch.library.watch_service).

The service runs on its own thread and reports plain ``WatchStatus`` records through a
callback; this QObject re-emits them as queued signals so the status bar and the result grid
update on the GUI thread. The service is created by a factory (default: WatchService, imported
only on ``start``), so the GUI does not depend on the watcher being installed.

LibraryController.enable_watching switches it on; it keeps running during the controller's
write jobs (both write through ``Library.writing``). ``photosChanged`` makes the main window
re-run the current search.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from PySide6.QtCore import QObject, Signal

from photosearch.library.facade import Library


class WatchServiceLike(Protocol):
    def start(self) -> None: ...
    def stop(self, timeout: float = 60.0) -> None: ...
    def folders_changed(self) -> None: ...


ServiceFactory = Callable[[Library, Callable[[Any], None]], WatchServiceLike]


def _default_factory(library: Library, on_status: Callable[[Any], None]) -> WatchServiceLike:
    from photosearch.library.watch_service import WatchService

    return WatchService(library, on_status=on_status)


class WatcherWorker(QObject):
    statusChanged = Signal(object)  # WatchStatus
    photosChanged = Signal()  # a batch added, changed, moved or removed photos

    def __init__(
        self, library: Library, factory: ServiceFactory | None = None, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self.library = library
        self.factory = factory or _default_factory
        self.service: WatchServiceLike | None = None
        self._last_batch: object | None = None
        self._last_encoded = 0

    def start(self) -> None:
        if self.service is None:
            self._last_batch, self._last_encoded = None, 0
            self.service = self.factory(self.library, self._on_status)
            self.service.start()

    def stop(self) -> None:
        if self.service is not None:
            self.service.stop()
            self.service = None

    def folders_changed(self) -> None:
        """The library's folders changed: the service follows the new set."""
        if self.service is not None:
            self.service.folders_changed()

    def _on_status(self, status: Any) -> None:  # called on the service's thread
        self.statusChanged.emit(status)
        changed = False
        encoded = getattr(status, "encoded", 0)
        if encoded > self._last_encoded:  # the catch-up encoded what arrived meanwhile
            self._last_encoded = encoded
            changed = True
        batch = getattr(status, "last_batch", None)
        if batch is not None and batch is not self._last_batch:
            self._last_batch = batch
            changed = changed or any(
                getattr(batch, name, 0)
                for name in ("added", "changed", "moved", "removed", "encoded")
            )
        if changed:
            self.photosChanged.emit()
