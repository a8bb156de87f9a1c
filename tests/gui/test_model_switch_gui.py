"""The app during a model switch: it searches with the old model until the new one covers the
library, then switches (model and results) by itself. Real tiny-model library, offscreen Qt."""

from __future__ import annotations

from photosearch.gui.main_window import watch_text
from photosearch.library.watch_service import WatchStatus
from photosearch.search.query import SearchQuery
from tests.gui.test_main_window import type_query, wait_results


def scored(results) -> list[tuple[str, float]]:
    return [(r.path, round(r.score, 5)) for r in results]


def test_app_opened_mid_switch_searches_the_old_model_then_switches(
    window, gui_library, qtbot, many_photos
):
    library = gui_library
    library.add_folder(many_photos)
    library.index()  # every photo with tiny, the library's model
    old = scored(library.search(SearchQuery(text="red", k=24)))
    assert library.use_model("tiny2").target == "tiny2"
    library.index(should_stop=lambda: True, batch_size=8)  # stopped: 8 of 24 for tiny2

    controller = window.controller
    with qtbot.waitSignal(controller.ready, timeout=20_000):
        controller.start(index=False)
    assert controller.library.model_name == "tiny"
    assert window.current_settings().model == "tiny2"  # Settings shows the choice made
    type_query(window, qtbot, "red")
    assert scored(wait_results(window, qtbot)) == old

    with qtbot.waitSignals([controller.modelChanged, controller.indexFinished], timeout=20_000):
        controller.index()  # finishes the re-encode (16 left), then switches
    assert controller.library.model_name == "tiny2"
    new = scored(library.search(SearchQuery(text="red", k=24)))
    assert new != old and len(new) == 24
    qtbot.waitUntil(lambda: scored(window.grid.results) == new, timeout=10_000)


def test_status_bar_shows_the_watchers_re_encoding_progress():
    status = WatchStatus(
        "re-encoding", message="re-encoding for ViT-B-32: 40/400 photos, 20.0 photos/s, ETA 00:18"
    )
    assert watch_text(status) == "Re-encoding for ViT-B-32: 40/400 photos, 20.0 photos/s, ETA 00:18"
