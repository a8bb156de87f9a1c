"""The photo viewer: one result large, its metadata, and next/previous through the results."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import QBuffer, QByteArray, QSize, Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QGuiApplication, QImageReader, QKeySequence, QPixmap
from PySide6.QtWidgets import (
    QDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from photosearch.errors import PhotosearchError
from photosearch.photo_files import display_path, file_url, open_regular_file
from photosearch.search import SearchResult


class PhotoViewer(QDialog):
    """Non-modal; Left/Right (or the buttons) step through ``results``."""

    moreLikeRequested = Signal(Path)

    def __init__(self, results: Sequence[SearchResult], row: int, parent: QWidget | None = None):
        super().__init__(parent)
        self.results = list(results)
        self.row = row
        self.resize(1100, 760)
        self.image = QLabel(self, alignment=Qt.AlignmentFlag.AlignCenter)
        self.image.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        self.image.setMinimumSize(320, 240)
        self.fields = {name: QLabel(self, wordWrap=True, textInteractionFlags=(
            Qt.TextInteractionFlag.TextSelectableByMouse))
            for name in ("File", "Folder", "Size", "Dimensions", "Taken", "Camera", "Relevance")}
        form = QFormLayout()
        for name, label in self.fields.items():
            form.addRow(f"{name}:", label)
        self.previous_button = QPushButton("◀ Previous", self)
        self.previous_button.clicked.connect(lambda: self.show_row(self.row - 1))
        self.next_button = QPushButton("Next ▶", self)
        self.next_button.clicked.connect(lambda: self.show_row(self.row + 1))
        open_button = QPushButton("Open with system viewer", self)
        open_button.clicked.connect(self.open_external)
        folder_button = QPushButton("Show in folder", self)
        folder_button.clicked.connect(self.show_in_folder)
        copy_button = QPushButton("Copy path", self)
        copy_button.clicked.connect(self.copy_path)
        like_button = QPushButton("More like this", self)
        like_button.clicked.connect(
            lambda: self.moreLikeRequested.emit(Path(self.current.path)))
        side = QVBoxLayout()
        side.addLayout(form)
        side.addStretch(1)
        for button in (open_button, folder_button, copy_button, like_button):
            side.addWidget(button)
        nav = QHBoxLayout()
        nav.addWidget(self.previous_button)
        nav.addStretch(1)
        nav.addWidget(self.next_button)
        left = QVBoxLayout()
        left.addWidget(self.image, 1)
        left.addLayout(nav)
        layout = QHBoxLayout(self)
        layout.addLayout(left, 1)
        side_widget = QWidget(self)
        side_widget.setLayout(side)
        side_widget.setFixedWidth(280)
        layout.addWidget(side_widget)
        self._pixmap = QPixmap()
        self.show_row(row)

    @property
    def current(self) -> SearchResult:
        return self.results[self.row]

    def show_row(self, row: int) -> None:
        if not 0 <= row < len(self.results):
            return
        self.row = row
        result = self.current
        self.setWindowTitle(f"{display_path(os.path.basename(result.path))} — {row + 1} of "
                            f"{len(self.results)}")
        self._pixmap = self._load(result.path)
        self._fit()
        self.previous_button.setEnabled(row > 0)
        self.next_button.setEnabled(row < len(self.results) - 1)
        try:
            size = f"{os.path.getsize(result.path) / 1e6:.2f} MB"
        except OSError:
            size = "file not found"
        values = {
            "File": display_path(os.path.basename(result.path)),
            "Folder": display_path(os.path.dirname(result.path)),
            "Size": size,
            "Dimensions": f"{result.width} × {result.height}" if result.width else "unknown",
            "Taken": result.taken_at.strftime("%Y-%m-%d %H:%M:%S") if result.taken_at
            else "unknown",
            "Camera": result.camera or "unknown",
            "Relevance": f"{result.score:.3f}",
        }
        for name, value in values.items():
            self.fields[name].setText(value)

    def open_external(self) -> bool:
        return QDesktopServices.openUrl(QUrl.fromEncoded(file_url(self.current.path)))

    def show_in_folder(self) -> bool:
        return QDesktopServices.openUrl(
            QUrl.fromEncoded(file_url(os.path.dirname(self.current.path))))

    def copy_path(self) -> None:
        QGuiApplication.clipboard().setText(display_path(self.current.path))

    def keyPressEvent(self, event) -> None:  # noqa: ANN001, N802
        if event.key() in (Qt.Key.Key_Right, Qt.Key.Key_Space):
            self.show_row(self.row + 1)
        elif event.key() in (Qt.Key.Key_Left, Qt.Key.Key_Backspace):
            self.show_row(self.row - 1)
        elif event.matches(QKeySequence.StandardKey.Copy):
            self.copy_path()
        else:
            super().keyPressEvent(event)

    def resizeEvent(self, event) -> None:  # noqa: ANN001, N802
        super().resizeEvent(event)
        self._fit()

    def _load(self, path: str) -> QPixmap:
        """Decode at about screen size (JPEG scales while decoding), upright per EXIF."""
        try:  # read here, not by Qt: Qt cannot name files whose bytes are not UTF-8
            with open_regular_file(path) as handle:
                data = QByteArray(handle.read())
        except (OSError, PhotosearchError) as exc:
            self.image.setText(f"Cannot show this photo: {exc}")
            return QPixmap()
        buffer = QBuffer(data)
        reader = QImageReader(buffer)
        reader.setAutoTransform(True)
        full = reader.size()
        bound = QSize(2400, 2400)
        if full.isValid() and (full.width() > bound.width() or full.height() > bound.height()):
            reader.setScaledSize(full.scaled(bound, Qt.AspectRatioMode.KeepAspectRatio))
        image = reader.read()
        if image.isNull():
            self.image.setText(f"Cannot show this photo: {reader.errorString()}")
            return QPixmap()
        return QPixmap.fromImage(image)

    def _fit(self) -> None:
        """Shrink a large photo to the space; show a small one at 100%, never upscaled."""
        if self._pixmap.isNull():
            return
        ratio = self.devicePixelRatioF()
        space = self.image.size() * ratio
        shown = self._pixmap
        if shown.width() > space.width() or shown.height() > space.height():
            shown = shown.scaled(space, Qt.AspectRatioMode.KeepAspectRatio,
                                 Qt.TransformationMode.SmoothTransformation)
        shown.setDevicePixelRatio(ratio)
        self.image.setPixmap(shown)
