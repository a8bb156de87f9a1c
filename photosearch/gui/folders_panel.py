"""The side panel listing library folders with their photo counts; add and remove."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from photosearch.library import FolderInfo


class FoldersPanel(QWidget):
    addRequested = Signal(Path)
    removeRequested = Signal(Path)
    filterRequested = Signal(str)  # double-click: search only in this folder

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.list = QListWidget(self)
        self.list.setWordWrap(True)
        self.list.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.list.itemDoubleClicked.connect(
            lambda item: self.filterRequested.emit(item.data(Qt.ItemDataRole.UserRole)))
        self.list.currentItemChanged.connect(lambda *_: self._update_buttons())
        self.add_button = QPushButton("Add…", self)
        self.add_button.clicked.connect(self.choose_folder)
        self.remove_button = QPushButton("Remove", self)
        self.remove_button.clicked.connect(self._remove_selected)
        self.summary = QLabel(self)
        title = QLabel("<b>Folders</b>", self)
        buttons = QHBoxLayout()
        buttons.addWidget(self.add_button)
        buttons.addWidget(self.remove_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(title)
        layout.addWidget(self.list, 1)
        layout.addWidget(self.summary)
        layout.addLayout(buttons)
        self._update_buttons()

    def set_folders(self, folders: list[FolderInfo]) -> None:
        self.list.clear()
        dim = self.palette().color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text)
        for info in folders:
            state = f"{info.photos:,} photos"
            if info.failed:
                state += f", {info.failed:,} unreadable"
            if not info.online:
                state += " — offline"
            item = QListWidgetItem(f"{Path(info.path).name or info.path}\n{state}")
            item.setData(Qt.ItemDataRole.UserRole, info.path)
            item.setToolTip(f"{info.path}\n{state}\nDouble-click to search only here")
            if not info.online:
                item.setForeground(dim)
            self.list.addItem(item)
        total = sum(f.photos for f in folders)
        noun = "folder" if len(folders) == 1 else "folders"
        self.summary.setText(f"{total:,} photos in {len(folders)} {noun}" if folders
                             else "No folders yet")
        self._update_buttons()

    def choose_folder(self) -> None:
        chosen = QFileDialog.getExistingDirectory(self, "Add a photo folder")
        if chosen:
            self.addRequested.emit(Path(chosen))

    def _remove_selected(self) -> None:
        item = self.list.currentItem()
        if item is None:
            return
        path = item.data(Qt.ItemDataRole.UserRole)
        answer = QMessageBox.question(
            self, "Remove folder",
            f"Stop searching {path}?\n\nThe photos themselves are not touched.")
        if answer == QMessageBox.StandardButton.Yes:
            self.removeRequested.emit(Path(path))

    def _update_buttons(self) -> None:
        self.remove_button.setEnabled(self.list.currentItem() is not None)
