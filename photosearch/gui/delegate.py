"""Paints one grid cell: the thumbnail fitted into a fixed cell, or a placeholder."""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QRect, QSize, Qt
from PySide6.QtGui import QPainter, QPalette, QPixmap
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem

from photosearch.gui.results_model import FailedRole

CELL_PADDING = 6


class ThumbnailDelegate(QStyledItemDelegate):
    """Fixed-size cells keep QListView's layout O(1) per row (uniform item sizes)."""

    def __init__(self, thumbnail_size: QSize, parent=None):  # noqa: ANN001
        super().__init__(parent)
        self.thumbnail_size = thumbnail_size
        self.cell_width = self.cell_size().width()  # widened by the view to fill its rows

    def cell_size(self) -> QSize:
        """The smallest cell: the thumbnail and its padding."""
        return self.thumbnail_size + QSize(2 * CELL_PADDING, 2 * CELL_PADDING)

    def sizeHint(self, option: QStyleOptionViewItem,  # noqa: N802
                 index: QModelIndex | QPersistentModelIndex) -> QSize:
        return QSize(self.cell_width, self.cell_size().height())

    def paint(self, painter: QPainter, option: QStyleOptionViewItem,
              index: QModelIndex | QPersistentModelIndex) -> None:
        palette = option.palette
        cell = option.rect
        painter.save()
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        if selected:
            painter.fillRect(cell.adjusted(1, 1, -1, -1),
                             palette.color(QPalette.ColorRole.Highlight))
        elif option.state & QStyle.StateFlag.State_MouseOver:
            painter.fillRect(cell.adjusted(1, 1, -1, -1),
                             palette.color(QPalette.ColorRole.AlternateBase))
        inner = cell.adjusted(CELL_PADDING, CELL_PADDING, -CELL_PADDING, -CELL_PADDING)
        pixmap = index.data(Qt.ItemDataRole.DecorationRole)
        if isinstance(pixmap, QPixmap) and not pixmap.isNull():
            space = inner.size().boundedTo(self.thumbnail_size)  # wide cells: no upscaling
            size = pixmap.deviceIndependentSize().toSize().scaled(
                space, Qt.AspectRatioMode.KeepAspectRatio)
            target = QRect(0, 0, size.width(), size.height())
            target.moveCenter(inner.center())
            painter.drawPixmap(target, pixmap)
        else:
            painter.fillRect(inner.adjusted(8, 8, -8, -8), palette.color(QPalette.ColorRole.Mid))
            if index.data(FailedRole):
                painter.setPen(palette.color(QPalette.ColorRole.Text))
                painter.drawText(inner, Qt.AlignmentFlag.AlignCenter, "no preview")
        painter.restore()
