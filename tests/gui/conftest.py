"""GUI fixtures: an offscreen Qt platform, a real tiny-model library, isolated QSettings."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # before any Qt import

from pathlib import Path

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from PySide6.QtCore import QSettings

from photosearch.gui.app import make_application
from photosearch.gui.controller import LibraryController
from photosearch.gui.main_window import MainWindow
from photosearch.library.facade import Library
from tests.conftest import make_photo

COLOURS = ("red", "green", "blue", "yellow", "white", "black")


@pytest.fixture(scope="session")
def qapp_cls():
    """pytest-qt's qapp, set up as the real app sets itself up (style, icon, names)."""
    from PySide6.QtWidgets import QApplication

    return QApplication


@pytest.fixture
def app(qapp):
    return make_application()


@pytest.fixture(scope="session", autouse=True)
def clipboard_released_at_the_end():
    """pytest-qt never quits the app, so do what aboutToQuit does in the real one (a copied
    file list left on the clipboard crashes the interpreter's exit)."""
    yield
    from photosearch.gui.photo_actions import release_clipboard

    release_clipboard()


@pytest.fixture
def settings(tmp_path: Path) -> QSettings:
    return QSettings(str(tmp_path / "gui.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def gui_library(tmp_path: Path, registry):
    """A library the GUI owns (it closes it on shutdown)."""
    return Library(tmp_path / "library", registry=registry, threads=1)


@pytest.fixture
def many_photos(tmp_path: Path) -> Path:
    """Several photos per colour, in two sub-folders."""
    folder = tmp_path / "many"
    for i in range(24):
        colour = COLOURS[i % len(COLOURS)]
        make_photo(folder / ("a" if i % 2 else "b") / f"{colour}{i}.jpg", colour)
    return folder


@pytest.fixture
def window(app, gui_library, settings, qtbot):
    """A shown main window over a real library; closed and shut down after the test."""
    controller = LibraryController(gui_library)
    win = MainWindow(controller, settings)
    controller.setParent(win)
    qtbot.addWidget(win)
    win.show()
    yield win
    win.close()
    controller.shutdown()


def start_and_index(win: MainWindow, qtbot, folder: Path, timeout: int = 20_000) -> None:
    """Add ``folder`` through the controller and wait until indexing has finished."""
    controller = win.controller
    with qtbot.waitSignal(controller.ready, timeout=timeout):
        controller.start(index=False)
    with qtbot.waitSignal(controller.indexFinished, timeout=timeout) as blocker:
        controller.add_folder(folder)
    report, error = blocker.args
    assert error == "" and report is not None, error
