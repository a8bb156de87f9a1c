"""Pieces of the GUI on their own: date ordering, thumbnail cache, 100k-row grid, dialogs."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

from PySide6.QtCore import QSize

from photosearch.gui.first_run import FirstRunDialog
from photosearch.gui.index_status import FailuresDialog
from photosearch.gui.ordering import by_date, relevant_cutoff
from photosearch.gui.results_model import ResultsModel
from photosearch.gui.results_view import ResultsView
from photosearch.gui.thumbnails import ThumbnailCache, ThumbnailLoader
from photosearch.search import SearchResult
from tests.conftest import make_photo


def result(i: int, score: float, year: int | None) -> SearchResult:
    taken = datetime(year, 1, 1) if year else None
    return SearchResult(i, f"/p/{i}.jpg", score, taken_at=taken)


def test_date_order_keeps_only_clearly_relevant_results_newest_first():
    results = [result(1, 0.40, 2001), result(2, 0.38, 2020), result(3, 0.37, None),
               result(4, 0.21, 2024), result(5, 0.20, 2023), result(6, 0.20, 2022),
               result(7, 0.19, 2021)]
    cutoff = relevant_cutoff([r.score for r in results])
    assert abs(cutoff - 0.305) < 1e-9  # halfway between the top (0.40) and the median (0.21)
    assert [r.photo_id for r in by_date(results)] == [2, 1, 3]
    shifted = [SearchResult(r.photo_id, r.path, r.score * 3 + 1, taken_at=r.taken_at)
               for r in results]
    assert [r.photo_id for r in by_date(shifted)] == [2, 1, 3]  # scale-free


def test_thumbnail_cache_is_keyed_by_path_and_mtime_and_pruned(app, tmp_path):
    photo = make_photo(tmp_path / "photos" / "red.jpg", "red", size=(800, 600))
    cache = ThumbnailCache(tmp_path / "library" / "thumbnails")
    image = cache.load_or_make(str(photo))
    assert max(image.width(), image.height()) == 256
    first = cache.path_for(str(photo))
    assert first.is_file() and first.is_relative_to(tmp_path / "library")
    make_photo(photo, "blue", size=(800, 600))
    import os

    os.utime(photo, ns=(0, 10**18))
    assert cache.path_for(str(photo)) != first  # an edited photo gets a new thumbnail
    cache.load_or_make(str(photo))
    assert cache.prune(max_bytes=cache.size_bytes() - 1) == 1
    assert cache.prune(max_bytes=0) == 1 and cache.size_bytes() == 0


def test_grid_with_100k_results_only_asks_for_visible_thumbnails(app, qtbot, tmp_path):
    loader = ThumbnailLoader(ThumbnailCache(tmp_path / "thumbs"), QSize(168, 168))
    model = ResultsModel(loader)
    view = ResultsView(QSize(168, 168))
    qtbot.addWidget(view)
    view.setModel(model)
    view.resize(1000, 700)
    view.show()
    results = [SearchResult(i, f"/nowhere/{i}.jpg", 1.0 - i * 1e-6) for i in range(100_000)]
    started = time.perf_counter()
    model.set_results(results)
    view.grab()  # lays out and paints
    first_paint = time.perf_counter() - started
    started = time.perf_counter()
    for fraction in (0.25, 0.5, 0.75, 1.0):
        bar = view.verticalScrollBar()
        bar.setValue(int(bar.maximum() * fraction))
        view.grab()
    scrolling = (time.perf_counter() - started) / 4
    assert model.rowCount() == 100_000
    width, cell = view.viewport().width(), view.gridSize().width()
    assert width - (width // cell) * cell < width // cell, "the cells fill each row"
    assert loader.requested < 5 * 40, "only visible cells (about 30 per screen) are requested"
    assert first_paint < 1.5, f"100k results took {first_paint:.2f} s to show"
    assert scrolling < 0.25, f"a scroll repaint took {scrolling:.3f} s"
    loader.forget_pending()
    loader.wait(5000)


def test_first_run_suggests_folders_and_returns_them(app, qtbot, tmp_path):
    dialog = FirstRunDialog([tmp_path])
    qtbot.addWidget(dialog)
    assert dialog.folders() == [tmp_path]
    from PySide6.QtWidgets import QLabel

    assert any("never uploaded" in label.text() for label in dialog.findChildren(QLabel))


def test_failures_dialog_lists_reasons_and_offers_retry(app, qtbot):
    from PySide6.QtWidgets import QPushButton

    dialog = FailuresDialog([("/p/bad.jpg", "corrupt or truncated image")], 1)
    qtbot.addWidget(dialog)
    assert dialog.table.item(0, 1).text() == "corrupt or truncated image"
    with qtbot.waitSignal(dialog.retryRequested, timeout=1000):
        next(b for b in dialog.findChildren(QPushButton) if b.text() == "Retry").click()


def test_importing_the_gui_package_does_not_import_qt():
    code = "import sys, photosearch.gui; assert 'PySide6' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True,
                   cwd=Path(__file__).resolve().parents[2])
