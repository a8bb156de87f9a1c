"""Application start: Qt setup (style, palette, icon), open the library, first-run, main window."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings, QTimer
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication, QMessageBox

from photosearch.errors import PhotosearchError
from photosearch.gui.controller import LibraryController
from photosearch.gui.first_run import (
    FirstRunDialog,
    download_offered_model,
    suggested_folders,
)
from photosearch.gui.main_window import MainWindow
from photosearch.library.facade import Library, default_library_dir

log = logging.getLogger(__name__)
ICON = Path(__file__).resolve().parents[2] / "resources" / "icons" / "photosearch.svg"
ORGANISATION = "photosearch"
APPLICATION = "photosearch"


def app_icon() -> QIcon:
    """The SVG icon from resources/ (a source checkout); Qt's generic icon otherwise."""
    bundled = Path(__file__).with_name("photosearch.svg")
    for candidate in (bundled, ICON):
        if candidate.is_file():
            return QIcon(str(candidate))
    return QIcon.fromTheme("image-x-generic")


def make_application(argv: list[str] | None = None) -> QApplication:
    """The QApplication with the Fusion style, which follows the system's light/dark scheme
    (QStyleHints.colorScheme) in Qt 6.5+, on every platform alike."""
    app = QApplication.instance()
    if app is None:
        app = QApplication(argv if argv is not None else sys.argv[:1])
    assert isinstance(app, QApplication)
    app.setOrganizationName(ORGANISATION)
    app.setApplicationName(APPLICATION)
    app.setApplicationDisplayName("photosearch")
    app.setDesktopFileName("photosearch")
    app.setStyle("Fusion")
    # Background threads (decode, encode, thumbnails) hold the GIL in short bursts; a shorter
    # switch interval than the default 5 ms hands it back to the event loop sooner.
    sys.setswitchinterval(0.001)
    app.setWindowIcon(app_icon())
    if not app.property("photosearch_quit_hooks"):
        from photosearch.gui.photo_actions import release_clipboard

        app.aboutToQuit.connect(release_clipboard)
        app.setProperty("photosearch_quit_hooks", True)
    return app


def open_window(
    library: Library, settings: QSettings, first_run: bool | None = None, watch: bool = True
) -> MainWindow:
    """Build the controller and main window for ``library``; offer the first-run screen when
    the library has no folders yet (or when ``first_run`` says so). With ``watch``, the
    folders are followed once the start-up index is done."""
    controller = LibraryController(library)
    window = MainWindow(controller, settings)
    controller.setParent(window)
    if first_run is None:
        first_run = not library.folders()
    controller.start(index=not first_run)
    if watch:
        controller.enable_watching()
    if first_run:

        def welcome() -> None:
            dialog = FirstRunDialog(suggested_folders(), window)
            if dialog.exec() and dialog.folders():
                controller.add_folders(dialog.folders())
            download_offered_model(dialog, window, controller)  # only if the user opted in

        QTimer.singleShot(0, welcome)
    return window


def run(
    library_dir: Path | None = None,
    models_dir: Path | None = None,
    serve: Callable[[Library], Any] | None = None,
) -> int:
    """Run the app on a library; ``serve`` (see ``run_gui``) lets `photosearch search` ask it."""
    app = make_application()
    try:
        library = Library(library_dir or default_library_dir(), models_dir=models_dir)
    except PhotosearchError as exc:
        QMessageBox.critical(None, "photosearch", f"Cannot open the library:\n\n{exc}")
        return 1
    settings = QSettings()
    window = open_window(library, settings)
    window.show()
    server = serve(library) if serve is not None else None
    code = app.exec()
    if server is not None:
        server.close()
    window.controller.shutdown()
    return int(code)
