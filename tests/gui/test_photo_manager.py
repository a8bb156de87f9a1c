"""The window as a photo manager, driven as a user drives it (keys to the focused widget, mouse
clicks on the grid): the timeline, match strength, date presets, multi-select, trash."""

from __future__ import annotations

import os
import shutil
from datetime import datetime
from pathlib import Path

import pytest
from PIL import Image
from PySide6.QtCore import QPoint, QRect, Qt
from PySide6.QtWidgets import QApplication, QPushButton, QToolButton

from photosearch.gui.presentation import CLOSEST
from tests.conftest import make_photo
from tests.gui.conftest import start_and_index
from tests.gui.test_main_window import press, type_query, wait_results

SAMPLES = Path(__file__).resolve().parents[2] / "resources" / "samples"
DATETIME_ORIGINAL, EXIF_IFD = 36867, 0x8769


def dated_photo(path: Path, colour: str, taken: datetime) -> Path:
    """A photo whose EXIF says when it was taken."""
    make_photo(path, colour)
    image = Image.open(path)
    exif = image.getexif()
    exif.get_ifd(EXIF_IFD)[DATETIME_ORIGINAL] = taken.strftime("%Y:%m:%d %H:%M:%S")
    image.save(path, exif=exif)
    return path


def wait_timeline(win, qtbot, count: int, timeout: int = 10_000) -> None:
    qtbot.waitUntil(
        lambda: win.in_timeline and not win.showing_search and win.grid.count() == count,
        timeout=timeout,
    )


def wait_names(win, qtbot, names: list[str], timeout: int = 10_000) -> None:
    qtbot.waitUntil(lambda: [Path(r.path).name for r in win.grid.results] == names, timeout=timeout)


def click_photo(
    win, qtbot, item: int, modifier=Qt.KeyboardModifier.NoModifier, button=Qt.MouseButton.LeftButton
) -> None:
    win.grid.scroll_to(item)
    qtbot.mouseClick(win.grid.viewport(), button, modifier, win.grid.item_rect(item).center())


def test_timeline_groups_by_month_and_day_newest_first_and_esc_returns_to_it(
    window, qtbot, tmp_path
):
    folder = tmp_path / "dated"
    dated_photo(folder / "march.jpg", "red", datetime(2024, 3, 14, 10, 0))
    dated_photo(folder / "march-later.jpg", "blue", datetime(2024, 3, 14, 18, 0))
    dated_photo(folder / "march-noon.jpg", "black", datetime(2024, 3, 14, 12, 0))
    dated_photo(folder / "march-2.jpg", "green", datetime(2024, 3, 2, 9, 0))
    dated_photo(folder / "march-2-later.jpg", "green", datetime(2024, 3, 2, 10, 0))
    dated_photo(folder / "march-2-last.jpg", "red", datetime(2024, 3, 2, 11, 0))
    dated_photo(folder / "july.jpg", "yellow", datetime(2023, 7, 1, 12, 0))
    make_photo(folder / "undated.jpg", "white")  # no EXIF: dated by its file, today
    start_and_index(window, qtbot, folder)
    wait_timeline(window, qtbot, 8)
    names = [Path(r.path).name for r in window.grid.results]
    assert names == [
        "undated.jpg",
        "march-later.jpg",
        "march-noon.jpg",
        "march.jpg",
        "march-2-last.jpg",
        "march-2-later.jpg",
        "march-2.jpg",
        "july.jpg",
    ]
    titles = [(h.start, h.title, h.kind) for h in window.grid.headers]
    today = datetime.now().strftime("%B %Y")
    assert titles == [
        (0, f"{today} · file date", "major"),  # one photo: just its month
        (1, "March 2024", "major"),
        (1, "Thu 14 March 2024", "minor"),
        (4, "Sat 2 March 2024", "minor"),
        (7, "July 2023", "major"),
    ]
    assert window.summary.text() == "8 photos, newest first"
    assert window.scrubber.isVisible() and window.scrubber.labels

    window.search_bar.set_sort("oldest")
    qtbot.waitUntil(
        lambda: window.grid.count() == 8 and Path(window.grid.results[0].path).name == "july.jpg",
        timeout=5000,
    )
    assert window.summary.text() == "8 photos, oldest first"

    type_query(window, qtbot, "red")
    wait_results(window, qtbot)
    press(qtbot, Qt.Key.Key_Escape)  # Esc in the search field: back to the timeline
    wait_timeline(window, qtbot, 8)
    assert window.search_bar.field.text() == ""


def test_good_matches_first_then_a_divider_and_nonsense_says_so(window, qtbot, many_photos):
    start_and_index(window, qtbot, many_photos)
    qtbot.waitUntil(lambda: window._noise is not None, timeout=5000)
    type_query(window, qtbot, "green")
    results = wait_results(window, qtbot)
    assert window.summary.text() == "4 good matches"
    assert all(Path(r.path).name.startswith("green") for r in results[:4])
    headers = [(h.start, h.title, h.kind) for h in window.grid.headers]
    assert headers[0] == (0, "4 good matches", "major")
    assert headers[1] == (4, "More results (weaker matches)", "divider")
    assert len(results) < 24 or headers[1][0] == 4  # never "the whole library" as matches

    window.search_bar.set_sort("newest")  # date order: the good matches only, by date
    qtbot.waitUntil(lambda: window.grid.count() == 4, timeout=5000)
    assert window.summary.text() == "4 good matches, newest first"

    window.search_bar.set_sort("relevance")
    window.search_bar.clear()
    type_query(window, qtbot, "qwertyuiop zxcv")
    wait_results(window, qtbot)
    assert window.summary.text() == "No good matches"
    assert 0 < window.grid.count() <= CLOSEST
    assert window.grid.headers[0].title == "No good matches. The closest photos:"
    shown = window.summary.text() + " ".join(h.title for h in window.grid.headers)
    assert not any(ch.isdigit() for ch in shown.replace("4", ""))  # no scores anywhere


def test_one_date_control_with_presets_that_looks_off_when_off(window, qtbot, tmp_path):
    folder = tmp_path / "years"
    last_year = datetime.now().year - 1
    dated_photo(folder / "old.jpg", "red", datetime(last_year, 6, 1, 12, 0))
    dated_photo(folder / "older.jpg", "red", datetime(2001, 6, 1, 12, 0))
    make_photo(folder / "undated.jpg", "red")  # file date: today
    start_and_index(window, qtbot, folder)
    wait_timeline(window, qtbot, 3)
    bar = window.search_bar
    assert bar.dates.currentText() == "Any date"
    assert not bar.after.isVisible() and not bar.before.isVisible()  # no editors when off
    assert bar.dates.styleSheet() == ""
    bar.set_date_preset("last-year")
    wait_names(window, qtbot, ["old.jpg"])
    assert "bold" in bar.dates.styleSheet()  # on, and it looks on
    bar.set_date_preset("this-year")  # the undated photo counts by its file date
    wait_names(window, qtbot, ["undated.jpg"])
    bar.set_date_preset("range")
    assert bar.after.isVisible() and bar.before.isVisible()
    from PySide6.QtCore import QDate

    bar.after.setDate(QDate(2000, 1, 1))
    bar.before.setDate(QDate(2002, 1, 1))
    wait_names(window, qtbot, ["older.jpg"])
    bar.set_date_preset("any")
    wait_timeline(window, qtbot, 3)
    assert not bar.after.isVisible()


def test_multi_select_by_click_ctrl_shift_ctrl_a_and_rubber_band(window, qtbot, many_photos):
    start_and_index(window, qtbot, many_photos)
    wait_timeline(window, qtbot, 24)
    grid = window.grid
    click_photo(window, qtbot, 2)
    assert grid.selected == {2} and QApplication.focusWidget() is grid
    click_photo(window, qtbot, 5, Qt.KeyboardModifier.ControlModifier)
    assert grid.selected == {2, 5}
    click_photo(window, qtbot, 2, Qt.KeyboardModifier.ControlModifier)
    assert grid.selected == {5}
    click_photo(window, qtbot, 5)  # the anchor of a Shift+click is the last plain click
    click_photo(window, qtbot, 8, Qt.KeyboardModifier.ShiftModifier)
    assert grid.selected == {5, 6, 7, 8}
    press(qtbot, Qt.Key.Key_Right, Qt.KeyboardModifier.ShiftModifier)
    assert grid.selected == {5, 6, 7, 8, 9}
    press(qtbot, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    assert grid.selected == set(range(24))
    assert window.trash_action.text() == "Move 24 photos to trash…"
    click_photo(window, qtbot, 0)
    assert grid.selected == {0}

    grid.verticalScrollBar().setValue(0)
    start = QPoint(grid.viewport().width() - 3, 3)  # the month header: empty space
    end = grid.item_rect(3).center()
    qtbot.mousePress(grid.viewport(), Qt.MouseButton.LeftButton, pos=start)
    from PySide6.QtGui import QMouseEvent

    move = QMouseEvent(
        QMouseEvent.Type.MouseMove,
        end,
        grid.viewport().mapToGlobal(end),
        Qt.MouseButton.NoButton,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    QApplication.sendEvent(grid.viewport(), move)
    qtbot.mouseRelease(grid.viewport(), Qt.MouseButton.LeftButton, pos=end)
    band = QRect(start, end).normalized()
    expected = {i for i in range(24) if grid.item_rect(i).intersects(band)}
    assert grid.selected == expected and 3 in expected and 0 not in expected

    click_photo(window, qtbot, 10)
    click_photo(window, qtbot, 11, button=Qt.MouseButton.RightButton)  # selects what it
    assert grid.selected == {11}  # acts on
    menu = window.context_menu
    assert menu.isVisible() and "Move to trash…" in [a.text() for a in menu.actions()]
    menu.close()
    press(qtbot, Qt.Key.Key_C, Qt.KeyboardModifier.ControlModifier)  # copy the file
    mime = QApplication.clipboard().mimeData()
    assert [u.toLocalFile() for u in mime.urls()] == [grid.results[11].path]


@pytest.fixture
def trash_dir(tmp_path: Path, monkeypatch) -> Path:
    """send2trash's freedesktop trash pointed into the test's own directory."""
    import send2trash.plat_other as trash

    home = tmp_path / "xdg-data"
    home.mkdir()
    monkeypatch.setattr(trash, "XDG_DATA_HOME", os.fsencode(home))
    monkeypatch.setattr(trash, "HOMETRASH_B", os.fsencode(home / "Trash"))
    monkeypatch.setattr(trash, "HOMETRASH", str(home / "Trash"))
    return home / "Trash"


@pytest.mark.skipif(not SAMPLES.is_dir(), reason="resources/samples is missing")
def test_move_to_trash_asks_first_and_the_library_follows(window, qtbot, tmp_path, trash_dir):
    folder = tmp_path / "samples"
    shutil.copytree(SAMPLES, folder, ignore=shutil.ignore_patterns("*.md"))
    total = len(list(folder.glob("*.jpg")))
    start_and_index(window, qtbot, folder)
    wait_timeline(window, qtbot, total)
    click_photo(window, qtbot, 0)
    click_photo(window, qtbot, 1, Qt.KeyboardModifier.ControlModifier)
    chosen = [r.path for r in window.grid.selected_results()]

    press(qtbot, Qt.Key.Key_Delete)  # asks; Cancel (the default) changes nothing
    box = window.confirm_box
    assert box is not None and box.isVisible()
    assert box.text() == "Move 2 photos to the trash?"
    qtbot.waitUntil(lambda: box.isAncestorOf(QApplication.focusWidget()), timeout=3000)
    press(qtbot, Qt.Key.Key_Return)  # the default button is Cancel
    qtbot.waitUntil(lambda: not box.isVisible(), timeout=3000)
    assert all(Path(p).exists() for p in chosen)
    qtbot.waitUntil(lambda: QApplication.focusWidget() is window.grid, timeout=3000)

    press(qtbot, Qt.Key.Key_Delete)
    box = window.confirm_box
    trash = next(b for b in box.findChildren(QPushButton) if b.text() == "Move 2 photos to trash")
    with qtbot.waitSignal(window.controller.trashFinished, timeout=20_000):
        qtbot.mouseClick(trash, Qt.MouseButton.LeftButton)
    assert not any(Path(p).exists() for p in chosen)
    assert sorted(p.name for p in (trash_dir / "files").iterdir()) == sorted(
        Path(p).name for p in chosen
    )  # recoverable from the trash
    assert not set(chosen) & {r.path for r in window.grid.results}
    assert window.grid.count() == total - 2
    library = window.controller.library
    from photosearch.search.query import SearchQuery
    from photosearch.search.timeline import photos_by_date

    assert not set(chosen) & {r.path for r in photos_by_date(library.catalog)}
    assert not set(chosen) & {r.path for r in library.search(SearchQuery(text="red", k=50))}
    qtbot.waitUntil(
        lambda: f"{total - 2} photos" in window.folders.list.item(0).text(), timeout=5000
    )


def test_more_like_this_from_the_viewer_closes_it_and_shows_a_photo_chip(
    window, qtbot, many_photos
):
    start_and_index(window, qtbot, many_photos)
    type_query(window, qtbot, "blue")
    wait_results(window, qtbot)
    press(qtbot, Qt.Key.Key_Down)
    press(qtbot, Qt.Key.Key_Return)
    viewer = window.viewer
    liked = viewer.current.path
    button = next(b for b in viewer.findChildren(QToolButton) if b.text() == "More like this")
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: window.viewer is None, timeout=3000)
    chip = window.search_bar.like_button
    assert chip.isVisible() and not chip.icon().isNull() and chip.text() == "Similar photos ✕"
    assert window.search_bar.field.text() == ""  # the typed text visibly gave way
    results = wait_results(window, qtbot)
    assert liked not in {r.path for r in results}
    assert Path(results[0].path).name.startswith("blue")
    qtbot.mouseClick(chip, Qt.MouseButton.LeftButton)  # the chip's ✕: back to the timeline
    wait_timeline(window, qtbot, 24)


def test_show_in_folder_and_open_say_so_when_nothing_can_open_them(
    window, qtbot, many_photos, tmp_path, monkeypatch
):
    """No xdg-open on the PATH and no D-Bus session: the user is told, not left waiting."""
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    start_and_index(window, qtbot, many_photos)
    wait_timeline(window, qtbot, 24)
    click_photo(window, qtbot, 0)
    assert window.show_in_folder() is None
    assert "No file manager" in window.error_box.text()
    assert window.grid.results[0].path in window.error_box.text()
    assert window.open_externally() is False
    assert "No application is set up to open photos" in window.error_box.text()
