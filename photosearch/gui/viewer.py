"""The photo viewer: one photo large on a dark background, zoom and pan, full screen,
slideshow, and an info panel that can be hidden.

Keys act on the viewer whatever has focus inside it (window-wide shortcuts, and no push
buttons that could take Enter or Space): Left/Right/Space/Backspace step, Home/End jump,
+/-/wheel zoom, 0 fits, double-click toggles 100%, F11 full screen, I info, S slideshow,
Esc leaves full screen or closes.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

from PySide6.QtCore import QBuffer, QByteArray, QPointF, QRectF, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QImage, QImageReader, QKeySequence, QPainter, QPixmap, QShortcut
from PySide6.QtWidgets import (
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from photosearch.files.photo_files import display_path
from photosearch.gui import photo_actions
from photosearch.gui.date_groups import describe_date
from photosearch.search.query import SearchResult
from photosearch.search.timeline import DatedPhotos

BACKGROUND = QColor(17, 17, 17)
MAX_DECODE = 8000  # long side; larger photos are decoded scaled to this
SLIDESHOW_MS = 4000
ZOOM_STEP = 1.25


class PhotoCanvas(QWidget):
    """Paints one photo: fitted to the space (small photos enlarged only on request), or at
    a zoom factor around a centre that dragging pans."""

    zoomChanged = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(320, 240)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.pixmap = QPixmap()
        self.message = ""
        self.zoom: float | None = None  # None: fit to the window
        self.enlarge_small = False
        self.centre = QPointF(0.5, 0.5)  # the photo point (fractions) at the canvas centre
        self._drag_from: QPointF | None = None

    def set_pixmap(self, pixmap: QPixmap, message: str = "") -> None:
        self.pixmap, self.message = pixmap, message
        self.zoom = None
        self.centre = QPointF(0.5, 0.5)
        self.update()
        self.zoomChanged.emit()

    def fit_scale(self) -> float:
        if self.pixmap.isNull():
            return 1.0
        size = self.pixmap.deviceIndependentSize()
        scale = min(self.width() / size.width(), self.height() / size.height())
        return scale if self.enlarge_small else min(scale, 1.0)

    def scale(self) -> float:
        return self.fit_scale() if self.zoom is None else self.zoom

    def set_zoom(self, zoom: float | None, around: QPointF | None = None) -> None:
        if zoom is not None:
            zoom = max(0.05, min(zoom, 16.0))
        if around is not None and zoom is not None and not self.pixmap.isNull():
            before = self._photo_point(around)
            self.zoom = zoom
            size = self.pixmap.deviceIndependentSize() * zoom
            offset = around - QPointF(self.width() / 2, self.height() / 2)
            self.centre = QPointF(
                before.x() - offset.x() / size.width(), before.y() - offset.y() / size.height()
            )
        else:
            self.zoom = zoom
            if zoom is None:
                self.centre = QPointF(0.5, 0.5)
        self.update()
        self.zoomChanged.emit()

    def zoom_by(self, factor: float, around: QPointF | None = None) -> None:
        self.set_zoom(self.scale() * factor, around)

    def toggle_actual_size(self, around: QPointF | None = None) -> None:
        self.set_zoom(
            None if self.zoom is not None and abs(self.zoom - 1.0) < 1e-6 else 1.0, around
        )

    def _photo_point(self, point: QPointF) -> QPointF:
        size = self.pixmap.deviceIndependentSize() * self.scale()
        offset = point - QPointF(self.width() / 2, self.height() / 2)
        return QPointF(
            self.centre.x() + offset.x() / size.width(),
            self.centre.y() + offset.y() / size.height(),
        )

    def target_rect(self) -> QRectF:
        size = self.pixmap.deviceIndependentSize() * self.scale()
        left = self.width() / 2 - self.centre.x() * size.width()
        top = self.height() / 2 - self.centre.y() * size.height()
        return QRectF(left, top, size.width(), size.height())

    def paintEvent(self, event) -> None:  # noqa: ANN001
        painter = QPainter(self)
        painter.fillRect(self.rect(), BACKGROUND)
        if self.pixmap.isNull():
            painter.setPen(QColor(200, 200, 200))
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, self.message)
            return
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        painter.drawPixmap(self.target_rect(), self.pixmap, QRectF(self.pixmap.rect()))

    def wheelEvent(self, event) -> None:  # noqa: ANN001
        steps = event.angleDelta().y() / 120
        if steps:
            self.zoom_by(ZOOM_STEP**steps, event.position())
        event.accept()

    def mouseDoubleClickEvent(self, event) -> None:  # noqa: ANN001
        self.toggle_actual_size(event.position())

    def mousePressEvent(self, event) -> None:  # noqa: ANN001
        if event.button() == Qt.MouseButton.LeftButton and self.zoom is not None:
            self._drag_from = event.position()
            self.setCursor(Qt.CursorShape.ClosedHandCursor)

    def mouseMoveEvent(self, event) -> None:  # noqa: ANN001
        if self._drag_from is None:
            return
        delta = event.position() - self._drag_from
        self._drag_from = event.position()
        size = self.pixmap.deviceIndependentSize() * self.scale()
        self.centre -= QPointF(delta.x() / size.width(), delta.y() / size.height())
        self.update()

    def mouseReleaseEvent(self, event) -> None:  # noqa: ANN001
        self._drag_from = None
        self.unsetCursor()


class PhotoViewer(QWidget):
    """A separate window over ``results``; ``currentChanged(row)`` lets the grid follow."""

    moreLikeRequested = Signal(Path)
    currentChanged = Signal(int)

    def __init__(
        self, results: Sequence[SearchResult], row: int, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent, Qt.WindowType.Window)
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        # the timeline's columns as they are (a list of 1M SearchResults: ~485 MB)
        self.results = results if isinstance(results, DatedPhotos) else list(results)
        self.row = row
        self.resize(1200, 800)
        self.setStyleSheet(
            "PhotoViewer, QWidget#bar, QWidget#info { background: #111; }"
            " QLabel { color: #ddd; } QToolButton { color: #eee; border: none;"
            " padding: 4px 8px; } QToolButton:hover { background: #333; }"
            " QToolButton:checked { background: #2d4f7c; }"
        )
        self.canvas = PhotoCanvas(self)
        self._build_info_panel()
        bar = self._build_button_bar()
        top = QHBoxLayout()
        top.setContentsMargins(0, 0, 0, 0)
        top.setSpacing(0)
        top.addWidget(self.canvas, 1)
        top.addWidget(self.info)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addLayout(top, 1)
        layout.addWidget(bar)
        self.slideshow = QTimer(self, interval=SLIDESHOW_MS)
        self.slideshow.timeout.connect(self._slideshow_step)
        self._bind_keys()
        self.setFocusProxy(self.canvas)
        self.show_row(row)

    def _build_info_panel(self) -> None:
        """The file facts beside the photo (``I`` hides them)."""
        self.fields = {
            name: QLabel(
                self,
                wordWrap=True,
                textInteractionFlags=(Qt.TextInteractionFlag.TextSelectableByMouse),
            )
            for name in ("File", "Folder", "Size", "Dimensions", "Taken", "Camera", "Place")
        }
        for label in self.fields.values():
            label.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.info = QWidget(self, objectName="info")
        form = QFormLayout(self.info)
        for name, label in self.fields.items():
            form.addRow(f"{name}:", label)
        self.info.setFixedWidth(300)

    def _build_button_bar(self) -> QWidget:
        """The row of buttons under the photo; each says its shortcut in its tooltip."""
        bar = QWidget(self, objectName="bar")
        buttons = QHBoxLayout(bar)
        buttons.setContentsMargins(6, 2, 6, 2)
        self.position = QLabel(self)

        def button(
            text: str, tip: str, action: Callable[[], object], checkable: bool = False
        ) -> QToolButton:
            made = QToolButton(self, text=text, toolTip=tip, checkable=checkable)
            made.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # keys stay with the viewer
            made.clicked.connect(lambda _checked=False: action())
            buttons.addWidget(made)
            return made

        self.previous_button = button("◀", "Previous photo (Left)", self.previous)
        self.next_button = button("▶", "Next photo (Right, Space)", self.next)
        buttons.addWidget(self.position)
        buttons.addStretch(1)
        button("Fit", "Fit to the window (0)", lambda: self.canvas.set_zoom(None))
        button("100%", "Actual size (double-click)", self.canvas.toggle_actual_size)
        self.enlarge_button = button(
            "Enlarge small",
            "Enlarge photos smaller than the window",
            self._toggle_enlarge,
            checkable=True,
        )
        self.slideshow_button = button(
            "Slideshow", "Start or stop the slideshow (S)", self.toggle_slideshow, checkable=True
        )
        self.info_button = button(
            "Info", "Show or hide the info panel (I)", self.toggle_info, checkable=True
        )
        self.info_button.setChecked(True)
        button("Full screen", "Full screen (F11)", self.toggle_full_screen)
        button("More like this", "Search for similar photos", self.more_like_this)
        button("Open", "Open with the system's image viewer", self.open_external)
        button("Show in folder", "Show the file in the file manager", self.show_in_folder)
        button("Copy", "Copy the file (Ctrl+C)", self.copy)
        return bar

    def _bind_keys(self) -> None:
        keys: dict[str, Callable[[], object]] = {
            "Right": self.next,
            "Space": self.next,
            "Left": self.previous,
            "Backspace": self.previous,
            "Home": lambda: self.show_row(0),
            "End": lambda: self.show_row(len(self.results) - 1),
            "+": lambda: self.canvas.zoom_by(ZOOM_STEP),
            "=": lambda: self.canvas.zoom_by(ZOOM_STEP),
            "-": lambda: self.canvas.zoom_by(1 / ZOOM_STEP),
            "0": lambda: self.canvas.set_zoom(None),
            "F11": self.toggle_full_screen,
            "F": self.toggle_full_screen,
            "I": self.toggle_info,
            "S": self.toggle_slideshow,
            "Esc": self.escape,
            "Ctrl+C": self.copy,
        }
        self.shortcuts = []
        for key, action in keys.items():
            shortcut = QShortcut(
                QKeySequence(key), self, context=(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            )
            shortcut.activated.connect(action)
            self.shortcuts.append(shortcut)

    @property
    def current(self) -> SearchResult:
        return self.results[self.row]

    # --- moving ----------------------------------------------------------------------------

    def next(self) -> None:
        self.show_row(self.row + 1)

    def previous(self) -> None:
        self.show_row(self.row - 1)

    def show_row(self, row: int) -> None:
        if not 0 <= row < len(self.results):
            return
        changed = row != self.row
        self.row = row
        result = self.current
        self.setWindowTitle(f"{display_path(os.path.basename(result.path))} — photosearch")
        self.position.setText(f"{row + 1:,} of {len(self.results):,}")
        pixmap, message = load_photo(result.path)
        self.canvas.set_pixmap(pixmap, message)
        self.previous_button.setEnabled(row > 0)
        self.next_button.setEnabled(row < len(self.results) - 1)
        try:
            size = f"{os.path.getsize(result.path) / 1e6:.1f} MB"
        except OSError:
            size = "file not found"
        values = {
            "File": display_path(os.path.basename(result.path)),
            "Folder": display_path(os.path.dirname(result.path)),
            "Size": size,
            "Dimensions": f"{result.width:,} × {result.height:,}" if result.width else "unknown",
            "Taken": describe_date(result),
            "Camera": result.camera or "unknown",
            "Place": result.place or "unknown",  # issue 20: from the photo's GPS position
        }
        for name, value in values.items():
            self.fields[name].setText(value)
        if changed:
            self.currentChanged.emit(row)

    def _slideshow_step(self) -> None:
        if self.row >= len(self.results) - 1:
            self.toggle_slideshow(False)
        else:
            self.next()

    # --- view ------------------------------------------------------------------------------

    def toggle_slideshow(self, on: bool | None = None) -> None:
        on = not self.slideshow.isActive() if on is None else on
        if on:
            self.slideshow.start()
        else:
            self.slideshow.stop()
        self.slideshow_button.setChecked(on)

    def toggle_info(self) -> None:
        self.info.setVisible(not self.info.isVisible())
        self.info_button.setChecked(self.info.isVisible())

    def toggle_full_screen(self) -> None:
        if self.isFullScreen():
            self.showNormal()
        else:
            self.showFullScreen()

    def _toggle_enlarge(self) -> None:
        self.canvas.enlarge_small = self.enlarge_button.isChecked()
        self.canvas.update()

    def escape(self) -> None:
        if self.slideshow.isActive():
            self.toggle_slideshow(False)
        elif self.isFullScreen():
            self.showNormal()
        else:
            self.close()

    def showEvent(self, event) -> None:  # noqa: ANN001
        super().showEvent(event)
        self.activateWindow()
        self.canvas.setFocus(Qt.FocusReason.ActiveWindowFocusReason)

    def closeEvent(self, event) -> None:  # noqa: ANN001
        self.slideshow.stop()
        super().closeEvent(event)

    # --- actions ---------------------------------------------------------------------------

    def more_like_this(self) -> None:
        self.moreLikeRequested.emit(Path(self.current.path))

    def open_external(self) -> bool:
        opened = photo_actions.open_externally(self.current.path)
        if not opened:
            _tell(self, "No application is set up to open photos on this computer.")
        return opened

    def show_in_folder(self) -> str | None:
        shown = photo_actions.show_in_folder(self.current.path)
        if shown is None:
            _tell(
                self,
                "No file manager is set up to show folders on this computer.\n\n"
                f"The photo is at:\n{self.current.path}",
            )
        return shown

    def copy(self) -> None:
        photo_actions.copy_files([self.current.path])

    def copy_path(self) -> None:
        photo_actions.copy_paths([self.current.path])


def _tell(parent: QWidget, message: str) -> None:
    box = QMessageBox(
        QMessageBox.Icon.Information, "photosearch", message, QMessageBox.StandardButton.Ok, parent
    )
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.open()


def load_photo(path: str) -> tuple[QPixmap, str]:
    """The photo upright per EXIF, decoded at up to MAX_DECODE px; formats Qt cannot read
    (HEIC, camera RAW) go through the app's own decoder. Returns (pixmap, error message)."""
    from photosearch.errors import PhotosearchError
    from photosearch.files.photo_files import open_regular_file

    try:  # read here, not by Qt: Qt cannot name files whose bytes are not UTF-8
        with open_regular_file(path) as handle:
            data = QByteArray(handle.read())
    except (OSError, PhotosearchError) as exc:
        return QPixmap(), f"Cannot show this photo: {exc}"
    buffer = QBuffer(data)
    reader = QImageReader(buffer)
    reader.setAutoTransform(True)
    full = reader.size()
    bound = QSize(MAX_DECODE, MAX_DECODE)
    if full.isValid() and (full.width() > bound.width() or full.height() > bound.height()):
        reader.setScaledSize(full.scaled(bound, Qt.AspectRatioMode.KeepAspectRatio))
    image = reader.read()
    if not image.isNull():
        return QPixmap.fromImage(image), ""
    qt_error = reader.errorString()
    from photosearch.errors import UnsupportedImage
    from photosearch.files.imaging import load_image

    try:
        decoded, _ = load_image(Path(path), min_size=MAX_DECODE)
    except UnsupportedImage as exc:
        return QPixmap(), f"Cannot show this photo: {exc}"
    except OSError:
        return QPixmap(), f"Cannot show this photo: {qt_error}"
    data = decoded.tobytes()
    image = QImage(
        data, decoded.width, decoded.height, decoded.width * 3, QImage.Format.Format_RGB888
    ).copy()
    return QPixmap.fromImage(image), ""
