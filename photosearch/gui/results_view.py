"""The virtualised thumbnail grid: a QListView in icon mode with fixed-size cells."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtWidgets import QAbstractItemView, QListView, QWidget

from photosearch.gui.delegate import ThumbnailDelegate


class ResultsView(QListView):
    """Uniform cells and a static layout let Qt place 100k items without asking each one."""

    openRequested = Signal(int)  # a row: Enter or double-click
    searchFocusRequested = Signal()  # "/" typed in the grid
    escapePressed = Signal()

    def __init__(self, thumbnail_size: QSize, parent: QWidget | None = None):
        super().__init__(parent)
        self.delegate = ThumbnailDelegate(thumbnail_size, self)
        self.setItemDelegate(self.delegate)
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setMovement(QListView.Movement.Static)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setUniformItemSizes(True)
        self.setLayoutMode(QListView.LayoutMode.Batched)
        self.setBatchSize(2000)
        self.setGridSize(self.delegate.cell_size())
        self.setSpacing(0)
        self.setWrapping(True)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.verticalScrollBar().setSingleStep(24)
        self.setMouseTracking(True)
        self.setDragEnabled(False)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.doubleClicked.connect(lambda index: self.openRequested.emit(index.row()))

    def fit_columns(self) -> None:
        """Widen the cells so whole columns fill the viewport: no empty strip on the right."""
        smallest = self.delegate.cell_size()
        width = self.viewport().width()
        columns = max(1, width // smallest.width())
        cell = QSize(max(smallest.width(), width // columns), smallest.height())
        if cell != self.gridSize():
            self.delegate.cell_width = cell.width()
            self.setGridSize(cell)

    def resizeEvent(self, event) -> None:  # noqa: ANN001, N802
        self.fit_columns()
        super().resizeEvent(event)

    def keyPressEvent(self, event) -> None:  # noqa: ANN001, N802
        key = event.key()
        if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            if self.currentIndex().isValid():
                self.openRequested.emit(self.currentIndex().row())
            return
        if event.text() == "/":
            self.searchFocusRequested.emit()
            return
        if key == Qt.Key.Key_Escape:
            self.escapePressed.emit()
            return
        super().keyPressEvent(event)
