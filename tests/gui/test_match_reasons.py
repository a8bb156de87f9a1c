"""Why a search result matched, in the app: the grid's tooltip and the good-match count."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QPoint, QSize
from PySide6.QtGui import QHelpEvent
from PySide6.QtWidgets import QApplication, QToolTip

from photosearch.gui.photo_grid import PhotoGrid
from photosearch.gui.presentation import present_search
from photosearch.gui.thumbnails import ThumbnailCache, ThumbnailLoader
from photosearch.search.fusion import LOOKS, NAME, PLACE, MatchReason
from photosearch.search.query import SearchResult

PARIS = (MatchReason(NAME, ("paris", "trip")), MatchReason(PLACE, ("paris",)))


def test_a_result_shows_why_it_matched_as_its_tooltip(app, qtbot, tmp_path):
    loader = ThumbnailLoader(ThumbnailCache(tmp_path / "thumbs"), QSize(128, 128))
    grid = PhotoGrid(loader)
    qtbot.addWidget(grid)
    grid.resize(600, 400)
    grid.show()
    grid.set_content(
        [
            SearchResult(1, "/nowhere/a.jpg", 0.2, 400, 300, reasons=PARIS),
            SearchResult(2, "/nowhere/b.jpg", 0.3, 400, 300, reasons=(MatchReason(LOOKS),)),
        ]
    )
    assert grid.reasons_tip(0) == "Matched by folder/file name: paris trip; place: paris"
    assert grid.reasons_tip(1) == ""
    centre = grid.item_rect(0).center()
    event = QHelpEvent(QEvent.Type.ToolTip, centre, grid.viewport().mapToGlobal(centre))
    QApplication.sendEvent(grid.viewport(), event)
    qtbot.waitUntil(lambda: QToolTip.text() == grid.reasons_tip(0), timeout=2000)
    elsewhere = QPoint(590, 390)  # empty space: no tooltip
    QApplication.sendEvent(
        grid.viewport(),
        QHelpEvent(QEvent.Type.ToolTip, elsewhere, grid.viewport().mapToGlobal(elsewhere)),
    )
    loader.forget_pending()
    loader.wait(5000)


def test_a_photo_found_by_its_words_counts_as_a_good_match():
    looks = [
        SearchResult(i, f"/p/{i}.jpg", 0.40 - 0.01 * i, reasons=(MatchReason(LOOKS),))
        for i in range(3)
    ]
    weak = [SearchResult(10 + i, f"/p/w{i}.jpg", 0.10) for i in range(20)]
    worded = SearchResult(99, "/p/paris.jpg", 0.05, reasons=PARIS)
    shown = present_search([*looks, worded, *weak], "relevance", noise=None)
    assert shown.good == 4
    assert shown.results[3] is worded
