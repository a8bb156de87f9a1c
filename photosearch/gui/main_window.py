"""The main window: search bar and filters, results grid, folders panel, indexing status."""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QByteArray, QPoint, QSettings, QSize, Qt, QTimer
from PySide6.QtGui import QAction, QDesktopServices, QGuiApplication, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QLabel,
    QMainWindow,
    QMenu,
    QMessageBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from photosearch.gui.controller import LibraryController
from photosearch.gui.folders_panel import FoldersPanel
from photosearch.gui.index_status import FailuresDialog, IndexStatus
from photosearch.gui.ordering import by_date
from photosearch.gui.results_model import ResultsModel
from photosearch.gui.results_view import ResultsView
from photosearch.gui.search_bar import SORT_DATE, SearchBar
from photosearch.gui.settings_dialog import AppSettings, SettingsDialog
from photosearch.gui.thumbnails import ThumbnailCache, ThumbnailLoader
from photosearch.gui.viewer import PhotoViewer
from photosearch.imaging import supported_extensions
from photosearch.library import FolderInfo, IndexReport, LibraryStatus
from photosearch.photo_files import display_path, file_url
from photosearch.search import SearchResult

THUMBNAIL_SIZE = QSize(168, 168)
DEFAULT_MAX_RESULTS = 1000
DEFAULT_CACHE_MB = 1000
LIVE_REFRESH_MS = 3000  # while indexing, an idle result list is refreshed this often


class MainWindow(QMainWindow):
    def __init__(self, controller: LibraryController, settings: QSettings,
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.controller = controller
        self.settings = settings
        library = controller.library
        self.thumbnails = ThumbnailLoader(ThumbnailCache(library.directory / "thumbnails"),
                                          THUMBNAIL_SIZE, parent=self)
        self.model = ResultsModel(self.thumbnails, self)
        self._raw: list[SearchResult] = []
        self._shown_sequence = 0
        self._search_seconds = 0.0
        self._status: LibraryStatus | None = None
        self._folders: list[FolderInfo] = []
        self.viewer: PhotoViewer | None = None
        self.error_box: QMessageBox | None = None  # the last error shown (tests read it)

        self.search_bar = SearchBar(self)
        self.grid = ResultsView(THUMBNAIL_SIZE, self)
        self.grid.setModel(self.model)
        self.summary = QLabel(self)
        self.folders = FoldersPanel(self)
        self.index_status = IndexStatus(self)
        self.statusBar().addWidget(self.index_status, 1)
        self.watch_label = QLabel("Not watching folders", self)
        self.watch_label.setToolTip("Photos saved into your folders are added automatically "
                                    "while the app runs")
        self.statusBar().addPermanentWidget(self.watch_label)
        self.live_refresh = QTimer(self, interval=LIVE_REFRESH_MS)
        self.live_refresh.timeout.connect(self._live_refresh)

        centre = QWidget(self)
        layout = QVBoxLayout(centre)
        layout.addWidget(self.search_bar)
        layout.addWidget(self.summary)
        layout.addWidget(self.grid, 1)
        self.splitter = QSplitter(self)
        side = QWidget(self)
        side_layout = QVBoxLayout(side)
        side_layout.addWidget(self.folders)
        self.splitter.addWidget(side)
        self.splitter.addWidget(centre)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([240, 960])
        self.setCentralWidget(self.splitter)
        self.setAcceptDrops(True)
        self._build_menus()
        self._connect()
        self._restore()
        self._update_title("")
        self._show_summary()

    # --- setup -----------------------------------------------------------------------------

    def _build_menus(self) -> None:
        menu = self.menuBar().addMenu("&Library")
        add = QAction("&Add folder…", self, shortcut=QKeySequence("Ctrl+O"))
        add.triggered.connect(self.folders.choose_folder)
        index = QAction("&Index now", self, shortcut=QKeySequence("Ctrl+R"))
        index.triggered.connect(self.controller.index)
        failures = QAction("Show &unreadable files…", self)
        failures.triggered.connect(self.show_failures)
        settings = QAction("&Settings…", self, shortcut=QKeySequence.StandardKey.Preferences)
        settings.triggered.connect(self.open_settings)
        quit_action = QAction("&Quit", self, shortcut=QKeySequence.StandardKey.Quit)
        quit_action.triggered.connect(self.close)
        for action in (add, index, failures, settings):
            menu.addAction(action)
        menu.addSeparator()
        menu.addAction(quit_action)
        QShortcut(QKeySequence.StandardKey.Find, self, self.search_bar.focus_field)

    def _connect(self) -> None:
        c = self.controller
        c.searchFinished.connect(self._search_finished)
        c.searchFailed.connect(self._search_failed)
        c.indexStarted.connect(self._index_started)
        c.indexPhase.connect(self.index_status.phase)
        c.indexProgress.connect(self.index_status.progress)
        c.indexFinished.connect(self._index_finished)
        c.foldersChanged.connect(self._folders_changed)
        c.statusReady.connect(self._status_ready)
        c.modelChanged.connect(self._model_changed)
        c.ready.connect(self._ready)
        c.failed.connect(self._failed)
        c.watchStatus.connect(self._watch_status)
        c.photosChanged.connect(self._photos_changed)
        self.search_bar.searchRequested.connect(self.run_search)
        self.search_bar.sortChanged.connect(lambda _key: self._show_results())
        self.search_bar.escapePressed.connect(self.search_bar.clear)
        self.search_bar.downPressed.connect(self._focus_grid)
        self.grid.openRequested.connect(self.open_viewer)
        self.grid.searchFocusRequested.connect(self.search_bar.focus_field)
        self.grid.escapePressed.connect(self._grid_escape)
        self.grid.customContextMenuRequested.connect(self._context_menu)
        self.folders.addRequested.connect(c.add_folder)
        self.folders.removeRequested.connect(c.remove_folder)
        self.folders.filterRequested.connect(self.search_bar.set_folder_filter)
        self.index_status.stopRequested.connect(c.stop_indexing)
        self.index_status.failuresRequested.connect(self.show_failures)

    def _restore(self) -> None:
        geometry = self.settings.value("window/geometry")
        if isinstance(geometry, QByteArray) and not geometry.isEmpty():
            self.restoreGeometry(geometry)
        else:
            self.resize(1280, 820)
        splitter = self.settings.value("window/splitter")
        if isinstance(splitter, QByteArray) and not splitter.isEmpty():
            self.splitter.restoreState(splitter)
        sort = self.settings.value("search/sort")
        if sort:
            self.search_bar.sort.setCurrentIndex(max(self.search_bar.sort.findData(sort), 0))
        last = str(self.settings.value("search/last_query", "") or "")
        if last:
            self.search_bar.field.setText(last)
            self.run_search()

    def closeEvent(self, event) -> None:  # noqa: ANN001, N802
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/splitter", self.splitter.saveState())
        self.settings.setValue("search/last_query", self.search_bar.field.text())
        self.settings.setValue("search/sort", self.search_bar.sort_key)
        self.settings.sync()
        if self.viewer is not None:
            self.viewer.close()
        self.live_refresh.stop()
        self.thumbnails.forget_pending()
        self.thumbnails.wait(5000)
        super().closeEvent(event)

    # --- settings values ---------------------------------------------------------------------

    @property
    def max_results(self) -> int:
        return int(self.settings.value("search/max_results", DEFAULT_MAX_RESULTS))

    @property
    def cache_mb(self) -> int:
        return int(self.settings.value("thumbnails/cache_mb", DEFAULT_CACHE_MB))

    # --- searching ---------------------------------------------------------------------------

    def run_search(self) -> None:
        query = self.search_bar.query(self.max_results)
        if query is None:
            self._shown_sequence = self.controller.latest_search + 1  # drop results in flight
            self._raw = []
            self._show_results()
            return
        self._shown_sequence = self.controller.search(query)
        self.summary.setText("Searching…")

    def _search_finished(self, sequence: int, results: list[SearchResult],
                         seconds: float) -> None:
        if sequence != self._shown_sequence:
            return  # an older query answered after a newer one was asked
        self._raw = results
        self._search_seconds = seconds
        self._show_results()

    def _search_failed(self, sequence: int, message: str) -> None:
        if sequence == self._shown_sequence:
            self._raw = []
            self.model.set_results([])
            self.summary.setText(message)

    def _show_results(self) -> None:
        shown = by_date(self._raw) if self.search_bar.sort_key == SORT_DATE else self._raw
        self.model.set_results(shown)
        if shown:
            self.grid.scrollToTop()
        self._show_summary()

    def _show_summary(self) -> None:
        total = sum(f.photos for f in self._folders)
        if self.search_bar.query(1) is None:
            if total:
                self.summary.setText(f"Type to search {total:,} photos")
            elif self._folders:
                self.summary.setText("Looking at your photos… you can search as soon as the "
                                     "first ones are indexed")
            else:
                self.summary.setText("Add a folder of photos to start (Library ▸ Add folder)")
            return
        count = self.model.rowCount()
        text = f"{count:,} results · {self._search_seconds * 1000:.0f} ms"
        if self.search_bar.sort_key == SORT_DATE and count < len(self._raw):
            text += f" · newest first among the {count:,} most relevant of {len(self._raw):,}"
        self.summary.setText(text)

    def _live_refresh(self) -> None:
        """While indexing: per-folder counts and the results catch up every few seconds."""
        self.controller.refresh_folders()
        self._refresh_while_indexing()

    def _refresh_while_indexing(self) -> None:
        """New photos appear in results while indexing, unless the user is browsing them."""
        if self.grid.verticalScrollBar().value() == 0 and not self.grid.currentIndex().isValid():
            self.run_search()

    def _photos_changed(self) -> None:
        """The watcher changed the library: refresh counts, and the results unless the user
        is browsing them."""
        self.controller.refresh_folders()
        self.controller.request_status()
        if not self.controller.indexing:
            self._refresh_while_indexing()

    def _watch_status(self, status: object) -> None:
        self.watch_label.setText(watch_text(status))

    def _focus_grid(self) -> None:
        self.grid.setFocus()
        if not self.grid.currentIndex().isValid() and self.model.rowCount():
            self.grid.setCurrentIndex(self.model.index(0))

    def _grid_escape(self) -> None:
        self.search_bar.clear()
        self.search_bar.focus_field()

    # --- results actions ---------------------------------------------------------------------

    def open_viewer(self, row: int) -> PhotoViewer | None:
        if not 0 <= row < self.model.rowCount():
            return None
        if self.viewer is not None:
            self.viewer.close()
        self.viewer = PhotoViewer(self.model.results(), row, self)
        self.viewer.moreLikeRequested.connect(self.search_like)
        self.viewer.show()
        return self.viewer

    def search_like(self, path: Path) -> None:
        self.search_bar.set_like(path)

    def _context_menu(self, point: QPoint) -> None:
        index = self.grid.indexAt(point)
        if not index.isValid():
            return
        result = self.model.result(index.row())
        menu = QMenu(self)
        menu.addAction("Open", lambda: self.open_viewer(index.row()))
        menu.addAction("More like this", lambda: self.search_like(Path(result.path)))
        menu.addSeparator()
        menu.addAction("Open with system viewer", lambda: _open_path(result.path))
        menu.addAction("Show in folder", lambda: _open_path(os.path.dirname(result.path)))
        menu.addAction("Copy path",
                       lambda: QGuiApplication.clipboard().setText(display_path(result.path)))
        menu.popup(self.grid.viewport().mapToGlobal(point))

    def dragEnterEvent(self, event) -> None:  # noqa: ANN001, N802
        if _dropped_image(event.mimeData()) is not None:
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: ANN001, N802
        path = _dropped_image(event.mimeData())
        if path is not None:
            event.acceptProposedAction()
            self.search_like(path)

    # --- library events ----------------------------------------------------------------------

    def _ready(self, model: str) -> None:
        self._update_title(model)
        if self.search_bar.query(1) is not None:
            self.run_search()

    def _index_started(self) -> None:
        self.index_status.started()
        self.live_refresh.start()

    def _index_finished(self, report: IndexReport | None, error: str) -> None:
        self.live_refresh.stop()
        self.index_status.finished(report, error)
        self.controller.request_status()
        if report is not None and self.search_bar.query(1) is not None:
            self.run_search()

    def _folders_changed(self, folders: list[FolderInfo]) -> None:
        self._folders = folders
        self.folders.set_folders(folders)
        self.search_bar.set_folders(folders)
        if not self.model.rowCount():
            self._show_summary()

    def _status_ready(self, status: LibraryStatus) -> None:
        self._status = status
        self.index_status.set_failures(status.failed)

    def _model_changed(self, name: str) -> None:
        self._update_title(name)
        self.run_search()

    def _failed(self, message: str) -> None:
        """Shown without a nested event loop: indexing, watching and searching go on."""
        self.index_status.phase(message)
        box = QMessageBox(QMessageBox.Icon.Warning, "photosearch", message,
                          QMessageBox.StandardButton.Ok, self)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()
        self.error_box = box

    def _update_title(self, name: str) -> None:
        self.setWindowTitle(f"photosearch — {name}" if name else "photosearch")

    # --- dialogs -----------------------------------------------------------------------------

    def show_failures(self) -> FailuresDialog | None:
        status = self._status
        if status is None:
            self.controller.request_status()
            return None
        dialog = FailuresDialog(status.failures, status.failed, self)
        dialog.retryRequested.connect(self.controller.retry_failed)
        dialog.show()
        return dialog

    def current_settings(self) -> AppSettings:
        library = self.controller.library
        return AppSettings(model=library.target_model or library.model_name,
                           ignore_patterns=library.ignore_patterns(),
                           thumbnail_cache_mb=self.cache_mb, max_results=self.max_results,
                           provider=library.provider)

    def open_settings(self) -> SettingsDialog:
        dialog = SettingsDialog(self.current_settings(), self.controller.library.registry, self)
        dialog.accepted.connect(lambda: self.apply_settings(dialog.chosen()))
        dialog.open()
        return dialog

    def apply_settings(self, chosen: AppSettings) -> None:
        before = self.current_settings()
        self.settings.setValue("thumbnails/cache_mb", chosen.thumbnail_cache_mb)
        self.settings.setValue("search/max_results", chosen.max_results)
        if chosen.thumbnail_cache_mb != before.thumbnail_cache_mb:
            self.prune_thumbnails()
        if chosen.ignore_patterns != before.ignore_patterns:
            self.controller.set_ignore_patterns(list(chosen.ignore_patterns),
                                                index=chosen.model == before.model)
        if chosen.provider != before.provider:
            self.controller.use_provider(chosen.provider)
        if chosen.model != before.model:
            self.index_status.phase(f"Switching to {chosen.model}…")
            self.controller.use_model(chosen.model)
        elif chosen.max_results != before.max_results:
            self.run_search()

    def prune_thumbnails(self) -> None:
        limit = self.cache_mb * 1_000_000
        cache = self.thumbnails.cache
        self.thumbnails.pool.start(lambda: cache.prune(limit))


def watch_text(status: object) -> str:
    """The status bar's words for a WatchStatus (None: paused while the app indexes)."""
    state = getattr(status, "state", None)
    if state is None or state == "stopped":
        return "Watching paused"
    folders = getattr(status, "folders", 0)
    texts = {
        "starting": "Starting to watch folders…",
        "catching-up": "Checking folders for changes…",
        "watching": f"Watching {folders} folder{'s' if folders != 1 else ''}",
        "indexing": "Adding new photos…",
        "waiting": "Waiting for another photosearch process",
        "re-encoding": _first_upper(getattr(status, "message", "")) or "Re-encoding photos…",
        "failed": f"Not watching: {getattr(status, 'error', '') or 'failed'}",
    }
    return texts.get(state, state)


def _first_upper(text: str) -> str:
    return text[:1].upper() + text[1:]


def _open_path(path: str) -> bool:
    from PySide6.QtCore import QUrl

    return QDesktopServices.openUrl(QUrl.fromEncoded(file_url(path)))


def _dropped_image(mime) -> Path | None:  # noqa: ANN001
    if not mime.hasUrls():
        return None
    for url in mime.urls():
        if url.isLocalFile():
            path = Path(url.toLocalFile())
            if path.suffix.lower() in supported_extensions() and path.is_file():
                return path
    return None
