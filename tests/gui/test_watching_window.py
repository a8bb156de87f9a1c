"""The main window with folder watching on: photos saved into a folder appear in the results."""

from __future__ import annotations

import time

from photosearch.gui.main_window import watch_text
from photosearch.library.watch_service import WatchService, WatchStatus
from photosearch.search.query import SearchQuery
from tests.conftest import make_photo
from tests.gui.conftest import start_and_index
from tests.gui.test_main_window import type_query, wait_results

NEW_PHOTO_BOUND_S = 15  # settle 0.1 s + one batch; generous for a loaded 2-core machine


def fast_service(library, on_status):
    return WatchService(library, on_status=on_status, settle_s=0.1, quiet_s=0.1, max_delay_s=0.5)


def test_a_photo_saved_into_a_watched_folder_appears_in_the_grid(window, qtbot, many_photos):
    start_and_index(window, qtbot, many_photos)
    controller = window.controller
    controller.enable_watching(fast_service)
    qtbot.waitUntil(lambda: window.watch_label.text() == "Watching 1 folder", timeout=20_000)
    type_query(window, qtbot, "black")
    before = {r.path for r in wait_results(window, qtbot)}
    saved = make_photo(many_photos / "new" / "black-new.png", "black")
    assert str(saved) not in before
    started = time.monotonic()
    qtbot.waitUntil(
        lambda: str(saved) in {r.path for r in window.grid.results},
        timeout=NEW_PHOTO_BOUND_S * 1000,
    )
    print(f"saved photo in the grid after {time.monotonic() - started:.2f} s")
    qtbot.waitUntil(lambda: "25 photos" in window.folders.list.item(0).text(), timeout=5000)


def test_indexing_while_watching_keeps_the_same_watcher_running(window, qtbot, many_photos):
    """The app's own index and the watcher take turns through Library.writing: the watcher
    is neither stopped nor restarted, and both keep working."""
    start_and_index(window, qtbot, many_photos)
    controller = window.controller
    controller.enable_watching(fast_service)
    qtbot.waitUntil(lambda: window.watch_label.text().startswith("Watching 1"), timeout=20_000)
    service = controller.watcher.service
    saved = make_photo(many_photos / "during" / "white-during.png", "white")
    with qtbot.waitSignal(controller.indexFinished, timeout=20_000):
        controller.index()
    assert controller.watcher.service is service
    qtbot.waitUntil(
        lambda: (
            service.status.state == "watching"
            and str(saved)
            in {r.path for r in controller.library.search(SearchQuery(text="white", k=50))}
        ),
        timeout=20_000,
    )
    later = make_photo(many_photos / "after" / "black-after.png", "black")
    qtbot.waitUntil(
        lambda: (
            str(later)
            in {r.path for r in controller.library.search(SearchQuery(text="black", k=50))}
        ),
        timeout=NEW_PHOTO_BOUND_S * 1000,
    )


def test_a_folder_added_while_watching_is_watched(window, qtbot, many_photos, tmp_path):
    start_and_index(window, qtbot, many_photos)
    controller = window.controller
    controller.enable_watching(fast_service)
    qtbot.waitUntil(lambda: window.watch_label.text() == "Watching 1 folder", timeout=20_000)
    extra = tmp_path / "extra"
    make_photo(extra / "red-first.png", "red")
    with qtbot.waitSignal(controller.indexFinished, timeout=20_000):
        controller.add_folder(extra)
    qtbot.waitUntil(lambda: window.watch_label.text() == "Watching 2 folders", timeout=20_000)
    saved = make_photo(extra / "blue-later.png", "blue")
    qtbot.waitUntil(
        lambda: (
            str(saved)
            in {r.path for r in controller.library.search(SearchQuery(text="blue", k=50))}
        ),
        timeout=NEW_PHOTO_BOUND_S * 1000,
    )


def test_watch_status_words():
    assert watch_text(None) == "Watching paused"
    assert watch_text(WatchStatus("watching", folders=2)) == "Watching 2 folders"
    assert watch_text(WatchStatus("failed", error="inotify limit")) == "Not watching: inotify limit"
