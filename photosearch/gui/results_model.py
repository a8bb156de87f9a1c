"""The grid's list model: plain SearchResults in, thumbnails and tooltips out.

Only rows the view paints ask for a thumbnail, so a 100k-row result set costs one Python list
and a path->row dict; nothing per row is computed up front.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import QAbstractListModel, QModelIndex, QObject, QPersistentModelIndex, Qt

from photosearch.gui.thumbnails import ThumbnailLoader
from photosearch.photo_files import display_path
from photosearch.search import SearchResult

ResultRole = Qt.ItemDataRole.UserRole + 1
FailedRole = Qt.ItemDataRole.UserRole + 2
Index = QModelIndex | QPersistentModelIndex


class ResultsModel(QAbstractListModel):
    def __init__(self, thumbnails: ThumbnailLoader, parent: QObject | None = None):
        super().__init__(parent)
        self.thumbnails = thumbnails
        self._results: list[SearchResult] = []
        self._rows: dict[str, int] = {}
        thumbnails.ready.connect(self._thumbnail_ready)

    def set_results(self, results: Sequence[SearchResult]) -> None:
        self.thumbnails.forget_pending()
        self.beginResetModel()
        self._results = list(results)
        self._rows = {r.path: i for i, r in enumerate(self._results)}
        self.endResetModel()

    def results(self) -> list[SearchResult]:
        return list(self._results)

    def result(self, row: int) -> SearchResult:
        return self._results[row]

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008, N802
        return 0 if parent.isValid() else len(self._results)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.row() >= len(self._results):
            return None
        result = self._results[index.row()]
        if role == Qt.ItemDataRole.DecorationRole:
            return self.thumbnails.pixmap(result.path)
        if role == Qt.ItemDataRole.DisplayRole:
            return display_path(os.path.basename(result.path))
        if role == Qt.ItemDataRole.ToolTipRole:
            return tooltip(result, self.thumbnails.failed.get(result.path))
        if role == ResultRole:
            return result
        if role == FailedRole:
            return self.thumbnails.failed.get(result.path)
        return None

    def _thumbnail_ready(self, photo: str) -> None:
        row = self._rows.get(photo)
        if row is not None:
            index = self.index(row)
            self.dataChanged.emit(index, index, [Qt.ItemDataRole.DecorationRole])


def tooltip(result: SearchResult, failure: str | None = None) -> str:
    lines = [display_path(os.path.basename(result.path)), f"relevance {result.score:.3f}"]
    if result.taken_at:
        lines.append(result.taken_at.strftime("%Y-%m-%d %H:%M"))
    if result.camera:
        lines.append(result.camera)
    if failure:
        lines.append(f"no preview: {failure}")
    return "\n".join(lines)
