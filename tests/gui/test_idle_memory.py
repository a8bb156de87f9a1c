"""The app gives back what it holds for speed alone once it is idle (issue 18 item 6): the
image session and the graph the matrix stands in for; the next search still answers. Real
library, real model, the idle delay shortened."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

from photosearch.gui import controller as controller_module
from photosearch.gui.controller import LibraryController
from photosearch.gui.main_window import MainWindow
from photosearch.search.query import SearchQuery
from tests.gui.conftest import start_and_index
from tests.gui.test_main_window import type_query, wait_results


@contextlib.contextmanager
def _shown_window(gui_library, settings, qtbot) -> Iterator[tuple[LibraryController, MainWindow]]:
    """The app's window on ``gui_library``, closed and its controller shut down afterwards."""
    controller = LibraryController(gui_library)
    window = MainWindow(controller, settings)
    controller.setParent(window)
    qtbot.addWidget(window)
    window.show()
    try:
        yield controller, window
    finally:
        window.close()
        controller.shutdown()


def test_an_idle_app_closes_the_image_session_and_the_graph(
    app, qtbot, gui_library, settings, many_photos, monkeypatch
):
    monkeypatch.setattr(controller_module, "IDLE_RELEASE_MS", 300)
    with _shown_window(gui_library, settings, qtbot) as (_controller, window):
        start_and_index(window, qtbot, many_photos)
        encoder = gui_library.encoder
        assert encoder._visual is not None  # it has just encoded the photos
        qtbot.waitUntil(
            lambda: encoder._visual is None and not gui_library.store.graph_loaded, timeout=10_000
        )
        type_query(window, qtbot, "red")
        assert Path(wait_results(window, qtbot)[0].path).name.startswith("red")


def test_a_large_library_is_searched_from_the_matrix_and_its_graph_given_back_when_idle(
    app, qtbot, gui_library, settings, many_photos, monkeypatch
):
    """Beyond EXACT_LIBRARY_ROWS (here 5 photos; 1M in benchmarks/bench_app_memory_1m.py) the
    graph indexing loaded is given back when idle and searches of small k scan the matrix."""
    from photosearch.vectors import store as store_module

    monkeypatch.setattr(store_module, "EXACT_LIBRARY_ROWS", 5)
    monkeypatch.setattr(controller_module, "IDLE_RELEASE_MS", 300)
    with _shown_window(gui_library, settings, qtbot) as (_controller, window):
        start_and_index(window, qtbot, many_photos)
        store = gui_library.store
        assert len(store) > 5 and store.matrix_first
        qtbot.waitUntil(lambda: not store.graph_loaded, timeout=10_000)
        type_query(window, qtbot, "red")
        assert Path(wait_results(window, qtbot)[0].path).name.startswith("red")
        found = gui_library.search(SearchQuery(text="red", k=3))
        assert len(found) == 3 and not store.graph_loaded


def test_a_search_is_not_queued_behind_a_long_read_nor_released_under_one(
    app, qtbot, gui_library, settings, many_photos, monkeypatch
):
    """A typed search answers while a read (the timeline's reload of a large library) still
    runs, and the idle release waits for that read: a read after the release would map the
    vectors back in and nothing would release them again."""
    import threading

    monkeypatch.setattr(controller_module, "IDLE_RELEASE_MS", 200)
    reading, go_on = threading.Event(), threading.Event()
    with _shown_window(gui_library, settings, qtbot) as (controller, window):
        try:
            start_and_index(window, qtbot, many_photos)
            encoder = gui_library.encoder
            qtbot.waitUntil(lambda: encoder._visual is None, timeout=10_000)

            def long_read() -> None:
                reading.set()
                go_on.wait(20)

            controller._read(long_read)
            assert reading.wait(10)
            encoder.warm_up(texts=False)  # the image session again, for the release to close
            with qtbot.waitSignal(controller.searchFinished, timeout=10_000):
                type_query(window, qtbot, "red")  # answered while the read still runs
            qtbot.wait(800)  # four idle delays
            assert encoder._visual is not None  # not released under the running read
            go_on.set()
            qtbot.waitUntil(lambda: encoder._visual is None, timeout=10_000)
        finally:
            go_on.set()


def test_the_noise_level_is_measured_again_only_when_the_library_changed(
    app, qtbot, gui_library, settings, many_photos
):
    """Nine searches each time (a scan of the matrix apiece at 1M photos): the app asks on
    ready, after every index run and when folders change."""
    searched: list[int] = []
    search = gui_library.search
    gui_library.search = lambda query: searched.append(query.k) or search(query)
    with _shown_window(gui_library, settings, qtbot) as (controller, window):
        start_and_index(window, qtbot, many_photos)
        measured: list[object] = []
        controller.noiseMeasured.connect(measured.append)
        qtbot.waitUntil(lambda: controller._noise is not None, timeout=10_000)
        for _ in range(2):  # the measurements asked for so far, and any they led to
            assert controller._reads.waitForDone(10_000)
            qtbot.wait(200)
        searched.clear()
        measured.clear()
        controller.measure_noise()
        assert controller._reads.waitForDone(10_000)
        qtbot.waitUntil(lambda: len(measured) >= 1, timeout=10_000)
        assert searched == [] and measured[-1] == controller._noise[1]  # the last level
        gui_library.remove_folder(many_photos)
        controller.measure_noise()
        assert controller._reads.waitForDone(10_000)
        assert searched == [1] * 9  # fewer photos: measured again


def test_browses_asked_while_one_waits_are_read_once_with_the_latest_filters(
    app, qtbot, gui_library, settings, many_photos, monkeypatch
):
    """While indexing the window asks for the timeline every few seconds; at 1M photos each
    read takes seconds, so those waiting are merged into one, which answers the latest ask."""
    import threading

    from photosearch.search import timeline

    reads: list[bool] = []
    original = timeline.photos_by_date
    monkeypatch.setattr(
        timeline,
        "photos_by_date",
        lambda catalog, **kw: reads.append(kw["newest_first"]) or original(catalog, **kw),
    )
    with _shown_window(gui_library, settings, qtbot) as (controller, window):
        start_and_index(window, qtbot, many_photos)
        assert controller._reads.waitForDone(10_000)
        reads.clear()
        answered: list[tuple[int, object]] = []
        controller.browseFinished.connect(lambda seq, photos: answered.append((seq, photos)))
        held = threading.Event()
        controller._read(lambda: held.wait(10))  # the read thread busy, as behind a long read
        sequences = [controller.browse(newest_first=n % 2 == 0) for n in range(5)]
        held.set()
        assert controller._reads.waitForDone(10_000)
        qtbot.waitUntil(lambda: bool(answered), timeout=10_000)
        assert reads == [True]  # one read, with the last ask's order
        assert answered[-1][0] == sequences[-1] and len(answered[-1][1]) == 24
