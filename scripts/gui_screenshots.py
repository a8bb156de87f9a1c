"""Start the real app on a real library and save screenshots (main window, viewer, first run).

    .venv/bin/python scripts/gui_screenshots.py OUT_DIR [--images DIR] [--query TEXT]

Uses the default model when its bundle is installed, else the tiny test model. Runs headless
(QT_QPA_PLATFORM=offscreen) unless a display is available; windows are captured with grab().
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QEventLoop, QSettings, QTimer  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402
from PySide6.QtWidgets import QWidget  # noqa: E402

from photosearch.gui.app import make_application, open_window  # noqa: E402
from photosearch.gui.first_run import FirstRunDialog  # noqa: E402
from photosearch.library import Library  # noqa: E402
from photosearch.models.providers import ModelRegistry  # noqa: E402

FLICKR = Path("/work/shared/data/flickr8k-1k/images")


def make_library(directory: Path, model: str | None) -> Library:
    registry = ModelRegistry(Path(os.environ.get("PHOTOSEARCH_MODELS", "")) if
                             os.environ.get("PHOTOSEARCH_MODELS") else
                             Path.home() / ".local/share/photosearch/models")
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


def wait_until(condition, timeout_s: float) -> bool:  # noqa: ANN001
    deadline = time.monotonic() + timeout_s
    loop = QEventLoop()
    while time.monotonic() < deadline:
        if condition():
            return True
        QTimer.singleShot(50, loop.quit)
        loop.exec()
    return condition()


def save(widget: QWidget, path: Path) -> None:
    widget.grab().save(str(path))
    print(f"saved {path}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--images", type=Path, default=FLICKR)
    parser.add_argument("--query", default="a dog running on the grass")
    parser.add_argument("--library", type=Path, help="library directory (default: temporary)")
    parser.add_argument("--model")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="photosearch-shots-"))
    app = make_application([sys.argv[0]])
    library = make_library(args.library or work / "library", args.model)
    if not library.folders():
        library.add_folder(args.images)
    settings = QSettings(str(work / "gui.ini"), QSettings.Format.IniFormat)
    window = open_window(library, settings, first_run=False)
    window.resize(1280, 820)
    window.show()
    finished = []
    window.controller.indexFinished.connect(lambda report, error: finished.append(error))
    started = time.monotonic()
    if wait_until(lambda: finished or window.index_status.bar.value() > 0, 120) and not finished:
        wait_until(lambda: False, 2)
        save(window, args.out / "indexing.png")
    wait_until(lambda: finished, 900)
    error = finished[0] if finished else "did not finish"
    print(f"indexed in {time.monotonic() - started:.1f} s" + (f" ({error})" if error else ""))
    window.search_bar.field.setFocus()
    QTest.keyClicks(window.search_bar.field, args.query)
    wait_until(lambda: window.model.rowCount() > 0, 30)
    rows = min(window.model.rowCount(), 40)
    wait_until(lambda: all(window.thumbnails.pixmap(window.model.result(r).path) is not None
                           or window.model.result(r).path in window.thumbnails.failed
                           for r in range(rows)), 60)
    QTest.mouseMove(window.grid.viewport(), window.grid.visualRect(
        window.model.index(0)).center())
    save(window, args.out / "main.png")

    viewer = window.open_viewer(0)
    assert viewer is not None
    wait_until(lambda: False, 0.3)
    save(viewer, args.out / "viewer.png")
    viewer.close()

    settings_dialog = window.open_settings()
    wait_until(lambda: False, 0.2)
    save(settings_dialog, args.out / "settings.png")
    settings_dialog.reject()

    first_run = FirstRunDialog([Path.home() / "Pictures"])
    first_run.show()
    wait_until(lambda: False, 0.2)
    save(first_run, args.out / "first_run.png")
    first_run.close()

    window.close()
    window.controller.shutdown()
    app.processEvents()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
