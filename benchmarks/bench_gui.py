"""GUI figures: app start to first paint, keystroke to grid painted (p50/p95), RSS, the
longest event-loop stall while indexing, and the longest stall while scrolling a 100,000-photo
timeline from top to bottom with no thumbnail cached.

    .venv/bin/python benchmarks/bench_gui.py [--images DIR] [--queries N] [--library DIR]
                                             [--timeline N]

Indexes the 1k Flickr8k photos with the default model into a fresh library (or reuses
--library), in the GUI process, so the RSS figure is what a user's app holds afterwards.
A stall is the longest gap between the ticks of a 10 ms timer; the same timer on an idle
event loop gives the same-run baseline.
"""

from __future__ import annotations

import time

PROCESS_START = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from datetime import datetime  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
if not os.environ.get("DISPLAY"):
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QEventLoop, QSettings, QSize, QTimer  # noqa: E402
from PySide6.QtTest import QTest  # noqa: E402

from photosearch.gui.app import make_application, open_window  # noqa: E402
from photosearch.gui.date_groups import date_headers  # noqa: E402
from photosearch.gui.photo_grid import PhotoGrid  # noqa: E402
from photosearch.gui.thumbnails import ThumbnailCache, ThumbnailLoader  # noqa: E402
from photosearch.library.facade import Library, default_models_dir  # noqa: E402
from photosearch.models.providers import ModelRegistry  # noqa: E402
from photosearch.search.query import SearchResult  # noqa: E402

FLICKR = Path("/work/shared/data/flickr8k-1k")
THUMBNAIL_SIZE = QSize(256, 256)


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def spin(condition, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    loop = QEventLoop()
    while not condition() and time.monotonic() < deadline:
        QTimer.singleShot(5, loop.quit)
        loop.exec()
    return bool(condition())


class GapRecorder:
    """The gaps between the ticks of a 10 ms timer: the event loop's stalls."""

    def __init__(self) -> None:
        self.gaps: list[float] = []
        self.last = time.perf_counter()
        self.timer = QTimer(interval=10)
        self.timer.timeout.connect(self._tick)

    def _tick(self) -> None:
        now = time.perf_counter()
        self.gaps.append(now - self.last)
        self.last = now

    def start(self) -> GapRecorder:
        self.last = time.perf_counter()
        self.timer.start()
        return self

    def stop(self) -> float:
        self.timer.stop()
        return max(self.gaps, default=0.0)


def idle_stall(seconds: float = 2.0) -> float:
    recorder = GapRecorder().start()
    spin(lambda: False, seconds)
    return recorder.stop()


def timeline_scroll(images: Path, count: int) -> None:
    """A ``count``-photo timeline (symlinks to ``images``, so no thumbnail is cached) scrolled
    top to bottom two screens per 10 ms tick, as a fast drag of the scroll bar would."""
    sources = sorted(p for p in images.iterdir() if p.suffix.lower() in {".jpg", ".jpeg"})
    scratch = Path(tempfile.mkdtemp(prefix="bench-timeline-"))
    links = scratch / "photos"
    links.mkdir()
    results = []
    now = time.time()
    for i in range(count):
        link = links / f"{i:06d}.jpg"
        link.symlink_to(sources[i % len(sources)])
        results.append(
            SearchResult(
                i, str(link), 0.0, 500, 375, file_time=datetime.fromtimestamp(now - i * 3600)
            )
        )
    loader = ThumbnailLoader(ThumbnailCache(scratch / "thumbnails"), THUMBNAIL_SIZE)
    grid = PhotoGrid(loader)
    grid.resize(1200, 800)
    grid.show()
    spin(lambda: False, 0.3)
    started = time.perf_counter()
    grid.set_content(results, date_headers(results))
    grid.viewport().repaint()
    shown = time.perf_counter() - started
    recorder = GapRecorder().start()
    bar = grid.verticalScrollBar()
    step = 2 * grid.viewport().height()
    started = time.perf_counter()
    while bar.value() < bar.maximum():
        bar.setValue(min(bar.maximum(), bar.value() + step))
        spin(lambda: False, 0.01)
    took = time.perf_counter() - started
    spin(lambda: False, 0.5)
    stall = recorder.stop()
    print(
        f"timeline of {count:,} photos: laid out and painted in {shown * 1000:.0f} ms; "
        f"scrolled top to bottom ({bar.maximum():,} px) in {took:.1f} s; longest "
        f"event-loop stall {stall * 1000:.0f} ms; {loader.requested:,} thumbnails asked for"
    )
    loader.forget_pending()
    loader.wait(10_000)
    grid.close()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=Path, default=FLICKR / "images")
    parser.add_argument("--queries", type=int, default=30)
    parser.add_argument("--library", type=Path)
    parser.add_argument(
        "--timeline", type=int, default=100_000, help="photos in the scrolled timeline (0: skip)"
    )
    parser.add_argument(
        "--timeline-only", action="store_true", help="only the timeline scroll (no model needed)"
    )
    args = parser.parse_args()
    if args.timeline_only:
        app = make_application([sys.argv[0]])
        print(f"idle event loop: longest stall {idle_stall() * 1000:.0f} ms (baseline)")
        timeline_scroll(args.images, args.timeline)
        print(f"RSS after the timeline: {rss_mb():.0f} MB")
        return 0
    registry = ModelRegistry(default_models_dir())
    try:
        model = registry.default_model_name()
    except Exception as exc:
        print(f"no default model ({exc}); build it with `photosearch models build`")
        return 1
    if registry.path_of(model) is None:
        print(
            f"skipped: the default model {model!r} is not built "
            "(`photosearch models build`); every figure here needs it"
        )
        return 1
    directory = args.library or Path(tempfile.mkdtemp(prefix="bench-gui-")) / "library"

    app = make_application([sys.argv[0]])  # noqa: F841 - must outlive the window
    library = Library(directory, registry=registry, model=model)
    if not library.folders():
        library.add_folder(args.images)
    settings = QSettings(str(directory.parent / "gui.ini"), QSettings.Format.IniFormat)
    window = open_window(library, settings, first_run=False)
    window.resize(1280, 820)
    window.show()
    window.repaint()  # the first paint, done synchronously once the window is shown
    first_paint_s = time.perf_counter() - PROCESS_START
    print(
        f"process start to first paint: {first_paint_s * 1000:.0f} ms "
        "(imports + QApplication + library open + window)"
    )

    done: list[str] = []
    window.controller.indexFinished.connect(lambda report, error: done.append(error))
    started = time.monotonic()
    recorder = GapRecorder().start()
    spin(lambda: bool(done), 1800)
    stall = recorder.stop()
    print(
        f"indexing {args.images} ({model}): {time.monotonic() - started:.1f} s {done}; "
        f"longest event-loop stall while indexing {stall * 1000:.0f} ms "
        f"(idle baseline {idle_stall() * 1000:.0f} ms)"
    )
    print(f"RSS after indexing: {rss_mb():.0f} MB")

    captions = [
        json.loads(line)["captions"][0].strip(" .")
        for line in (FLICKR / "captions.jsonl").read_text().splitlines()[: args.queries]
    ]
    window.search_bar.field.setFocus()
    typed_to_filled: list[float] = []
    search_only: list[float] = []
    filled = []
    window.grid.layoutChanged.connect(lambda: filled.append(time.perf_counter()))
    for caption in captions:
        window.search_bar.clear()
        spin(lambda: False, 0.35)
        filled.clear()
        QTest.keyClicks(window.search_bar.field, caption)
        last_key = time.perf_counter()
        if not spin(lambda: bool(filled) and window.showing_search and window.grid.count() > 0, 10):
            continue
        window.grid.viewport().repaint()
        end = time.perf_counter()
        typed_to_filled.append(end - last_key)
        search_only.append(window._search_seconds)
    if typed_to_filled:
        print(
            f"last keystroke -> grid filled and painted, {len(typed_to_filled)} queries: "
            f"p50 {percentile(typed_to_filled, 0.5) * 1000:.0f} ms, "
            f"p95 {percentile(typed_to_filled, 0.95) * 1000:.0f} ms "
            f"(includes the {window.search_bar.debounce.interval()} ms debounce)"
        )
        print(
            f"  of which the search itself (encode + top-k + catalog): "
            f"p50 {statistics.median(search_only) * 1000:.0f} ms, "
            f"p95 {percentile(search_only, 0.95) * 1000:.0f} ms"
        )
    print(f"RSS after searching: {rss_mb():.0f} MB")
    window.close()
    window.controller.shutdown()
    if args.timeline:
        timeline_scroll(args.images, args.timeline)
        print(f"RSS after the timeline: {rss_mb():.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
