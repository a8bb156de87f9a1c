"""The Duplicates view: groups of near-duplicate photos (photosearch.search.duplicates), the copy
worth keeping first, with sizes; the selected copies can be moved to the trash (the app's one
way of removing photos: asked first, through the controller like the main window's action).

The groups are found in a pool thread (about a second per few thousand photos) and the list
is rebuilt after every trash run the controller reports.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from PySide6.QtCore import QObject, QSize, Qt, QThreadPool, Signal
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from photosearch.gui.controller import LibraryController
from photosearch.gui.folders_panel import photos_text
from photosearch.gui.photo_actions import ask_to_trash
from photosearch.gui.thumbnails import ThumbnailCache, ThumbnailLoader
from photosearch.search.duplicates import DuplicateGroup, DuplicatePhoto, find_groups

ICON_SIZE = QSize(64, 64)
PATH_ROLE = Qt.ItemDataRole.UserRole


class _Finder(QObject):
    found = Signal(object)  # list[DuplicateGroup]
    failed = Signal(str)


class DuplicatesWindow(QWidget):
    """A window of its own (Library ▸ Find duplicates…), so the grid stays as it was."""

    def __init__(self, controller: LibraryController, parent: QWidget | None = None) -> None:
        super().__init__(parent, Qt.WindowType.Window)
        self.setWindowTitle("Duplicates")
        self.controller = controller
        self.groups: list[DuplicateGroup] = []
        self.confirm_box: QMessageBox | None = None
        self.searching = False
        self._finder = _Finder(self)
        self._finder.found.connect(self._show_groups)
        self._finder.failed.connect(self._show_failure)
        library = controller.library
        self.thumbnails = ThumbnailLoader(
            ThumbnailCache(library.directory / "thumbnails"), ICON_SIZE, threads=1, parent=self
        )
        self.thumbnails.ready.connect(self._thumbnail_ready)

        self.summary = QLabel("Looking for near-duplicates…", self)
        self.tree = QTreeWidget(self)
        self.tree.setHeaderLabels(["Photo", "Pixels", "Size", "Date", "Folder"])
        self.tree.setIconSize(ICON_SIZE)
        self.tree.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.tree.itemSelectionChanged.connect(self._update_buttons)
        self.select_copies_button = QPushButton("Select all but the best of each", self)
        self.select_copies_button.clicked.connect(self.select_copies)
        self.trash_button = QPushButton("Move to trash…", self)
        self.trash_button.clicked.connect(self.confirm_trash)
        buttons = QHBoxLayout()
        buttons.addWidget(self.select_copies_button)
        buttons.addStretch(1)
        buttons.addWidget(self.trash_button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.summary)
        layout.addWidget(self.tree, 1)
        layout.addLayout(buttons)
        self.resize(900, 640)
        controller.trashFinished.connect(lambda _report: self.refresh())
        self._update_buttons()
        self.refresh()

    def refresh(self) -> None:
        """Find the groups again, in a pool thread."""
        self.searching = True
        self.summary.setText("Looking for near-duplicates…")
        library = self.controller.library

        finder = self._finder

        def work() -> None:
            try:
                library.models.follow_saved()
                groups = find_groups(library.catalog, library.store)
            except Exception as exc:
                _emit(finder.failed, f"Could not look for duplicates: {exc}")
                return
            _emit(finder.found, groups)

        QThreadPool.globalInstance().start(work)

    def _show_failure(self, message: str) -> None:
        self.searching = False
        self.summary.setText(message)

    def _show_groups(self, groups: list[DuplicateGroup]) -> None:
        self.searching = False
        self.groups = groups
        self.tree.clear()
        if not groups:
            self.summary.setText("No near-duplicates found.")
            self._update_buttons()
            return
        copies = sum(len(g.photos) - 1 for g in groups)
        self.summary.setText(
            f"{len(groups):,} groups of near-duplicates (resized, recompressed or mirrored "
            f"copies); the {photos_text(copies)} besides the best of each take "
            f"{size_text(sum(g.extra_bytes for g in groups))}. Nothing is removed unless you "
            "move it to the trash."
        )
        for number, group in enumerate(groups, 1):
            top = QTreeWidgetItem(
                self.tree,
                [
                    f"Group {number}: {photos_text(len(group.photos))}",
                    "",
                    size_text(group.total_bytes),
                    "",
                    "",
                ],
            )
            top.setFlags(top.flags() & ~Qt.ItemFlag.ItemIsSelectable)
            for rank, photo in enumerate(group.photos):
                self._photo_item(top, photo, best=rank == 0)
            top.setExpanded(True)
        for column in range(1, 4):
            self.tree.resizeColumnToContents(column)
        self._update_buttons()

    def _photo_item(
        self, parent: QTreeWidgetItem, photo: DuplicatePhoto, best: bool
    ) -> QTreeWidgetItem:
        name = Path(photo.path).name + (" (best)" if best else "")
        pixels = f"{photo.width}×{photo.height}" if photo.width and photo.height else "?"
        date = photo.shown_date.strftime("%Y-%m-%d") if photo.shown_date else ""
        item = QTreeWidgetItem(
            parent, [name, pixels, size_text(photo.size_bytes), date, str(Path(photo.path).parent)]
        )
        item.setData(0, PATH_ROLE, photo.path)
        item.setToolTip(0, photo.path)
        pixmap = self.thumbnails.pixmap(photo.path)
        if pixmap is not None:
            item.setIcon(0, QIcon(pixmap))
        return item

    def _thumbnail_ready(self, path: str) -> None:
        pixmap = self.thumbnails.cached(path)
        if pixmap is None:
            return
        for item in self._photo_items():
            if item.data(0, PATH_ROLE) == path:
                item.setIcon(0, QIcon(pixmap))

    def _photo_items(self) -> list[QTreeWidgetItem]:
        items = []
        for row in range(self.tree.topLevelItemCount()):
            top = self.tree.topLevelItem(row)
            items += [top.child(i) for i in range(top.childCount())]
        return items

    def selected_paths(self) -> list[str]:
        return [
            item.data(0, PATH_ROLE) for item in self.tree.selectedItems() if item.data(0, PATH_ROLE)
        ]

    def select_copies(self) -> None:
        """Select every photo except the best of its group."""
        self.tree.clearSelection()
        for row in range(self.tree.topLevelItemCount()):
            top = self.tree.topLevelItem(row)
            for i in range(1, top.childCount()):
                top.child(i).setSelected(True)

    def _update_buttons(self) -> None:
        chosen = len(self.selected_paths())
        self.trash_button.setEnabled(chosen > 0)
        self.trash_button.setText(
            f"Move {photos_text(chosen)} to trash…" if chosen else "Move to trash…"
        )
        self.select_copies_button.setEnabled(bool(self.groups))

    def confirm_trash(self) -> QMessageBox | None:
        """Ask before moving the selected photos to the trash (window-modal, not blocking)."""
        paths = self.selected_paths()
        if not paths:
            return None
        what = photos_text(len(paths))

        def answered(confirmed: bool) -> None:
            if confirmed:
                self.summary.setText(f"Moving {what} to the trash…")
                self.controller.move_to_trash(paths)

        self.confirm_box = ask_to_trash(self, what, answered)
        return self.confirm_box

    def closeEvent(self, event) -> None:  # noqa: ANN001
        self.thumbnails.forget_pending()
        self.thumbnails.wait(5000)
        super().closeEvent(event)


def _emit(signal, value: object) -> None:  # noqa: ANN001 - a bound Qt signal
    """Report from the pool thread; the window may have been closed and deleted meanwhile."""
    with contextlib.suppress(RuntimeError):  # its C++ object is gone: nobody is waiting
        signal.emit(value)


def size_text(nbytes: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if nbytes >= scale:
            return f"{nbytes / scale:.1f} {unit}"
    return f"{nbytes} B"
