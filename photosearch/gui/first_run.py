"""The first-run screen: what the app does, which folders to search, then start indexing."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QStandardPaths
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

INTRO = (
    "<h2>Find your photos by describing them</h2>"
    "<p>Type what is in a photo — <i>“kids on a beach at sunset”</i>, <i>“a red bicycle”</i> — "
    "and photosearch shows the best matches from your own folders.</p>"
    "<p>Everything runs on this computer: your photos are never uploaded and never changed. "
    "The app first looks at each photo once (indexing); you can search while it works.</p>"
    "<p><b>Which folders hold your photos?</b></p>"
)


def suggested_folders() -> list[Path]:
    """The user's Pictures folder, when the platform has one that exists."""
    location = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.PicturesLocation)
    return [Path(location)] if location and Path(location).is_dir() else []


class FirstRunDialog(QDialog):
    def __init__(self, suggested: list[Path], parent: QWidget | None = None):
        super().__init__(parent, windowTitle="Welcome to photosearch")
        self.resize(560, 460)
        intro = QLabel(INTRO, self, wordWrap=True)
        self.list = QListWidget(self)
        for path in suggested:
            self.list.addItem(str(path))
        add = QPushButton("Add folder…", self)
        add.clicked.connect(self._choose)
        remove = QPushButton("Remove", self)
        remove.clicked.connect(lambda: self.list.takeItem(self.list.currentRow()))
        row = QHBoxLayout()
        row.addWidget(add)
        row.addWidget(remove)
        row.addStretch(1)
        buttons = QDialogButtonBox(self)
        self.start_button = buttons.addButton("Start indexing",
                                              QDialogButtonBox.ButtonRole.AcceptRole)
        later = buttons.addButton("Later", QDialogButtonBox.ButtonRole.RejectRole)
        buttons.accepted.connect(self.accept)
        later.clicked.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(self.list, 1)
        layout.addLayout(row)
        layout.addWidget(buttons)

    def folders(self) -> list[Path]:
        return [Path(self.list.item(i).text()) for i in range(self.list.count())]

    def _choose(self) -> None:
        chosen = QFileDialog.getExistingDirectory(self, "Add a photo folder")
        if chosen and chosen not in {self.list.item(i).text() for i in range(self.list.count())}:
            self.list.addItem(chosen)
