"""The side panel: "All photos" and each library folder with its photo count; one click on a
folder shows only its photos (the selection shows the filter), add and remove folders.

Counts are of readable photos, so the folders add up to the total; files that could not be
read are counted apart ("1 file could not be read"). A folder still being indexed for the
first time says so instead of "0 photos".
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QStandardPaths, Qt, Signal
from PySide6.QtGui import QFont, QPalette
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPushButton,
    QStyle,
    QVBoxLayout,
    QWidget,
)

from photosearch.library.facade import FolderInfo

ALL = ""  # the item data of "All photos"


def photos_text(count: int) -> str:
    return f"{count:,} photo" if count == 1 else f"{count:,} photos"


def unreadable_text(count: int) -> str:
    return "1 file could not be read" if count == 1 else f"{count:,} files could not be read"


def start_folder() -> str:
    """Where "Add folder" opens: the Pictures folder if there is one, else home."""
    pictures = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.PicturesLocation)
    if pictures and Path(pictures).is_dir():
        return pictures
    return str(Path.home())


class FoldersPanel(QWidget):
    addRequested = Signal(Path)
    removeRequested = Signal(Path)
    filterRequested = Signal(object)  # a folder path, or None for all photos

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.indexing = False
        self._folders: list[FolderInfo] = []
        self.list = QListWidget(self)
        self.list.setWordWrap(True)
        self.list.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.list.setIconSize(self.list.iconSize() * 1.5)
        self.list.currentItemChanged.connect(self._current_changed)
        self.add_button = QPushButton("Add folder…", self)
        self.add_button.clicked.connect(self.choose_folder)
        self.remove_button = QPushButton("Remove", self)
        self.remove_button.clicked.connect(self._remove_selected)
        self.summary = QLabel(self, wordWrap=True)
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
        self.set_folders([])

    @property
    def current_folder(self) -> str | None:
        item = self.list.currentItem()
        path = item.data(Qt.ItemDataRole.UserRole) if item is not None else ALL
        return path or None

    def set_indexing(self, indexing: bool) -> None:
        if indexing != self.indexing:
            self.indexing = indexing
            self.set_folders(self._folders)

    def set_folders(self, folders: list[FolderInfo]) -> None:
        self._folders = list(folders)
        chosen = self.current_folder
        self.list.blockSignals(True)
        self.list.clear()
        style = self.style()
        dim = self.palette().color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text)
        total = sum(f.photos - f.failed for f in folders)
        everything = QListWidgetItem(
            style.standardIcon(QStyle.StandardPixmap.SP_DirHomeIcon),
            f"All photos\n{photos_text(total)}",
        )
        everything.setData(Qt.ItemDataRole.UserRole, ALL)
        everything.setToolTip("Show photos from every folder")
        self.list.addItem(everything)
        for info in folders:
            readable = info.photos - info.failed
            if not readable and self.indexing and info.online:
                state = "indexing…"
            else:
                state = photos_text(readable)
            if info.failed:
                state += f"\n{unreadable_text(info.failed)}"
            if not info.online:
                state += " — offline"
            icon = style.standardIcon(
                QStyle.StandardPixmap.SP_DirIcon
                if info.online
                else QStyle.StandardPixmap.SP_DriveNetIcon
            )
            item = QListWidgetItem(icon, f"{Path(info.path).name or info.path}\n{state}")
            item.setData(Qt.ItemDataRole.UserRole, info.path)
            item.setToolTip(f"{info.path}\nClick to show only the photos in this folder")
            if not info.online:
                item.setForeground(dim)
            self.list.addItem(item)
        paths = [f.path for f in folders]
        row = paths.index(chosen) + 1 if chosen in paths else 0
        self.list.setCurrentRow(row)
        self._mark_current()
        self.list.blockSignals(False)
        if folders:
            noun = "folder" if len(folders) == 1 else "folders"
            self.summary.setText(f"{photos_text(total)} in {len(folders)} {noun}")
        else:
            self.summary.setText("No folders yet: add the folder where your photos are.")
        self._update_buttons()
        if chosen is not None and chosen not in paths:
            self.filterRequested.emit(None)  # the filtered folder was removed

    def select_folder(self, path: str | None) -> None:
        for row in range(self.list.count()):
            if (self.list.item(row).data(Qt.ItemDataRole.UserRole) or None) == path:
                self.list.setCurrentRow(row)
                return

    def choose_folder(self) -> None:
        chosen = QFileDialog.getExistingDirectory(self, "Add a photo folder", start_folder())
        if chosen:
            self.addRequested.emit(Path(chosen))

    def _current_changed(self, *_args: object) -> None:
        self._mark_current()
        self._update_buttons()
        self.filterRequested.emit(self.current_folder)

    def _mark_current(self) -> None:
        current = self.list.currentItem()
        for row in range(self.list.count()):
            item = self.list.item(row)
            font = QFont(self.list.font())
            font.setBold(item is current)
            item.setFont(font)

    def _remove_selected(self) -> None:
        path = self.current_folder
        if path is None:
            return
        answer = QMessageBox.question(
            self,
            "Remove folder",
            f"Stop showing and searching {path}?\n\nThe photos themselves are not touched.",
        )
        if answer == QMessageBox.StandardButton.Yes:
            self.removeRequested.emit(Path(path))

    def _update_buttons(self) -> None:
        self.remove_button.setEnabled(self.current_folder is not None)
