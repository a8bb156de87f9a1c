"""Start the real app on a real library and save a screenshot of every state.

    .venv/bin/python scripts/gui_screenshots.py OUT_DIR [--images DIR] [--count N]

Copies N photos (default 400) from --images (the Flickr8k-1k subset when present, else the
bundled samples) into a scratch folder and spreads the copies' file dates over the last 18
months, so the timeline has months and days to show (the originals are not touched). Uses
the default model when its bundle is installed, else the tiny test model. Run it under a
real X server and window manager to see what users see, e.g.

    Xvfb :99 -screen 0 1600x1000x24 & DISPLAY=:99 openbox &
    DISPLAY=:99 .venv/bin/python scripts/gui_screenshots.py /tmp/shots

States: indexing, timeline, search with good matches and the divider, no good matches,
newest-first among the good matches, a date preset, multi-select with its menu, the viewer
(and its info panel hidden), settings, first run.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QEventLoop, QSettings, Qt, QTimer  # noqa: E402
from PySide6.QtGui import QGuiApplication  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402
from PySide6.QtWidgets import QWidget  # noqa: E402

from photosearch.gui.app import make_application, open_window  # noqa: E402
from photosearch.gui.first_run import FirstRunDialog  # noqa: E402
from photosearch.library.facade import Library  # noqa: E402
from photosearch.models.providers import ModelRegistry  # noqa: E402

FLICKR = Path("/work/shared/data/flickr8k-1k/images")
SAMPLES = ROOT / "resources" / "samples"


def make_library(directory: Path, model: str | None) -> Library:
    registry = ModelRegistry(
        Path(os.environ.get("PHOTOSEARCH_MODELS", ""))
        if os.environ.get("PHOTOSEARCH_MODELS")
        else Path.home() / ".local/share/photosearch/models"
    )
    try:
        name = model or registry.default_model_name()
        if registry.path_of(name) is None:
            raise LookupError(name)
        return Library(directory, registry=registry, model=name)
    except Exception as exc:  # the default bundle is not built: use the tiny test model
        print(f"default model unavailable ({exc}); using the tiny test model", file=sys.stderr)
        from tests.support.tiny_bundle import TinyProvider

        tiny = ModelRegistry(directory.parent / "models", providers={"tiny": TinyProvider()})
        return Library(directory, registry=tiny, model="tiny")


def copy_with_spread_dates(source: Path, target: Path, count: int) -> Path:
    """``count`` photos of ``source`` copied into ``target``, file dates over 18 months."""
    photos = sorted(p for p in source.iterdir() if p.suffix.lower() in {".jpg", ".jpeg"})
    target.mkdir(parents=True, exist_ok=True)
    now = datetime.now()
    for i, photo in enumerate(photos[:count]):
        copy = target / photo.name
        shutil.copyfile(photo, copy)
        when = now - timedelta(days=(i * 7919) % 540, hours=(i * 31) % 24)
        os.utime(copy, (when.timestamp(), when.timestamp()))
    return target


def wait_until(condition, timeout_s: float) -> bool:  # noqa: ANN001
    deadline = time.monotonic() + timeout_s
    loop = QEventLoop()
    while time.monotonic() < deadline:
        if condition():
            return True
        QTimer.singleShot(50, loop.quit)
        loop.exec()
    return condition()


def settle(seconds: float = 0.4) -> None:
    wait_until(lambda: False, seconds)


def save(widget: QWidget, path: Path) -> None:
    widget.grab().save(str(path))
    print(f"saved {path}")


def save_screen(path: Path) -> None:
    """The whole screen: menus and dialogs are windows of their own."""
    QGuiApplication.primaryScreen().grabWindow(0).save(str(path))
    print(f"saved {path}")


def thumbnails_ready(window) -> bool:  # noqa: ANN001
    grid = window.grid
    top = grid.verticalScrollBar().value()
    layout = grid.layout_
    for row in layout.rows_between(top, top + grid.viewport().height()):
        for item in range(layout.row_first[row], layout.row_first[row] + layout.row_count[row]):
            path = grid.results[item].path
            if window.thumbnails.cached(path) is None and path not in window.thumbnails.failed:
                return False
    return True


def search(window, text: str) -> None:  # noqa: ANN001
    window.search_bar.clear()
    settle(0.3)
    window.search_bar.field.setFocus()
    QTest.keyClicks(window.search_bar.field, text)
    wait_until(lambda: window.showing_search, 30)
    wait_until(lambda: thumbnails_ready(window), 30)
    settle()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--images", type=Path, default=FLICKR if FLICKR.is_dir() else SAMPLES)
    parser.add_argument("--count", type=int, default=400)
    parser.add_argument("--query", default="a dog running on the grass")
    parser.add_argument("--model")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="photosearch-shots-"))
    photos = copy_with_spread_dates(args.images, work / "Pictures", args.count)
    app = make_application([sys.argv[0]])
    library = make_library(work / "library", args.model)
    library.add_folder(photos)
    settings = QSettings(str(work / "gui.ini"), QSettings.Format.IniFormat)
    window = open_window(library, settings, first_run=False, watch=False)
    window.resize(1400, 880)
    window.show()
    finished = []
    window.controller.indexFinished.connect(lambda report, error: finished.append(error))
    started = time.monotonic()
    if wait_until(lambda: finished or window.index_status.bar.value() > 0, 120) and not finished:
        settle(1.5)
        save(window, args.out / "indexing.png")
    wait_until(lambda: finished, 900)
    error = finished[0] if finished else "did not finish"
    print(f"indexed in {time.monotonic() - started:.1f} s" + (f" ({error})" if error else ""))

    wait_until(lambda: not window.showing_search and window.grid.count() > 0, 30)
    wait_until(lambda: thumbnails_ready(window), 60)
    settle()
    save(window, args.out / "timeline.png")

    search(window, args.query)
    save(window, args.out / "search_good_matches.png")
    window.grid.verticalScrollBar().setValue(
        window.grid.layout_.row_y[
            window.grid.layout_.item_row[min(window.presentation.good, window.grid.count() - 1)]
        ]
        - 300
    )
    wait_until(lambda: thumbnails_ready(window), 30)
    settle()
    save(window, args.out / "search_divider.png")

    search(window, "qwertyuiop zxcv")
    save(window, args.out / "no_good_matches.png")

    search(window, "children playing in the snow")
    window.search_bar.set_sort("newest")
    wait_until(lambda: thumbnails_ready(window), 30)
    settle()
    save(window, args.out / "search_newest_first.png")
    window.search_bar.set_sort("relevance")

    window.search_bar.clear()
    window.search_bar.set_date_preset("last-year")
    wait_until(lambda: not window.showing_search and thumbnails_ready(window), 30)
    settle()
    save(window, args.out / "timeline_last_year.png")
    window.search_bar.set_date_preset("any")
    settle()

    search(window, "a dog in the water")
    grid = window.grid
    for item in (0, 2, 3):
        QTest.mouseClick(
            grid.viewport(),
            Qt.MouseButton.LeftButton,
            Qt.KeyboardModifier.ControlModifier,
            grid.item_rect(item).center(),
        )
    QTest.mouseMove(grid.viewport(), grid.item_rect(5).center())
    settle()
    save(window, args.out / "multi_select.png")
    QTest.mouseClick(
        grid.viewport(),
        Qt.MouseButton.RightButton,
        Qt.KeyboardModifier.NoModifier,
        grid.item_rect(2).center(),
    )
    settle(0.6)
    save_screen(args.out / "multi_select_menu.png")
    window.context_menu.close()

    viewer = window.open_viewer(1)
    assert viewer is not None
    settle(0.8)
    save(viewer, args.out / "viewer.png")
    QTest.keyClick(QGuiApplication.focusObject() or viewer, Qt.Key.Key_I)
    QTest.keyClick(QGuiApplication.focusObject() or viewer, Qt.Key.Key_Right)
    settle(0.5)
    save(viewer, args.out / "viewer_no_info.png")
    viewer.close()

    settings_dialog = window.open_settings()
    settle()
    save(settings_dialog, args.out / "settings.png")
    settings_dialog.reject()

    first_run = FirstRunDialog([Path.home() / "Pictures"])
    first_run.show()
    settle()
    save(first_run, args.out / "first_run.png")
    first_run.close()

    window.close()
    window.controller.shutdown()
    app.processEvents()
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
