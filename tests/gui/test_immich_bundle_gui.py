"""The desktop app indexes and searches with an Immich bundle whose batch is fixed at 1."""

from __future__ import annotations

from pathlib import Path

from photosearch.gui.controller import LibraryController
from photosearch.gui.main_window import MainWindow
from photosearch.library.facade import Library
from tests.gui.conftest import start_and_index
from tests.gui.test_main_window import type_query, wait_results
from tests.support.immich_bundle import build_immich_bundle


def test_app_indexes_and_searches_with_a_batch_one_bundle(
    app, qtbot, settings, many_photos, tmp_path: Path
):
    models = tmp_path / "models"
    build_immich_bundle(models / "ViT-B-32__openai", "clip")
    library = Library(tmp_path / "library", models_dir=models, model="ViT-B-32__openai", threads=1)
    controller = LibraryController(library)
    window = MainWindow(controller, settings)
    controller.setParent(window)
    qtbot.addWidget(window)
    window.show()
    try:
        start_and_index(window, qtbot, many_photos)  # 24 photos: batches the graph refuses
        type_query(window, qtbot, "a blue car")
        results = wait_results(window, qtbot)
        assert [Path(r.path).name[:4] for r in results[:4]] == ["blue"] * 4
    finally:
        window.close()
        controller.shutdown()
