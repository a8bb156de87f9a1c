"""The main window: search bar and filters, the photo grid (timeline or results), the folders
panel, indexing status, and what can be done with the selected photos."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import QByteArray, QPoint, QSettings, QSize, Qt, QTimer
from PySide6.QtGui import QAction, QKeySequence, QPixmap, QShortcut
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMenu,
    QMessageBox,
    QSlider,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from photosearch.files.imaging import supported_extensions
from photosearch.gui import photo_actions
from photosearch.gui.controller import LibraryController
from photosearch.gui.date_scrubber import DateScrubber
from photosearch.gui.folders_panel import FoldersPanel, photos_text
from photosearch.gui.index_status import FailuresDialog, IndexStatus
from photosearch.gui.photo_grid import MAX_ROW_HEIGHT, MIN_ROW_HEIGHT, PhotoGrid
from photosearch.gui.presentation import Presentation, present_search, present_timeline
from photosearch.gui.search_bar import SORT_OLDEST, SORT_RELEVANCE, SearchBar
from photosearch.gui.settings_dialog import AppSettings, SettingsDialog
from photosearch.gui.thumbnails import DISK_SIZE, ThumbnailCache, ThumbnailLoader
from photosearch.gui.viewer import PhotoViewer
from photosearch.indexing.text_reading import reading_enabled, set_reading_enabled
from photosearch.library.facade import FolderInfo, IndexReport, LibraryStatus
from photosearch.search.places import catalog_places
from photosearch.search.query import SearchResult
from photosearch.search.rerank import reranker_setting
from photosearch.search.timeline import DatedPhotos

THUMBNAIL_SIZE = QSize(DISK_SIZE, DISK_SIZE)
DEFAULT_MAX_RESULTS = 1000
DEFAULT_CACHE_MB = 1000
LIVE_REFRESH_MS = 3000  # while indexing, an idle result list is refreshed this often


class MainWindow(QMainWindow):
    def __init__(
        self, controller: LibraryController, settings: QSettings, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.controller = controller
        self.settings = settings
        library = controller.library
        self.thumbnails = ThumbnailLoader(
            ThumbnailCache(library.directory / "thumbnails"), THUMBNAIL_SIZE, parent=self
        )
        self._raw: list[SearchResult] = []
        self._timeline: Sequence[SearchResult] = []
        self._shown_sequence = 0
        self._browse_sequence = 0
        self._search_seconds = 0.0
        self._status: LibraryStatus | None = None
        self._folders: list[FolderInfo] = []
        self._noise: float | None = None
        self._loaded = False  # the model is ready (searches answer)
        self.presentation = Presentation([])
        self.showing_search = False  # what the grid shows: search results, or the timeline
        self.viewer: PhotoViewer | None = None
        self.error_box: QMessageBox | None = None  # the last error shown (tests read it)
        self.confirm_box: QMessageBox | None = None  # the last confirmation asked
        self.duplicates_window: QWidget | None = None

        self.search_bar = SearchBar(self)
        self.search_bar.places.source = lambda: catalog_places(controller.library.catalog)
        self.grid = PhotoGrid(self.thumbnails, self)
        self.scrubber = DateScrubber(self.grid, self)
        self.summary = QLabel(self)
        self.size_slider = QSlider(
            Qt.Orientation.Horizontal,
            self,
            minimum=MIN_ROW_HEIGHT,
            maximum=MAX_ROW_HEIGHT,
            toolTip="Thumbnail size (Ctrl+mouse wheel over the photos)",
        )
        self.size_slider.setMaximumWidth(160)
        self.size_slider.setValue(self.grid.row_height)
        self.folders = FoldersPanel(self)
        self.index_status = IndexStatus(self)
        self.statusBar().addWidget(self.index_status, 1)
        self.watch_label = QLabel("Not watching folders", self)
        self.watch_label.setToolTip(
            "Photos saved into your folders are added automatically while the app runs"
        )
        self.statusBar().addPermanentWidget(self.watch_label)
        self.live_refresh = QTimer(self, interval=LIVE_REFRESH_MS)
        self.live_refresh.timeout.connect(self._live_refresh)

        centre = QWidget(self)
        layout = QVBoxLayout(centre)
        layout.addWidget(self.search_bar)
        info = QHBoxLayout()
        info.addWidget(self.summary, 1)
        info.addWidget(QLabel("Size", self))
        info.addWidget(self.size_slider)
        layout.addLayout(info)
        grid_row = QHBoxLayout()
        grid_row.setSpacing(0)
        grid_row.addWidget(self.grid, 1)
        grid_row.addWidget(self.scrubber)
        layout.addLayout(grid_row, 1)
        self.splitter = QSplitter(self)
        self.splitter.addWidget(self.folders)
        self.splitter.addWidget(centre)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setSizes([230, 1050])
        self.setCentralWidget(self.splitter)
        self.setAcceptDrops(True)
        self._build_menus()
        self._connect()
        self._restore()
        self.setWindowTitle("photosearch")
        self.refresh()

    # --- setup -----------------------------------------------------------------------------

    def open_duplicates(self) -> QWidget:
        """The Duplicates view (photosearch.gui.duplicates_view), one window reused."""
        from photosearch.gui.duplicates_view import DuplicatesWindow

        if self.duplicates_window is None:
            self.duplicates_window = DuplicatesWindow(self.controller, self)
        else:
            self.duplicates_window.refresh()
        self.duplicates_window.show()
        self.duplicates_window.raise_()
        return self.duplicates_window

    def _all_copies_toggled(self, checked: bool) -> None:
        self.settings.setValue("search/all_copies", checked)
        if not self.in_timeline:
            self.refresh()

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
        duplicates = QAction("Find &duplicates…", self)
        duplicates.triggered.connect(self.open_duplicates)
        self.all_copies_action = QAction(
            "Show every copy in results",
            self,
            checkable=True,
            checked=self.settings.value("search/all_copies", False, type=bool),
        )
        self.all_copies_action.toggled.connect(self._all_copies_toggled)
        for action in (add, index, failures, duplicates, self.all_copies_action, settings):
            menu.addAction(action)
        menu.addSeparator()
        menu.addAction(quit_action)
        photos = self.menuBar().addMenu("&Photos")
        self.photo_actions = self._selection_actions()
        for action in self.photo_actions:
            if action is None:
                photos.addSeparator()
            else:
                photos.addAction(action)
        photos.aboutToShow.connect(self._update_actions)
        self.grid.selectionChanged.connect(self._update_actions)
        self._update_actions()
        QShortcut(QKeySequence.StandardKey.Find, self, self.search_bar.focus_field)

    def _selection_actions(self) -> list[QAction | None]:
        """The actions on the selected photos (menu bar, right-click, keys)."""

        def action(
            text: str,
            slot: Callable[[], object],
            shortcut: str | QKeySequence.StandardKey | None = None,
            many: bool = True,
        ) -> QAction:
            made = QAction(text, self)
            if shortcut is not None:
                made.setShortcut(QKeySequence(shortcut))
                made.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
                self.grid.addAction(made)
            made.triggered.connect(slot)
            made.setData(many)
            return made

        self.open_action = action("Open", self._open_current, None, many=False)
        self.like_action = action("More like this", self._like_current, None, many=False)
        self.system_action = action(
            "Open with system viewer", self.open_externally, None, many=False
        )
        self.open_with_action = action("Open with…", self.open_with)
        self.folder_action = action("Show in folder", self.show_in_folder, None, many=False)
        self.copy_action = action("Copy", self.copy_files, QKeySequence.StandardKey.Copy)
        self.copy_paths_action = action("Copy paths", self.copy_paths, "Ctrl+Shift+C")
        self.export_action = action("Copy to folder…", self.export, "Ctrl+E")
        self.select_all_action = action(
            "Select all", self.grid.select_all, QKeySequence.StandardKey.SelectAll
        )
        self.trash_action = action(
            "Move to trash…", self.confirm_trash, QKeySequence.StandardKey.Delete
        )
        return [
            self.open_action,
            self.like_action,
            None,
            self.system_action,
            self.open_with_action,
            self.folder_action,
            None,
            self.copy_action,
            self.copy_paths_action,
            self.export_action,
            self.select_all_action,
            None,
            self.trash_action,
        ]

    def _connect(self) -> None:
        c = self.controller
        c.searchFinished.connect(self._search_finished)
        c.searchFailed.connect(self._search_failed)
        c.browseFinished.connect(self._browse_finished)
        c.noiseMeasured.connect(self._noise_measured)
        c.trashFinished.connect(self._trash_finished)
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
        self.search_bar.searchRequested.connect(self.refresh)
        self.search_bar.sortChanged.connect(self._sort_changed)
        self.search_bar.escapePressed.connect(self.search_bar.clear)
        self.search_bar.downPressed.connect(self._focus_grid)
        self.grid.openRequested.connect(self.open_viewer)
        self.grid.searchFocusRequested.connect(self.search_bar.focus_field)
        self.grid.escapePressed.connect(self._grid_escape)
        self.grid.contextMenuWanted.connect(self._context_menu)
        self.grid.rowHeightChanged.connect(self.size_slider.setValue)
        self.size_slider.valueChanged.connect(self.grid.set_row_height)
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
            self.search_bar.set_sort(str(sort))
        size = self.settings.value("grid/row_height")
        if size:
            self.grid.set_row_height(int(size))
        last = str(self.settings.value("search/last_query", "") or "")
        if last:
            self.search_bar.field.setText(last)
            self.search_bar.field.selectAll()  # typing a new query replaces it, not extends it

    def closeEvent(self, event) -> None:  # noqa: ANN001
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/splitter", self.splitter.saveState())
        self.settings.setValue("search/last_query", self.search_bar.field.text())
        self.settings.setValue("search/sort", self.search_bar.sort_key)
        self.settings.setValue("grid/row_height", self.grid.row_height)
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

    # --- what is shown -------------------------------------------------------------------------

    @property
    def in_timeline(self) -> bool:
        return not self.search_bar.has_text()

    def refresh(self) -> None:
        """Search for what the bar describes, or show the timeline when it describes nothing."""
        query = self.search_bar.query(self.max_results)
        if query is None:
            self._shown_sequence = self.controller.latest_search + 1  # drop results in flight
            self._raw = []
            self.showing_search = False
            self.browse()
            return
        if not self._loaded:  # typed while the library opens: searched when it is ready
            self._shown_sequence = self.controller.latest_search + 1
            self._show(Presentation([], [], "Opening the library…"), search=True)
            return
        if not self._folders:
            self._show(
                Presentation(
                    [], [], "Add a folder of photos first (Library ▸ Add folder), then search it"
                ),
                search=True,
            )
            return
        query = replace(query, all_copies=self.all_copies_action.isChecked())
        self._shown_sequence = self.controller.search(query)
        self.showing_search = False  # until this search answers
        self.summary.setText("Searching…")

    run_search = refresh  # the name the watcher window tests and older code use

    def browse(self) -> None:
        after, before = self.search_bar.date_bounds()
        folder = self.search_bar.folder
        self._browse_sequence = self.controller.browse(
            newest_first=self.search_bar.sort_key != SORT_OLDEST,
            folder=Path(folder) if folder else None,
            after=after,
            before=before,
            camera=self.search_bar.camera.text().strip() or None,
            place=self.search_bar.places.place,
        )

    def _browse_finished(self, sequence: int, photos: list[SearchResult]) -> None:
        if sequence != self._browse_sequence or not self.in_timeline:
            return
        self._timeline = photos
        self._show_timeline()

    def _show_timeline(self, keep_position: bool = False) -> None:
        filtered = (
            self.search_bar.folder is not None
            or self.search_bar.date_preset != "any"
            or bool(self.search_bar.camera.text().strip())
            or self.search_bar.places.place is not None
        )
        shown = present_timeline(self._timeline, self.search_bar.sort_key != SORT_OLDEST, filtered)
        if not self._folders:
            shown = Presentation(
                [],
                [],
                "No folders yet. Add the folder where your photos "
                "are: Library ▸ Add folder… (Ctrl+O)",
            )
        elif not shown.results and self.controller.indexing and not filtered:
            shown = Presentation(
                [], [], "Looking at your photos… they appear here as they are indexed"
            )
        self._show(shown, keep_position, search=False)

    def _search_finished(self, sequence: int, results: list[SearchResult], seconds: float) -> None:
        if sequence != self._shown_sequence:
            return  # an older query answered after a newer one was asked
        self._raw = results
        self._search_seconds = seconds
        self._show_search()

    def _show_search(self) -> None:
        by_text = bool(self.search_bar.field.text().strip()) and self.search_bar.like is None
        shown = present_search(self._raw, self.search_bar.sort_key, self._noise, by_text)
        self._show(shown, search=True)

    def _search_failed(self, sequence: int, message: str) -> None:
        if sequence == self._shown_sequence:
            self._raw = []
            self._show(Presentation([], [], message), search=True)

    def _show(self, shown: Presentation, keep_position: bool = False, search: bool = False) -> None:
        self.presentation = shown
        self.showing_search = search
        self.grid.set_content(shown.results, shown.headers, keep_position)
        self.scrubber.setVisible(self.in_timeline or self.search_bar.sort_key != SORT_RELEVANCE)
        folder = self.search_bar.folder
        text = shown.summary
        if folder and self._folders:
            text += f" · in {Path(folder).name}"
        bar = self.search_bar
        if bar.date_preset == "range":
            text += f" · {bar.after.text()} – {bar.before.text()}"
        elif bar.date_preset != "any":
            text += f" · {bar.dates.currentText().lower()}"
        self.summary.setText(text)

    def _sort_changed(self, _key: str) -> None:
        if self.in_timeline:
            self.browse()
        else:
            self._show_search()

    def _noise_measured(self, noise: float | None) -> None:
        self._noise = noise
        if not self.in_timeline and self._raw:
            self._show_search()

    def _live_refresh(self) -> None:
        """While indexing: per-folder counts and the results catch up every few seconds."""
        self.controller.refresh_folders()
        self._refresh_if_idle()

    def _refresh_if_idle(self) -> None:
        """New photos appear while indexing, unless the user is browsing or has chosen some."""
        if (
            self.grid.verticalScrollBar().value() == 0
            and len(self.grid.selected) <= 1
            and self.viewer is None
        ):
            self.refresh()

    def _photos_changed(self) -> None:
        """The watcher changed the library: refresh counts, and the results unless the user
        is browsing them."""
        self.controller.refresh_folders()
        self.controller.request_status()
        if not self.controller.indexing:
            self._refresh_if_idle()

    def _watch_status(self, status: object) -> None:
        self.watch_label.setText(watch_text(status))

    def _focus_grid(self) -> None:
        self.grid.setFocus()
        if self.grid.current < 0 and self.grid.count():
            self.grid.set_current(0)

    def _grid_escape(self) -> None:
        self.search_bar.clear()
        self.search_bar.focus_field()

    # --- the viewer ----------------------------------------------------------------------------

    def open_viewer(self, row: int) -> PhotoViewer | None:
        if not 0 <= row < self.grid.count():
            return None
        if self.viewer is not None:
            self.viewer.close()
        self.viewer = PhotoViewer(self.grid.results, row, self)
        self.viewer.moreLikeRequested.connect(self._like_from_viewer)
        self.viewer.currentChanged.connect(lambda r: self.grid.set_current(r, "only"))
        key = id(self.viewer)
        self.viewer.destroyed.connect(lambda _obj=None: self._viewer_gone(key))
        self.viewer.show()
        return self.viewer

    def _viewer_gone(self, key: int) -> None:
        """A closed viewer is deleted later; only forget it if no newer one replaced it."""
        if self.viewer is not None and id(self.viewer) == key:
            self.viewer = None

    def _like_from_viewer(self, path: Path) -> None:
        if self.viewer is not None:
            self.viewer.close()  # deleted on close
            self.viewer = None
        self.search_like(path)
        self.activateWindow()

    def search_like(self, path: Path) -> None:
        self.search_bar.set_like(path, self._chip_thumbnail(str(path)))

    def _chip_thumbnail(self, path: str) -> QPixmap | None:
        found = self.thumbnails.cached(path)
        if found is None:
            try:
                found = QPixmap.fromImage(self.thumbnails.cache.load_or_make(path))
            except Exception:
                return None
        return found.scaled(
            80, 60, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation
        )

    # --- actions on the selection ------------------------------------------------------------

    def selected_paths(self) -> list[str]:
        return [r.path for r in self.grid.selected_results()]

    def _update_actions(self) -> None:
        count = len(self.grid.selected)
        for item in self.photo_actions:
            if item is None or item is self.select_all_action:
                continue
            item.setEnabled(count >= 1 if item.data() else count == 1)
        self.trash_action.setText(
            f"Move {photos_text(count)} to trash…" if count > 1 else "Move to trash…"
        )

    def _context_menu(self, point: QPoint) -> None:
        if not self.grid.selected:
            return
        self._update_actions()
        menu = QMenu(self)
        for action in self.photo_actions:
            if action is None:
                menu.addSeparator()
            elif action is not self.select_all_action:
                menu.addAction(action)
        menu.popup(point)
        self.context_menu = menu

    def _open_current(self) -> None:
        if self.grid.current >= 0:
            self.open_viewer(self.grid.current)

    def _like_current(self) -> None:
        paths = self.selected_paths()
        if len(paths) == 1:
            self.search_like(Path(paths[0]))

    def open_externally(self) -> bool:
        paths = self.selected_paths()
        if paths and not photo_actions.open_externally(paths[0]):
            self._tell("No application is set up to open photos on this computer.")
            return False
        return bool(paths)

    def show_in_folder(self) -> str | None:
        paths = self.selected_paths()
        if not paths:
            return None
        shown = photo_actions.show_in_folder(paths[0])
        if shown is None:
            self._tell(
                "No file manager is set up to show folders on this computer.\n\n"
                f"The photo is at:\n{paths[0]}"
            )
        return shown

    def open_with(self) -> None:
        paths = self.selected_paths()
        if not paths:
            return
        program, _ = QFileDialog.getOpenFileName(
            self,
            "Open the photos with which program?",
            "/usr/bin" if Path("/usr/bin").is_dir() else str(Path.home()),
        )
        if program and not photo_actions.open_with(program, paths):
            self._tell(f"Could not start {program}.")

    def copy_files(self) -> None:
        paths = self.selected_paths()
        if paths:
            photo_actions.copy_files(paths)
            self.index_status.phase(f"Copied {photos_text(len(paths))}")

    def copy_paths(self) -> None:
        paths = self.selected_paths()
        if paths:
            photo_actions.copy_paths(paths)

    def export(self) -> None:
        paths = self.selected_paths()
        if not paths:
            return
        folder = QFileDialog.getExistingDirectory(self, f"Copy {photos_text(len(paths))} to")
        if not folder:
            return
        report = photo_actions.export_to(paths, Path(folder))
        text = f"Copied {photos_text(len(report.copied))} to {folder}"
        if report.failed:
            text += f"; {len(report.failed)} could not be copied ({report.failed[0][1]})"
            self._tell(text)
        self.index_status.phase(text)

    def confirm_trash(self) -> QMessageBox | None:
        """Ask before moving the selected photos to the trash (window-modal, not blocking)."""
        paths = self.selected_paths()
        if not paths:
            return None
        what = photos_text(len(paths))

        def answered(confirmed: bool) -> None:
            self.activateWindow()  # back to the photos, whatever the window manager does
            self.grid.setFocus(Qt.FocusReason.ActiveWindowFocusReason)
            if confirmed:
                self.index_status.phase(f"Moving {what} to the trash…")
                self.controller.move_to_trash(paths)

        self.confirm_box = photo_actions.ask_to_trash(self, what, answered)
        return self.confirm_box

    def _trash_finished(self, report: object) -> None:
        trashed = getattr(report, "trashed", [])
        failed = getattr(report, "failed", [])
        text = f"Moved {photos_text(len(trashed))} to the trash"
        if failed:
            path, reason = failed[0]
            text += f"; {len(failed)} could not be moved ({Path(path).name}: {reason})"
            self._tell(text)
        self.index_status.phase(text)
        gone = set(trashed)
        if self.in_timeline:
            if isinstance(self._timeline, DatedPhotos):
                self._timeline = self._timeline.without(gone)
            else:
                self._timeline = [r for r in self._timeline if r.path not in gone]
            self._show_timeline(keep_position=True)
        else:
            self._raw = [r for r in self._raw if r.path not in gone]
            self._show_search()
        self.controller.refresh_folders()
        self.controller.request_status()

    def _tell(self, message: str) -> None:
        box = QMessageBox(
            QMessageBox.Icon.Information,
            "photosearch",
            message,
            QMessageBox.StandardButton.Ok,
            self,
        )
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()
        self.error_box = box

    def dragEnterEvent(self, event) -> None:  # noqa: ANN001
        if event.source() is None and _dropped_image(event.mimeData()) is not None:
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: ANN001
        path = _dropped_image(event.mimeData())
        if path is not None:
            event.acceptProposedAction()
            self.search_like(path)

    # --- library events ----------------------------------------------------------------------

    def _ready(self, _model: str) -> None:
        self._loaded = True
        self.controller.request_status()
        self.controller.measure_noise()
        self.refresh()

    def _index_started(self) -> None:
        self.index_status.started()
        self.folders.set_indexing(True)
        self.live_refresh.start()

    def _index_finished(self, report: IndexReport | None, error: str) -> None:
        self.live_refresh.stop()
        self.folders.set_indexing(False)
        self.index_status.finished(report, error)
        if report is not None and not self._folders:
            self.index_status.phase("No folders yet: add one with Library ▸ Add folder…")
        self.controller.request_status()
        self.controller.measure_noise()
        if report is not None:
            self.refresh()

    def _folders_changed(self, folders: list[FolderInfo]) -> None:
        had = bool(self._folders)
        self._folders = folders
        self.folders.set_folders(folders)
        if not folders or not had:
            self.refresh()

    def _status_ready(self, status: LibraryStatus) -> None:
        self._status = status
        self.index_status.set_failures(status.failed)
        self.search_bar.set_photo_count(status.indexed)

    def _model_changed(self, _name: str) -> None:
        self._noise = None
        self.controller.measure_noise()
        self.refresh()

    def _failed(self, message: str) -> None:
        """Shown without a nested event loop: indexing, watching and searching go on."""
        self.index_status.phase(message)
        box = QMessageBox(
            QMessageBox.Icon.Warning, "photosearch", message, QMessageBox.StandardButton.Ok, self
        )
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.open()
        self.error_box = box

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
        rerank_model, rerank_depth = reranker_setting(library)
        return AppSettings(
            model=library.target_model or library.model_name,
            ignore_patterns=library.settings.ignore_patterns(),
            thumbnail_cache_mb=self.cache_mb,
            max_results=self.max_results,
            provider=library.provider,
            read_text=reading_enabled(library.catalog),
            rerank_model=rerank_model,
            rerank_depth=rerank_depth,
        )

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
            self.controller.set_ignore_patterns(
                list(chosen.ignore_patterns), index=chosen.model == before.model
            )
        if chosen.provider != before.provider:
            self.controller.use_provider(chosen.provider)
        if chosen.read_text != before.read_text:  # the next index or change picks it up
            set_reading_enabled(self.controller.library.catalog, chosen.read_text)
        if (chosen.rerank_model, chosen.rerank_depth) != (before.rerank_model, before.rerank_depth):
            self.controller.use_reranker(chosen.rerank_model, chosen.rerank_depth)
        if chosen.model != before.model:
            self.index_status.phase("Switching the search model…")
            self.controller.use_model(chosen.model)
        elif chosen.max_results != before.max_results:
            self.refresh()

    def prune_thumbnails(self) -> None:
        limit = self.cache_mb * 1_000_000
        cache = self.thumbnails.cache
        self.thumbnails.pool.start(lambda: cache.prune(limit))


def watch_text(status: object) -> str:
    """The status bar's words for a WatchStatus (None: the watcher is not running)."""
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
        "reading-text": _first_upper(getattr(status, "message", "")) or "Reading text in photos…",
        "failed": f"Not watching: {getattr(status, 'error', '') or 'failed'}",
    }
    return texts.get(state, state)


def _first_upper(text: str) -> str:
    return text[:1].upper() + text[1:]


def _dropped_image(mime) -> Path | None:  # noqa: ANN001
    if not mime.hasUrls():
        return None
    for url in mime.urls():
        if url.isLocalFile():
            path = Path(url.toLocalFile())
            if path.suffix.lower() in supported_extensions() and path.is_file():
                return path
    return None
