"""Near-duplicates in the app: one result per group with a "+N" badge (or every copy when
asked), and the Duplicates window, whose selected copies go to the trash only after asking."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QPushButton

from tests.gui.conftest import start_and_index
from tests.gui.test_main_window import type_query, wait_results
from tests.gui.test_photo_manager import press, trash_dir  # noqa: F401 - fixture
from tests.test_duplicates import make_copies, scene


def copies_folder(tmp_path: Path) -> tuple[Path, list[list[Path]]]:
    folder = tmp_path / "photos"
    groups = [make_copies(folder / "trip", 1), make_copies(folder / "party", 2)]
    scene(3).save(folder / "single.png")
    return folder, groups


def test_search_shows_one_photo_per_group_unless_every_copy_is_asked_for(window, qtbot, tmp_path):
    folder, groups = copies_folder(tmp_path)
    start_and_index(window, qtbot, folder)
    type_query(window, qtbot, "red")
    press(qtbot, Qt.Key.Key_Return)
    shown = wait_results(window, qtbot)
    assert len(shown) == 3
    assert sorted(len(r.similar) for r in shown) == [0, 3, 3]
    window.grid.grab()  # paints the "+3" badges without error

    window.all_copies_action.setChecked(True)
    qtbot.waitUntil(lambda: window.grid.count() == 9, timeout=10_000)
    assert all(not r.similar for r in window.grid.results)
    assert window.settings.value("search/all_copies", type=bool) is True


def test_duplicates_window_lists_groups_and_trashes_only_what_is_confirmed(
    window,
    qtbot,
    tmp_path,
    trash_dir,  # noqa: F811 - the fixture
):
    folder, groups = copies_folder(tmp_path)
    start_and_index(window, qtbot, folder)
    view = window.open_duplicates()
    qtbot.waitUntil(lambda: not view.searching, timeout=10_000)
    assert view.tree.topLevelItemCount() == 2
    for row in range(2):
        top = view.tree.topLevelItem(row)
        assert top.childCount() == 4
        assert top.child(0).text(0).endswith(".jpg (best)")
        assert top.child(0).text(1) == "320×240"
    assert "2 groups of near-duplicates" in view.summary.text()
    assert not view.trash_button.isEnabled()

    view.select_copies()
    chosen = view.selected_paths()
    assert len(chosen) == 6 and view.trash_button.text() == "Move 6 photos to trash…"
    assert not {str(g[0]) for g in groups} & set(chosen)

    box = view.confirm_trash()  # Cancel changes nothing
    assert box.text() == "Move 6 photos to the trash?"
    box.reject()
    assert all(Path(p).exists() for p in chosen)

    box = view.confirm_trash()
    trash = next(b for b in box.findChildren(QPushButton) if b.text() == "Move 6 photos to trash")
    with qtbot.waitSignal(window.controller.trashFinished, timeout=20_000):
        qtbot.mouseClick(trash, Qt.MouseButton.LeftButton)
    assert not any(Path(p).exists() for p in chosen)
    assert sorted(p.name for p in (trash_dir / "files").iterdir()) == sorted(
        Path(p).name for p in chosen
    )
    assert all(g[0].exists() for g in groups)
    qtbot.waitUntil(
        lambda: not view.searching and view.tree.topLevelItemCount() == 0, timeout=10_000
    )
    assert view.summary.text() == "No near-duplicates found."
    view.close()
