"""A strip beside the grid that maps the whole timeline onto its height: months (or years,
when months would crowd) are labelled where they start, and clicking or dragging jumps there."""

from __future__ import annotations

from PySide6.QtCore import QRect, Qt
from PySide6.QtGui import QColor, QPainter, QPalette
from PySide6.QtWidgets import QWidget

from photosearch.gui.photo_grid import PhotoGrid

LABEL_SPACING = 18  # px between labels at least


class DateScrubber(QWidget):
    def __init__(self, grid: PhotoGrid, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.grid = grid
        self.setFixedWidth(84)
        self.setMouseTracking(True)
        self.setToolTip("Drag to move through time")
        self.labels: list[tuple[float, str]] = []  # (fraction of the height, text)
        grid.layoutChanged.connect(self.refresh)
        grid.verticalScrollBar().valueChanged.connect(lambda _v: self.update())

    def refresh(self) -> None:
        layout = self.grid.layout_
        total = max(1, layout.height)
        months = [
            (y / total, _short(h.title))
            for y, h in layout.headers()
            if h.kind == "major" and h.title.split(" · ")[0][-4:].isdigit()
        ]
        if len(months) * LABEL_SPACING > max(1, self.height()):
            years: list[tuple[float, str]] = []
            for fraction, title in months:
                year = title.split()[-1]  # "Mar 2026" -> "2026"
                if not years or years[-1][1] != year:
                    years.append((fraction, year))
            months = years
        self.labels = months
        self.update()

    def resizeEvent(self, event) -> None:  # noqa: ANN001
        super().resizeEvent(event)
        self.refresh()

    def paintEvent(self, event) -> None:  # noqa: ANN001
        painter = QPainter(self)
        palette = self.palette()
        height = self.height()
        layout = self.grid.layout_
        if layout.height > 0:
            bar = self.grid.verticalScrollBar()
            top = bar.value() / layout.height * height
            span = max(6.0, self.grid.viewport().height() / layout.height * height)
            colour = QColor(palette.color(QPalette.ColorRole.Highlight))
            colour.setAlpha(60)
            painter.fillRect(QRect(0, round(top), self.width(), round(span)), colour)
        painter.setPen(palette.color(QPalette.ColorRole.Text))
        small = painter.font()
        small.setPointSizeF(small.pointSizeF() * 0.85)
        painter.setFont(small)
        last = -LABEL_SPACING
        for fraction, text in self.labels:
            y = round(fraction * height)
            if y - last < LABEL_SPACING:
                continue
            painter.drawText(
                QRect(4, y, self.width() - 6, LABEL_SPACING),
                Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignTop,
                text,
            )
            last = y

    def mousePressEvent(self, event) -> None:  # noqa: ANN001
        self._jump(event.position().y())

    def mouseMoveEvent(self, event) -> None:  # noqa: ANN001
        if event.buttons() & Qt.MouseButton.LeftButton:
            self._jump(event.position().y())

    def _jump(self, y: float) -> None:
        fraction = min(max(y / max(1, self.height()), 0.0), 1.0)
        bar = self.grid.verticalScrollBar()
        bar.setValue(round(fraction * self.grid.layout_.height - self.grid.viewport().height() / 2))


def _short(title: str) -> str:
    """ "September 2026 · file date" -> "Sep 2026"."""
    words = title.split(" · ")[0].split()
    return f"{words[0][:3]} {words[-1]}" if len(words) >= 2 else title
