"""WatcherWorker over the real WatchService: a new photo in a watched folder reaches the GUI."""

from __future__ import annotations

import pytest

from tests.conftest import make_photo

watch_service = pytest.importorskip("photosearch.library.watch_service")

from photosearch.gui.watcher import WatcherWorker  # noqa: E402


def test_a_new_photo_is_reported_to_the_gui_thread(app, qtbot, library, photo_dir):
    library.add_folder(photo_dir)
    worker = WatcherWorker(
        library,
        factory=lambda lib, cb: watch_service.WatchService(
            lib, on_status=cb, settle_s=0.1, quiet_s=0.1, max_delay_s=0.5
        ),
    )
    states = []
    worker.statusChanged.connect(lambda status: states.append(status.state))
    worker.start()
    try:
        qtbot.waitUntil(lambda: "watching" in states, timeout=20_000)
        with qtbot.waitSignal(worker.photosChanged, timeout=20_000):
            make_photo(photo_dir / "new" / "black.jpg", "black")
    finally:
        worker.stop()
    assert library.status().indexed == 6
