"""The window accepts typing before the library's vectors are open (issue 18 item 1): a query
typed while the store opens is answered once it is. The open is held by an event the test
controls (the real store opens when it is set); the library and model are real."""

from __future__ import annotations

import threading
from pathlib import Path

from photosearch.gui.controller import LibraryController
from photosearch.gui.main_window import MainWindow
from photosearch.library import model_sets
from photosearch.library.facade import Library
from tests.gui.conftest import start_and_index
from tests.gui.test_main_window import type_query, wait_results


def test_a_query_typed_while_the_library_opens_is_answered_once_it_is(
    app, qtbot, registry, settings, many_photos, tmp_path, monkeypatch
):
    directory = tmp_path / "library"
    first = MainWindow(
        LibraryController(Library(directory, registry=registry, threads=1)), settings
    )
    start_and_index(first, qtbot, many_photos)
    first.close()
    first.controller.shutdown()

    opened = threading.Event()
    release = threading.Event()
    real_open = model_sets.ModelSets._open_store

    def held_open(self, encoder, model_id):
        opened.set()
        assert release.wait(30), "the test never let the store open"
        return real_open(self, encoder, model_id)

    monkeypatch.setattr(model_sets.ModelSets, "_open_store", held_open)
    controller = LibraryController(Library(directory, registry=registry, threads=1))
    window = MainWindow(controller, settings)
    controller.setParent(window)
    qtbot.addWidget(window)
    window.show()
    try:
        controller.start(index=False)
        qtbot.waitUntil(opened.is_set, timeout=10_000)
        type_query(window, qtbot, "red")  # the event loop is free: the keys land
        assert window.search_bar.field.text() == "red"
        qtbot.waitUntil(lambda: window.summary.text() == "Opening the library…", timeout=5000)
        qtbot.wait(300)  # past the typing debounce: still nothing searched, nothing lost
        assert window.grid.count() == 0 and window.summary.text() == "Opening the library…"
        release.set()
        results = wait_results(window, qtbot)
        assert Path(results[0].path).name.startswith("red")
        assert window.summary.text() == "4 good matches"
    finally:
        release.set()
        window.close()
        controller.shutdown()
