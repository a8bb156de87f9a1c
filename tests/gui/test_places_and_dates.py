"""Issue 20 in the app: a date typed in the search is a removable chip, the Places filter lists
the library's places with counts and narrows results and the timeline, the viewer says where a
photo was taken. Real tiny-model library, real EXIF, real geocoder."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from tests.gui.conftest import start_and_index
from tests.gui.test_main_window import type_query, wait_results
from tests.test_photo_words import LISBON, SYDNEY, _dated


def _photos(folder: Path) -> Path:
    _dated(folder / "lisbon_red.jpg", "2019:07:14 12:00:00", "red", LISBON)
    _dated(folder / "sydney_red.jpg", "2020:12:25 09:30:00", "red", SYDNEY)
    _dated(folder / "home_red.jpg", "2019:08:02 18:00:00", "red")
    _dated(folder / "home_blue.jpg", "2019:08:03 18:00:00", "blue")
    return folder


def _names(results) -> set[str]:
    return {Path(r.path).name for r in results}


def test_a_date_in_the_query_is_a_chip_that_can_be_removed(window, qtbot, tmp_path):
    start_and_index(window, qtbot, _photos(tmp_path / "photos"))
    type_query(window, qtbot, "red summer 2019")
    qtbot.waitUntil(
        lambda: (
            window.showing_search
            and _names(window.grid.results) == {"lisbon_red.jpg", "home_red.jpg", "home_blue.jpg"}
        ),
        timeout=10_000,
    )
    chip = window.search_bar.date_chip
    assert chip.isVisible() and chip.text() == "summer 2019 ✕"
    assert "2019-06-01 – 2019-08-31" in chip.toolTip()

    chip.click()  # the whole text searched as words again: every photo may match
    qtbot.waitUntil(lambda: "sydney_red.jpg" in _names(window.grid.results), timeout=10_000)
    assert not chip.isVisible()
    type_query(window, qtbot, " beach")  # another text: its date is read again
    qtbot.waitUntil(lambda: chip.isVisible(), timeout=5000)


def test_places_filter_lists_places_and_narrows_search_and_timeline(window, qtbot, tmp_path):
    start_and_index(window, qtbot, _photos(tmp_path / "photos"))
    places = window.search_bar.places
    places.refill()  # what opening the list does
    items = [places.itemText(i) for i in range(places.count())]
    assert items == [
        "Any place",
        "Australia (1)",
        "    Sydney, Australia (1)",
        "Portugal (1)",
        "    Lisbon, Portugal (1)",
    ]
    places.setCurrentIndex(places.findData("Portugal"))
    qtbot.waitUntil(lambda: _names(window.grid.results) == {"lisbon_red.jpg"}, timeout=10_000)
    assert window.in_timeline  # no text: the timeline is filtered too

    type_query(window, qtbot, "red")
    assert _names(wait_results(window, qtbot)) == {"lisbon_red.jpg"}
    places.setCurrentIndex(0)
    qtbot.waitUntil(lambda: len(window.grid.results) == 4, timeout=10_000)


def test_the_viewer_says_where_a_photo_was_taken(window, qtbot, tmp_path):
    start_and_index(window, qtbot, _photos(tmp_path / "photos"))
    type_query(window, qtbot, "red")
    results = wait_results(window, qtbot)
    row = next(i for i, r in enumerate(results) if Path(r.path).name == "sydney_red.jpg")
    viewer = window.open_viewer(row)
    assert viewer.fields["Place"].text() == "Sydney, New South Wales, Australia"
    plain = next(i for i, r in enumerate(results) if Path(r.path).name == "home_red.jpg")
    viewer.show_row(plain)
    assert viewer.fields["Place"].text() == "unknown"
    assert Image.open(results[row].path).getexif().get_ifd(0x8825)  # read, never rewritten
