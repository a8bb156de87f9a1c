"""Status-bar widgets: what the indexer is doing (progress, rate, ETA) and failed files."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from photosearch.gui.folders_panel import unreadable_text
from photosearch.indexing.encode import IndexProgress
from photosearch.indexing.progress import format_duration
from photosearch.library.facade import IndexReport


class IndexStatus(QWidget):
    stopRequested = Signal()
    failuresRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.message = QLabel("Ready", self)
        self.bar = QProgressBar(self, maximumWidth=220, textVisible=True)
        self.bar.hide()
        self.stop_button = QPushButton("Stop", self, flat=True)
        self.stop_button.clicked.connect(self.stopRequested)
        self.stop_button.hide()
        self.failures_button = QPushButton(
            self, flat=True, toolTip="Show files that could not be read, and retry them"
        )
        self.failures_button.clicked.connect(self.failuresRequested)
        self.failures_button.hide()
        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 0, 4, 0)
        layout.addWidget(self.message, 1)
        layout.addWidget(self.bar)
        layout.addWidget(self.stop_button)
        layout.addWidget(self.failures_button)

    def started(self) -> None:
        self.message.setText("Indexing: looking for new and changed photos…")
        self.bar.setRange(0, 0)  # busy until the first progress report gives a total
        self.bar.show()
        self.stop_button.show()

    def phase(self, text: str) -> None:
        self.message.setText(text)

    def progress(self, update: IndexProgress) -> None:
        self.bar.setRange(0, max(update.total, 1))
        self.bar.setValue(update.done)
        text = (
            f"{f'Encoding for {update.model}' if update.model else 'Indexing'} "
            f"{update.done:,} of {update.total:,} photos · "
            f"{update.rate:.1f}/s · {format_duration(update.eta_s)} left"
        )
        if update.failed:
            text += f" · {unreadable_text(update.failed)}"
        self.message.setText(text)

    def finished(self, report: IndexReport | None, error: str) -> None:
        self.bar.hide()
        self.stop_button.hide()
        if report is None:
            self.message.setText(f"Indexing failed: {error}")
            return
        done = report.encoding
        word = "Stopped" if done.stopped else "Up to date"
        noun = "photo" if done.encoded == 1 else "photos"
        text = (
            f"{word} · {done.encoded:,} {noun} indexed in {done.seconds:.1f} s"
            if done.encoded or done.stopped
            else word
        )
        if report.scan.offline_folders:
            offline = len(report.scan.offline_folders)
            text += f" · {offline} folder{'' if offline == 1 else 's'} offline"
        self.message.setText(text)

    def set_failures(self, count: int) -> None:
        self.failures_button.setText(unreadable_text(count))
        self.failures_button.setVisible(count > 0)


class FailuresDialog(QDialog):
    """Files the indexer could not read, each with its reason, and a Retry button."""

    retryRequested = Signal()

    def __init__(
        self, failures: list[tuple[str, str]], total: int, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent, windowTitle="Unreadable files")
        self.resize(760, 420)
        note = QLabel(
            f"{unreadable_text(total)}. A file is tried again when it "
            "changes; Retry reads them all again now.",
            self,
            wordWrap=True,
        )
        self.table = QTableWidget(len(failures), 2, self)
        self.table.setHorizontalHeaderLabels(["File", "Reason"])
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        for row, (path, reason) in enumerate(failures):
            self.table.setItem(row, 0, QTableWidgetItem(path))
            self.table.setItem(row, 1, QTableWidgetItem(reason))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        retry = buttons.addButton("Retry", QDialogButtonBox.ButtonRole.ActionRole)
        retry.clicked.connect(self.retryRequested)
        retry.clicked.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(note)
        layout.addWidget(self.table, 1)
        layout.addWidget(buttons)
