"""The search field with its filters (folder, dates, camera), the "like" photo, and sorting.

Typing is debounced: each keystroke restarts a 250 ms timer and only its timeout asks for a
search, so "red car" typed quickly costs one query, not seven. Filter changes search at once.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path

from PySide6.QtCore import QDate, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDateEdit,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from photosearch.library import FolderInfo
from photosearch.search import SearchQuery

DEBOUNCE_MS = 250
SORT_RELEVANCE = "relevance"
SORT_DATE = "date"


class SearchBar(QWidget):
    searchRequested = Signal()  # the query or a filter changed (debounced for typing)
    sortChanged = Signal(str)
    escapePressed = Signal()
    downPressed = Signal()  # the user wants to move from the field into the results

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._like: Path | None = None
        self.debounce = QTimer(self, singleShot=True, interval=DEBOUNCE_MS)
        self.debounce.timeout.connect(self.searchRequested)

        self.field = _SearchField(self, clearButtonEnabled=True)
        self.field.setPlaceholderText('Describe a photo, e.g. "dog on a beach -people"')
        self.field.textEdited.connect(lambda _text: self.debounce.start())
        self.field.returnPressed.connect(self._search_now_then_leave)
        self.field.escapePressed.connect(self.escapePressed)
        self.field.downPressed.connect(self.downPressed)
        self.like_button = QToolButton(self, toolTip="Searching for photos like this one; "
                                       "click to stop")
        self.like_button.clicked.connect(self.clear_like)
        self.like_button.hide()
        self.sort = QComboBox(self)
        self.sort.addItem("Most relevant", SORT_RELEVANCE)
        self.sort.addItem("Newest (relevant only)", SORT_DATE)
        self.sort.currentIndexChanged.connect(lambda _i: self.sortChanged.emit(self.sort_key))

        self.folder = QComboBox(self, toolTip="Only photos in this folder")
        self.folder.addItem("All folders", None)
        self.after_on = QCheckBox("From", self)
        self.after = QDateEdit(self, calendarPopup=True, displayFormat="yyyy-MM-dd")
        self.before_on = QCheckBox("to", self)
        self.before = QDateEdit(self, calendarPopup=True, displayFormat="yyyy-MM-dd")
        today = QDate.currentDate()
        self.after.setDate(today.addYears(-1))
        self.before.setDate(today)
        self.camera = QLineEdit(self, clearButtonEnabled=True, placeholderText="Camera")
        self.camera.setMaximumWidth(160)

        for box in (self.after_on, self.before_on):
            box.toggled.connect(self._filters_changed)
        for edit in (self.after, self.before):
            edit.dateChanged.connect(self._dates_changed)
        self.folder.currentIndexChanged.connect(self._filters_changed)
        self.camera.textEdited.connect(lambda _t: self.debounce.start())

        top = QHBoxLayout()
        top.addWidget(self.field, 1)
        top.addWidget(self.like_button)
        top.addWidget(self.sort)
        filters = QHBoxLayout()
        filters.addWidget(QLabel("Filters:", self))
        filters.addWidget(self.folder, 1)
        filters.addWidget(self.after_on)
        filters.addWidget(self.after)
        filters.addWidget(self.before_on)
        filters.addWidget(self.before)
        filters.addWidget(self.camera)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addLayout(filters)

    # --- state -----------------------------------------------------------------------------

    @property
    def sort_key(self) -> str:
        return str(self.sort.currentData())

    @property
    def like(self) -> Path | None:
        return self._like

    def set_like(self, path: Path | None) -> None:
        self._like = path
        self.like_button.setVisible(path is not None)
        if path is not None:
            self.like_button.setText(f"Like {os.path.basename(path)} ✕")
        self.searchRequested.emit()

    def clear_like(self) -> None:
        self.set_like(None)

    def set_folders(self, folders: list[FolderInfo]) -> None:
        current = self.folder.currentData()
        self.folder.blockSignals(True)
        self.folder.clear()
        self.folder.addItem("All folders", None)
        for info in folders:
            self.folder.addItem(info.path, info.path)
        found = self.folder.findData(current)
        self.folder.setCurrentIndex(max(found, 0))
        self.folder.blockSignals(False)
        if current is not None and found < 0:
            self._filters_changed()

    def set_folder_filter(self, path: str | None) -> None:
        self.folder.setCurrentIndex(max(self.folder.findData(path), 0))

    def query(self, k: int) -> SearchQuery | None:
        """The query the widgets describe, or None when there is nothing to search by."""
        text = self.field.text().strip()
        if not text and self._like is None:
            return None
        folder = self.folder.currentData()
        after = _start_of(self.after.date()) if self.after_on.isChecked() else None
        before = (_start_of(self.before.date()) + timedelta(days=1)
                  if self.before_on.isChecked() else None)
        camera = self.camera.text().strip() or None
        return SearchQuery(text=text, like=self._like, k=k,
                           folder=Path(folder) if folder else None,
                           after=after, before=before, camera=camera)

    def focus_field(self) -> None:
        self.field.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.field.selectAll()

    def clear(self) -> None:
        self.debounce.stop()
        self.field.clear()
        self._like = None
        self.like_button.hide()
        self.searchRequested.emit()

    # --- events ----------------------------------------------------------------------------

    def _search_now_then_leave(self) -> None:
        if self.debounce.isActive():
            self.debounce.stop()
            self.searchRequested.emit()
        self.downPressed.emit()

    def _dates_changed(self) -> None:
        if self.after_on.isChecked() or self.before_on.isChecked():
            self._filters_changed()

    def _filters_changed(self) -> None:
        self.debounce.stop()
        self.searchRequested.emit()


class _SearchField(QLineEdit):
    """Esc and Down leave the field (a key override, not an event filter: PySide6 6.12
    mis-counts references to the bools an eventFilter override returns)."""

    escapePressed = Signal()
    downPressed = Signal()

    def keyPressEvent(self, event) -> None:  # noqa: ANN001, N802
        if event.key() == Qt.Key.Key_Escape:
            self.escapePressed.emit()
        elif event.key() == Qt.Key.Key_Down:
            self.downPressed.emit()
        else:
            super().keyPressEvent(event)


def _start_of(day: QDate) -> datetime:
    return datetime(day.year(), day.month(), day.day())
