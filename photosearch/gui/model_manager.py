"""The model manager (Settings → Manage models…): the catalogue, downloads, switch, remove.

Downloads run in a worker thread (photosearch.models.hub.pull, the same code as
`photosearch models pull`) with progress and cancel; a cancelled or failed download keeps what
arrived in the models directory's staging folder and resumes next time. Nothing here talks to
the network until the user presses Download (or, in the first-run screen, ticks the offer).
"""

from __future__ import annotations

import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, Qt, QThreadPool, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from photosearch.errors import PhotosearchError
from photosearch.models.catalogue import load_catalogue
from photosearch.models.providers import ModelRegistry


def human_size(size: int | None) -> str:
    if not size:
        return "—"
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size} B"


@dataclass(frozen=True)
class ModelRow:
    """One line of the manager's table."""

    name: str
    languages: str
    dims: str
    quality: str
    installed: bool
    partial_bytes: int
    description: str


def model_rows(registry: ModelRegistry) -> list[ModelRow]:
    """Catalogue entries first (with their status), then installed models not in it."""
    from photosearch.models.hub import staged_bytes

    installed = {model.name: model for model in registry.installed()}
    rows = []
    for entry in load_catalogue():
        rows.append(
            ModelRow(
                entry.name,
                ", ".join(entry.languages) or "?",
                str(entry.embed_dim or "?"),
                f"{entry.quality['value']}%" if entry.quality else "—",
                entry.name in installed,
                staged_bytes(registry.models_dir, entry.name),
                entry.description,
            )
        )
    known = {row.name for row in rows}
    for name, model in sorted(installed.items()):
        if name not in known:
            rows.append(ModelRow(name, "?", "?", "—", True, 0, model.description))
    return rows


class ModelDownloads(QObject):
    """Runs one pull at a time in a worker thread; signals arrive in the GUI thread."""

    planned = Signal(str, object)  # name, total bytes
    progress = Signal(str, object, object, float)  # name, done bytes, total bytes, bytes/s
    finished = Signal(str, str)  # name, installed path
    failed = Signal(str, str)  # name, one-line message
    cancelled = Signal(str)

    def __init__(
        self, models_dir: Path, endpoint: str | None = None, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self.models_dir = models_dir
        self.endpoint = endpoint
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)
        self._cancel = threading.Event()
        self.running: str | None = None

    def start(self, name: str) -> bool:
        """Start downloading ``name``; False when a download is already running."""
        if self.running is not None:
            return False
        self.running = name
        self._cancel.clear()
        self._pool.start(lambda: self._run(name))
        return True

    def cancel(self) -> None:
        self._cancel.set()

    def wait(self, msecs: int = 30_000) -> bool:
        return self._pool.waitForDone(msecs)

    def _run(self, name: str) -> None:
        from photosearch.models.hub import PullCancelled, plan_pull, pull

        try:
            plan = plan_pull(name, endpoint=self.endpoint)
            total = plan.total_bytes
            self.planned.emit(name, total)
            done = 0
            started = time.monotonic()

            def advance(count: int) -> None:  # once per 256 kB chunk: cheap enough to signal
                nonlocal done
                done += count
                rate = done / max(time.monotonic() - started, 1e-6)
                self.progress.emit(name, done, total, rate)

            path = pull(plan, self.models_dir, progress=advance, cancel=self._cancel)
        except PullCancelled:
            self.running = None
            self.cancelled.emit(name)
        except (PhotosearchError, OSError) as exc:
            self.running = None
            self.failed.emit(name, str(exc))
        except Exception as exc:  # a worker thread must report, never die silently
            self.running = None
            self.failed.emit(name, f"unexpected error: {exc}")
        else:
            self.running = None
            self.finished.emit(name, str(path))


class ModelManager(QWidget):
    """The catalogue and installed models, with Download / Cancel / Use / Remove."""

    useRequested = Signal(str)  # the user chose this installed model for the library
    changed = Signal()  # a model was installed or removed

    def __init__(
        self,
        registry: ModelRegistry,
        active_model: str,
        endpoint: str | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.registry = registry
        self.active_model = active_model
        self.downloads = ModelDownloads(registry.models_dir, endpoint, self)
        self.table = QTableWidget(0, 6, self)
        self.table.setHorizontalHeaderLabels(
            ["Model", "Languages", "Dims", "Recall*", "Status", "About"]
        )
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.itemSelectionChanged.connect(self._update_buttons)
        self.download_button = QPushButton("Download", self)
        self.cancel_button = QPushButton("Cancel download", self)
        self.use_button = QPushButton("Use for this library", self)
        self.remove_button = QPushButton("Remove", self)
        self.download_button.clicked.connect(self.download_selected)
        self.cancel_button.clicked.connect(self.downloads.cancel)
        self.use_button.clicked.connect(self.use_selected)
        self.remove_button.clicked.connect(self.remove_selected)
        self.progress = QProgressBar(self)
        self.progress.setVisible(False)
        self.status = QLabel(
            "Downloads come from the Hugging Face hub (or HF_ENDPOINT) only "
            "when you press Download.",
            self,
            wordWrap=True,
        )
        note = QLabel(
            "* Recall: English text-to-image search on Crossmodal-3600 as published "
            "by Immich; “—” where the publisher gives none.",
            self,
            wordWrap=True,
        )
        buttons = QHBoxLayout()
        for button in (
            self.download_button,
            self.cancel_button,
            self.use_button,
            self.remove_button,
        ):
            buttons.addWidget(button)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table, 1)
        layout.addLayout(buttons)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addWidget(note)
        self.downloads.planned.connect(self._planned)
        self.downloads.progress.connect(self._progress)
        self.downloads.finished.connect(self._finished)
        self.downloads.failed.connect(self._failed)
        self.downloads.cancelled.connect(self._cancelled)
        self.refresh()

    # --- table ---------------------------------------------------------------------------

    def refresh(self) -> None:
        selected = self.selected_name()
        self.rows = model_rows(self.registry)
        self.table.setRowCount(len(self.rows))
        for index, row in enumerate(self.rows):
            values = [
                row.name,
                row.languages,
                row.dims,
                row.quality,
                self._status_of(row),
                row.description,
            ]
            for column, value in enumerate(values):
                item = QTableWidgetItem(value)
                item.setData(Qt.ItemDataRole.UserRole, row.name)
                self.table.setItem(index, column, item)
            if row.name == selected:
                self.table.selectRow(index)
        self.table.resizeColumnsToContents()
        self._update_buttons()

    def select(self, name: str) -> None:
        for index, row in enumerate(self.rows):
            if row.name == name:
                self.table.selectRow(index)
                return

    def selected_name(self) -> str | None:
        items = self.table.selectedItems()
        return str(items[0].data(Qt.ItemDataRole.UserRole)) if items else None

    def _status_of(self, row: ModelRow) -> str:
        if row.name == self.downloads.running:
            return "downloading…"
        if row.installed:
            return "in use" if row.name == self.active_model else "installed"
        if row.partial_bytes:
            return f"paused ({human_size(row.partial_bytes)} here)"
        return "not installed"

    def _row(self, name: str | None) -> ModelRow | None:
        return next((row for row in self.rows if row.name == name), None)

    def _update_buttons(self) -> None:
        row = self._row(self.selected_name())
        busy = self.downloads.running is not None
        self.download_button.setEnabled(bool(row) and not row.installed and not busy)
        self.cancel_button.setEnabled(busy)
        self.use_button.setEnabled(bool(row) and row.installed and row.name != self.active_model)
        self.remove_button.setEnabled(
            bool(row)
            and not busy
            and row.name != self.active_model
            and (row.installed or row.partial_bytes > 0)
        )

    # --- actions -------------------------------------------------------------------------

    def download_selected(self) -> None:
        name = self.selected_name()
        if name and self.downloads.start(name):
            self.status.setText(f"Asking the hub about {name}…")
            self.progress.setRange(0, 0)
            self.progress.setVisible(True)
            self.refresh()

    def use_selected(self) -> None:
        name = self.selected_name()
        if name:
            self.active_model = name
            self.useRequested.emit(name)
            self.status.setText(
                f"{name} will be used once you press OK; your photos are "
                "re-indexed with it in the background."
            )
            self.refresh()

    def remove_selected(self, confirm: bool = True) -> None:
        row = self._row(self.selected_name())
        if row is None or row.name == self.active_model:
            return
        path = self.registry.path_of(row.name)
        what = (
            f"{row.name} ({human_size(_tree_size(path))})"
            if path
            else f"the unfinished download of {row.name}"
        )
        if (
            confirm
            and QMessageBox.question(self, "Remove model", f"Delete {what} from this computer?")
            != QMessageBox.StandardButton.Yes
        ):
            return
        from photosearch.models.hub import discard_staged

        if path is not None:
            shutil.rmtree(path)
        else:
            discard_staged(self.registry.models_dir, row.name)
        self.status.setText(f"Removed {what}.")
        self.refresh()
        self.changed.emit()

    # --- download signals ----------------------------------------------------------------

    def _planned(self, name: str, total: int) -> None:
        self.progress.setRange(0, 1000)
        self.status.setText(f"Downloading {name}: {human_size(total)}")

    def _progress(self, name: str, done: int, total: int, rate: float) -> None:
        self.progress.setValue(int(1000 * done / max(total, 1)))
        self.status.setText(
            f"Downloading {name}: {human_size(done)} of {human_size(total)} "
            f"at {human_size(int(rate))}/s"
        )

    def _finished(self, name: str, path: str) -> None:
        self.progress.setVisible(False)
        self.status.setText(
            f"{name} is installed. Choose “Use for this library” to search with it."
        )
        self.refresh()
        self.select(name)
        self.changed.emit()

    def _failed(self, name: str, message: str) -> None:
        self.progress.setVisible(False)
        self.status.setText(f"{name} was not installed: {message}")
        self.refresh()

    def _cancelled(self, name: str) -> None:
        self.progress.setVisible(False)
        self.status.setText(f"Download of {name} paused; press Download again to resume.")
        self.refresh()


class ModelManagerDialog(QDialog):
    def __init__(
        self,
        registry: ModelRegistry,
        active_model: str,
        endpoint: str | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent, windowTitle="Models")
        self.resize(860, 480)
        self.manager = ModelManager(registry, active_model, endpoint, self)
        self.chosen: str | None = None
        self.manager.useRequested.connect(self._chosen)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.manager)
        layout.addWidget(buttons)

    def _chosen(self, name: str) -> None:
        self.chosen = name

    def done(self, result: int) -> None:
        self.manager.downloads.cancel()  # a closed manager leaves the download resumable
        self.manager.downloads.wait(10_000)
        super().done(result)


def _tree_size(path: Path | None) -> int:
    if path is None:
        return 0
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
