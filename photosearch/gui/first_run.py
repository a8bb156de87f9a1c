"""The first-run screen: what the app does, which folders to search, then start indexing.

It also offers, opt-in, a stronger model than the offline default: nothing is asked of the
network until the user ticks the offer; then one request to the hub (HF_ENDPOINT) fetches the
download size, and an unreachable hub just says so and leaves the offline default in place.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, QStandardPaths, QThreadPool, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

INTRO = (
    "<h2>Find your photos by describing them</h2>"
    "<p>Type what is in a photo — <i>“kids on a beach at sunset”</i>, <i>“a red bicycle”</i> — "
    "and photosearch shows the best matches from your own folders.</p>"
    "<p>Everything runs on this computer: your photos are never uploaded and never changed. "
    "The app first looks at each photo once (indexing); you can search while it works.</p>"
    "<p><b>Which folders hold your photos?</b></p>"
)


def suggested_folders() -> list[Path]:
    """The user's Pictures folder, when the platform has one that exists."""
    location = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.PicturesLocation)
    return [Path(location)] if location and Path(location).is_dir() else []


class _SizeCheck(QObject):
    """Asks the hub for a model's download size in a worker thread."""

    known = Signal(str, object)  # name, total bytes
    unavailable = Signal(str, str)  # name, reason

    def __init__(self, parent: QObject, endpoint: str | None) -> None:
        super().__init__(parent)
        self.endpoint = endpoint
        self.pool = QThreadPool(self)

    def start(self, name: str) -> None:
        def run() -> None:
            from photosearch.errors import PhotosearchError
            from photosearch.models.hub import plan_pull

            try:
                self.known.emit(name, plan_pull(name, endpoint=self.endpoint).total_bytes)
            except (PhotosearchError, OSError) as exc:
                self.unavailable.emit(name, str(exc))

        self.pool.start(run)


class FirstRunDialog(QDialog):
    def __init__(
        self, suggested: list[Path], parent: QWidget | None = None, endpoint: str | None = None
    ) -> None:
        super().__init__(parent, windowTitle="Welcome to photosearch")
        self.resize(560, 460)
        intro = QLabel(INTRO, self, wordWrap=True)
        self.list = QListWidget(self)
        for path in suggested:
            self.list.addItem(str(path))
        add = QPushButton("Add folder…", self)
        add.clicked.connect(self._choose)
        remove = QPushButton("Remove", self)
        remove.clicked.connect(lambda: self.list.takeItem(self.list.currentRow()))
        row = QHBoxLayout()
        row.addWidget(add)
        row.addWidget(remove)
        row.addStretch(1)
        buttons = QDialogButtonBox(self)
        self.start_button = buttons.addButton(
            "Start indexing", QDialogButtonBox.ButtonRole.AcceptRole
        )
        later = buttons.addButton("Later", QDialogButtonBox.ButtonRole.RejectRole)
        buttons.accepted.connect(self.accept)
        later.clicked.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(self.list, 1)
        layout.addLayout(row)
        self.endpoint = endpoint
        self.offer = self._model_offer()
        if self.offer is not None:
            layout.addWidget(self.offer)
        layout.addWidget(buttons)

    def _model_offer(self) -> QCheckBox | None:
        from photosearch.models.catalogue import suggested_entry

        entry = suggested_entry()
        if entry is None:
            return None
        self.offered = entry.name
        self.offered_size: int | None = None
        quality = f", English recall {entry.quality['value']}%" if entry.quality else ""
        box = QCheckBox(f"Also download a stronger search model ({entry.name})", self)
        box.setToolTip(
            f"{entry.description}{quality}. Ticking asks the hub for its download "
            "size; nothing is downloaded before you start."
        )
        box.toggled.connect(self._offer_toggled)
        self._size_check = _SizeCheck(self, self.endpoint)
        self._size_check.known.connect(self._size_known)
        self._size_check.unavailable.connect(self._size_unavailable)
        return box

    def _offer_toggled(self, on: bool) -> None:
        if on and self.offered_size is None:
            self.offer.setText(f"Also download {self.offered}: asking the hub for its size…")
            self._size_check.start(self.offered)

    def _size_known(self, name: str, total: int) -> None:
        self.offered_size = total
        self.offer.setText(f"Also download a stronger search model ({name}): {total / 1e6:,.0f} MB")
        self.offer.setToolTip(
            f"{self.offer.toolTip()} Until it is ready, the offline model searches."
        )

    def _size_unavailable(self, name: str, reason: str) -> None:
        self.offer.setChecked(False)
        self.offer.setEnabled(False)
        self.offer.setText(f"A stronger model ({name}) cannot be downloaded now: {reason}")

    def wanted_model(self) -> str | None:
        """The offered model when the user ticked it and the hub answered with its size."""
        if self.offer is None or not self.offer.isChecked() or self.offered_size is None:
            return None
        return self.offered

    def folders(self) -> list[Path]:
        return [Path(self.list.item(i).text()) for i in range(self.list.count())]

    def _choose(self) -> None:
        chosen = QFileDialog.getExistingDirectory(self, "Add a photo folder")
        if chosen and chosen not in {self.list.item(i).text() for i in range(self.list.count())}:
            self.list.addItem(chosen)


def download_offered_model(dialog: FirstRunDialog, window, controller) -> None:  # noqa: ANN001
    """Start the download the user opted into; switch the library to it once installed."""
    name = dialog.wanted_model()
    if name is None or dialog.result() != QDialog.DialogCode.Accepted:
        return
    from photosearch.gui.model_manager import ModelDownloads, human_size

    downloads = ModelDownloads(controller.library.registry.models_dir, dialog.endpoint, window)
    status = window.statusBar()
    downloads.progress.connect(
        lambda n, done, total, rate: status.showMessage(
            f"Downloading {n}: {human_size(done)} of {human_size(total)}"
        )
    )
    downloads.failed.connect(
        lambda n, message: status.showMessage(f"{n} was not downloaded: {message}")
    )
    downloads.finished.connect(lambda n, _path: controller.use_model(n))
    downloads.start(name)
