"""The app gives back what it holds for speed alone once it is idle (issue 18 item 6): the
image session and the graph the matrix stands in for; the next search still answers. Real
library, real model, the idle delay shortened."""

from __future__ import annotations

from pathlib import Path

from photosearch.gui import controller as controller_module
from photosearch.gui.controller import LibraryController
from photosearch.gui.main_window import MainWindow
from tests.gui.conftest import start_and_index
from tests.gui.test_main_window import type_query, wait_results


def test_an_idle_app_closes_the_image_session_and_the_graph(
    app, qtbot, gui_library, settings, many_photos, monkeypatch
):
    monkeypatch.setattr(controller_module, "IDLE_RELEASE_MS", 300)
    controller = LibraryController(gui_library)
    window = MainWindow(controller, settings)
    controller.setParent(window)
    qtbot.addWidget(window)
    window.show()
    try:
        start_and_index(window, qtbot, many_photos)
        encoder = gui_library.encoder
        assert encoder._visual is not None  # it has just encoded the photos
        qtbot.waitUntil(
            lambda: encoder._visual is None and not gui_library.store.graph_loaded, timeout=10_000
        )
        type_query(window, qtbot, "red")
        assert Path(wait_results(window, qtbot)[0].path).name.startswith("red")
    finally:
        window.close()
        controller.shutdown()
