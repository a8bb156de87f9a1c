"""Where the desktop app's memory goes (issue 18 item 6): RSS of the GUI process on an indexed
library, step by step, with the default model, under QT_QPA_PLATFORM=offscreen.

Each run is a fresh process that takes the app's own steps one at a time and reads
/proc/self/status after each (RSS, of which anonymous and file-backed), so the growth of each
step is its cost: Python + NumPy, Qt (QApplication), the photosearch imports (SQLAlchemy
measured apart), the library (catalog), the main window shown, the text session, the vector
store (graph and matrix), a search as the app asks it (k=1000), the image session with a batch
encoded and released. At the end the file mappings in /proc/self/smaps are summed by file (Qt's
libraries, ONNX Runtime's, the graph, the float16 matrix), and the app as shipped runs in a
second process (``open_window``: start-up job, index pass, a typed search) for the figure a user
sees. With --baseline-code, the same two runs use that tree's code first, side by side.

    QT_QPA_PLATFORM=offscreen nice -n 10 .venv/bin/python benchmarks/bench_app_memory.py \\
        --library /path/to/indexed/library [--baseline-code /tmp/base] \\
        [--models-dir DIR] [--baseline-models-dir DIR] [--rounds 2]

``--models-dir`` compares a model build (e.g. the default bundle built by this tree into a
folder of its own) with the baseline's models; ``--rounds`` alternates baseline and this tree.
Beside RSS it prints warm search latency (k=1000, the query encoded each time) and, for the
app as shipped, how long its first search took to answer and how much of that the search was.

An indexed 100k library is what benchmarks/bench_scale.py builds (kept under its --cache).
Figures on 2026-11-29 (100k synthetic library, default model, load average 9-10 on 2 cores;
baseline = main at fb240cf): the app as shipped, idle after a search, 658 MB -> 321 MB (338
before the timeline columns); the steps alone end at 289 MB idle (Qt + window ~77, imports
~60, timeline of 100k ~32, text session ~150 before the trim, store ~0 with the graph left on
disk; the matrix's 73 MB and the image session's ~45 MB are given back when idle).
Then the default bundle's text tower in int8 (photosearch_conse.quantize; baseline = main at
64752fc with the float32 build; two runs of 2 alternated rounds, load average 7-9 then 3.7-5):
the app idle after a search 325/314/318/311 -> 252/253/259/256 MB, its peak 428/451/457/455 ->
362/368/368/361 MB; the steps' idle 285/286/285/285 -> 222/221/223/221 MB (text session + a
query 155-160 -> 71-77 MB); warm search median 1229/136/158/127 -> 424/133/106/119 ms. The
app's first typed search was answered 5-13 s after it was typed: it waited on the one read
thread behind the timeline's reload after the start-up index pass (search/timeline.py
photos_by_date at 100k). With searches on a thread of their own (and the idle release waiting
for reads), final run, load average 1.7-2.9: idle after a search 313/312 -> 271/281 MB, peak
450/454 -> 368/376 MB, steps' idle 285/285 -> 221/221 MB, warm search median 96/52 -> 102/57
ms, first search answered in 4709/5161 -> 241/292 ms (the search itself 130/280 -> 223/268
ms, now beside the timeline's reload). The search thread's own malloc arena costs ~10 MB
idle; MALLOC_ARENA_MAX=1 gave 270/267 instead of 280/285 MB (not adopted: its cost to
indexing's threads is unmeasured).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QUERY = "a dog running on the grass"
SEARCHES = [
    "children playing in the snow",
    "a man riding a bicycle",
    "two dogs on a beach",
    "a red car in the street",
    "people sitting at a table",
    "a boy jumping into a lake",
    "a black and white dog",
    "a woman with an umbrella",
    "mountains under a blue sky",
    "a crowd watching a game",
    "a cat asleep on a sofa",
]


def status_mb() -> dict[str, float]:
    """VmRSS, RssAnon, RssFile and VmHWM of this process in MB."""
    wanted = {"VmRSS", "RssAnon", "RssFile", "VmHWM"}
    figures = {}
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in wanted:
                figures[key] = int(value.split()[0]) / 1024
    return figures


def mapped_files_mb() -> dict[str, float]:
    """Resident MB of this process's file mappings, grouped: Qt, ONNX Runtime, the graph, the
    float16 matrix, Python's own, other libraries."""
    groups: dict[str, float] = defaultdict(float)
    name = ""
    with open("/proc/self/smaps", encoding="utf-8", errors="replace") as smaps:
        for line in smaps:
            first = line.split(maxsplit=1)[0]
            if "-" in first and not first.endswith(":"):
                parts = line.split(maxsplit=5)
                name = parts[5].strip() if len(parts) > 5 else ""
            elif first == "Rss:" and name.startswith("/"):
                groups[_group(name)] += int(line.split()[1]) / 1024
    return dict(groups)


def _group(path: str) -> str:
    base = os.path.basename(path).lower()
    if "qt" in base or "pyside" in base or "shiboken" in base or "icu" in base:
        return "Qt (libraries)"
    if "onnxruntime" in base:
        return "ONNX Runtime (library)"
    if base.endswith(".hnsw"):
        return "graph file (mapped)"
    if base.endswith(".f16.npy") or base.endswith(".ids.npy"):
        return "float16 matrix (mapped)"
    if "python" in base or base.endswith(".so") and "cpython" in base:
        return "Python + extension modules"
    return "other files"


def spin(condition, timeout_s: float) -> bool:
    from PySide6.QtCore import QCoreApplication

    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:
        QCoreApplication.processEvents()
        time.sleep(0.01)
    return bool(condition())


def child_steps(library_dir: Path) -> dict:
    """The app's costs one at a time (each step's RSS after it)."""
    steps: list[tuple[str, dict]] = []

    def mark(label: str) -> None:
        steps.append((label, status_mb()))

    import numpy as np

    mark("Python + NumPy")
    import sqlalchemy  # noqa: F401 - measured apart from the rest of photosearch

    mark("SQLAlchemy imported")
    from photosearch.library.facade import Library
    from photosearch.search.query import SearchQuery

    mark("photosearch core imported (library, search)")
    from PySide6 import QtGui, QtWidgets  # noqa: F401

    mark("PySide6 imported (QtCore, QtGui, QtWidgets)")
    from PySide6.QtCore import QSettings

    from photosearch.gui.app import make_application
    from photosearch.gui.controller import LibraryController
    from photosearch.gui.main_window import MainWindow

    mark("photosearch.gui imported")
    make_application()
    mark("QApplication")
    library = Library(library_dir)
    mark("library open (catalog)")
    controller = LibraryController(library)
    settings = QSettings(str(library_dir.parent / "bench-gui.ini"), QSettings.Format.IniFormat)
    window = MainWindow(controller, settings)
    window.show()
    spin(lambda: False, 0.3)
    mark("main window shown")
    controller.foldersChanged.emit(library.folders())  # as the start-up job reports them
    spin(lambda: window.grid.count() > 0, 120)
    mark(f"timeline shown ({window.grid.count():,} photos)")
    encoder = library.encoder
    encoder.warm_up(images=False)
    encoder.encode_texts([QUERY])
    mark("text session (+ a query encoded)")
    store = library.store
    mark(f"vector store open ({len(store):,} photos)")
    library.search(SearchQuery(text=QUERY, k=1000))
    library.search(SearchQuery(text="people on a beach", k=1000))
    mark("two searches, k=1000")
    search_ms = []
    for text in SEARCHES:  # warm: the query's encoding and the search, as a user types
        started = time.perf_counter()
        library.search(SearchQuery(text=text, k=1000))
        search_ms.append((time.perf_counter() - started) * 1000)
    size = encoder.config.preprocessing.size
    encoder.encode_images(np.zeros((8, 3, size, size), np.float32))
    encoder.release_memory()
    mark("image session (8 photos encoded, arena released)")
    files = mapped_files_mb()
    if hasattr(library.models, "release_idle_memory"):
        library.models.release_idle_memory()
        mark("idle: ModelSets.release_idle_memory()")
    figures = {"steps": steps, "files": files, "search_ms": search_ms}
    figures["graph_loaded"] = getattr(store, "graph_loaded", True)
    window.close()
    controller.shutdown()
    return figures


def child_app(library_dir: Path) -> dict:
    """The app as shipped: open_window's start-up job and index pass, then a typed search, then
    idle (the idle release is brought forward to 3 s after the search, from 20)."""
    from PySide6.QtCore import QSettings

    from photosearch.gui import controller as controller_module
    from photosearch.gui.app import make_application, open_window
    from photosearch.library.facade import Library

    idle_ms = 3000
    if hasattr(controller_module, "IDLE_RELEASE_MS"):
        controller_module.IDLE_RELEASE_MS = idle_ms
    make_application()
    started = time.perf_counter()
    library = Library(library_dir)
    settings = QSettings(str(library_dir.parent / "bench-app.ini"), QSettings.Format.IniFormat)
    window = open_window(library, settings, first_run=False, watch=False)
    window.show()
    shown_s = time.perf_counter() - started
    controller = window.controller
    spin(lambda: window._loaded and not controller.indexing, 300)
    ready_s = time.perf_counter() - started
    after_start = status_mb()
    answered: list = []
    controller.searchFinished.connect(
        lambda seq, results, seconds: answered.append((seq, results, seconds))
    )
    started = time.perf_counter()
    sequence = controller.search(_query(QUERY))
    spin(lambda: any(seq == sequence for seq, *_ in answered), 120)
    first_search_s = time.perf_counter() - started
    after_search = status_mb()
    spin(lambda: False, idle_ms / 1000 + 8.0)  # idle, as a user reading the results
    figures = {
        "shown_s": shown_s,
        "ready_s": ready_s,
        "after_start": after_start,
        "after_search": after_search,
        "idle": status_mb(),
        "results": len(answered[-1][1]) if answered else 0,
        "first_search_s": first_search_s,
        "search_own_s": answered[-1][2] if answered else float("nan"),
        "image_session_loaded": library.encoder._visual is not None,
        "files": mapped_files_mb(),
    }
    window.close()
    controller.shutdown()
    return figures


def _query(text: str):
    from photosearch.search.query import SearchQuery

    return SearchQuery(text=text, k=1000)


def run_child(code: Path, kind: str, library: Path, models: Path | None) -> dict:
    env = dict(
        os.environ,
        PYTHONPATH=f"{code}{os.pathsep}{code / 'plugins'}",
        QT_QPA_PLATFORM=os.environ.get("QT_QPA_PLATFORM", "offscreen"),
    )
    if models is not None:
        env["PHOTOSEARCH_MODELS"] = str(models)
    done = subprocess.run(
        [sys.executable, __file__, "--child", kind, str(library)],
        env=env,
        cwd=code,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"{kind} with the code in {code} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def print_steps(label: str, figures: dict) -> None:
    print(f"\n{label}: step by step (MB; growth = the step's cost)")
    print(f"  {'step':<52}{'RSS':>8}{'growth':>8}{'anon':>8}{'file':>8}")
    previous = 0.0
    for step, values in figures["steps"]:
        rss = values["VmRSS"]
        print(
            f"  {step:<52}{rss:8.0f}{rss - previous:8.0f}{values['RssAnon']:8.0f}"
            f"{values['RssFile']:8.0f}"
        )
        previous = rss
    print("  file mappings at the end (resident MB): " + _files(figures["files"]))
    if "search_ms" in figures:
        times = sorted(figures["search_ms"])
        print(
            f"  warm searches (k=1000, query encoded each time), ms: median "
            f"{times[len(times) // 2]:.1f}, best {times[0]:.1f}, worst {times[-1]:.1f}"
        )
    print(f"  graph loaded into memory: {figures['graph_loaded']}")


def _files(files: dict) -> str:
    return ", ".join(f"{name} {mb:.0f}" for name, mb in sorted(files.items(), key=lambda x: -x[1]))


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        kind, library = sys.argv[2], Path(sys.argv[3])
        result = child_steps(library) if kind == "steps" else child_app(library)
        print(json.dumps(result))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--library", type=Path, required=True, help="an indexed library")
    parser.add_argument("--baseline-code", type=Path, help="a tree with the code to compare")
    parser.add_argument("--skip-steps", action="store_true", help="only the app as shipped")
    parser.add_argument("--models-dir", type=Path, help="this tree's models (default: the app's)")
    parser.add_argument("--baseline-models-dir", type=Path, help="the baseline's models")
    parser.add_argument("--rounds", type=int, default=1, help="baseline and this tree, alternated")
    args = parser.parse_args()
    print(f"library {args.library}; load average {os.getloadavg()[0]:.2f} (cpus: {os.cpu_count()})")
    trees = [("this tree", ROOT, args.models_dir)]
    if args.baseline_code:
        trees.insert(0, ("baseline", args.baseline_code.resolve(), args.baseline_models_dir))
    for round_number in range(args.rounds):
        for label, code, models in trees:
            label = f"{label} (round {round_number + 1})" if args.rounds > 1 else label
            run_tree(label, code, models, args)
    print(f"\nload average at the end {os.getloadavg()[0]:.2f}")


def run_tree(label: str, code: Path, models: Path | None, args: argparse.Namespace) -> None:
    """The step-by-step child (unless --skip-steps) and the app as shipped, with one tree."""
    print(
        f"\n{label}: code {code}, models {models or 'the default folder'}; load average "
        f"{os.getloadavg()[0]:.2f}"
    )
    if not args.skip_steps:
        print_steps(label, run_child(code, "steps", args.library, models))
    app = run_child(code, "app", args.library, models)
    print(
        f"\n{label}: the app as shipped: window shown {app['shown_s']:.2f} s after the "
        f"library open began, ready + index pass done {app['ready_s']:.2f} s; RSS "
        f"{app['after_start']['VmRSS']:.0f} MB after start, "
        f"{app['after_search']['VmRSS']:.0f} MB after a search ({app['results']} results), "
        f"{app['idle']['VmRSS']:.0f} MB idle after it (anon {app['idle']['RssAnon']:.0f}, "
        f"file {app['idle']['RssFile']:.0f}), peak {app['idle']['VmHWM']:.0f} MB; image "
        f"session loaded: {app['image_session_loaded']}; first search answered in "
        f"{app.get('first_search_s', float('nan')) * 1000:.0f} ms (the search itself "
        f"{app.get('search_own_s', float('nan')) * 1000:.0f} ms)"
    )
    print("  file mappings (resident MB): " + _files(app["files"]))


if __name__ == "__main__":
    main()
