"""The model manager and the first-run offer, against the stand-in hub (real HTTP, real files)."""

from __future__ import annotations

from pathlib import Path

import pytest

from photosearch.gui.first_run import FirstRunDialog
from photosearch.gui.model_manager import ModelManager
from photosearch.gui.settings_dialog import AppSettings, SettingsDialog
from photosearch.models.catalogue import suggested_entry
from photosearch.models.providers import ModelRegistry
from tests.support.fake_hub import FakeHub, immich_style_bundle
from tests.support.tiny_bundle import TinyProvider

NAME = "ViT-B-32__openai"
BALLAST = 1_000_000


@pytest.fixture(scope="module")
def hosted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return immich_style_bundle(tmp_path_factory.mktemp("hosted") / "b", ballast_bytes=BALLAST)


@pytest.fixture
def hub(hosted: Path):
    with FakeHub() as fake:
        fake.add_bundle(f"immich-app/{NAME}", hosted)
        fake.add_bundle(suggested_entry().repository, hosted)
        yield fake


@pytest.fixture
def registry_with_tiny(tmp_path: Path) -> ModelRegistry:
    return ModelRegistry(tmp_path / "models", providers={"tiny": TinyProvider(("tiny",))})


def _manager(qtbot, registry: ModelRegistry, hub: FakeHub) -> ModelManager:
    manager = ModelManager(registry, "tiny", endpoint=hub.endpoint)
    qtbot.addWidget(manager)
    manager.show()
    return manager


def _status(manager: ModelManager, name: str) -> str:
    for index, row in enumerate(manager.rows):
        if row.name == name:
            return manager.table.item(index, 4).text()
    raise AssertionError(f"{name} not listed")


def test_download_cancel_resume_use_and_remove(
    qtbot, app, hub: FakeHub, registry_with_tiny: ModelRegistry
):
    manager = _manager(qtbot, registry_with_tiny, hub)
    assert _status(manager, NAME) == "not installed"
    hub.faults.stall["visual/ballast"] = 600_000
    manager.select(NAME)
    assert manager.download_button.isEnabled()
    seen: list[int] = []
    manager.downloads.progress.connect(lambda name, done, total, rate: seen.append(done))
    manager.download_button.click()
    qtbot.waitUntil(lambda: bool(seen) and seen[-1] >= 524_288, timeout=30_000)
    with qtbot.waitSignal(manager.downloads.cancelled, timeout=30_000):
        manager.cancel_button.click()
        hub.release_stalls()  # the stalled transfer ends; the worker sees the cancel
    assert _status(manager, NAME).startswith("paused")
    assert registry_with_tiny.path_of(NAME) is None

    hub.faults.stall.clear()
    manager.select(NAME)
    with qtbot.waitSignal(manager.downloads.finished, timeout=30_000):
        manager.download_button.click()
    ballast = hub.file(f"immich-app/{NAME}", "visual/ballast").sha256
    assert hub.requests_for(ballast)[-1].range == "bytes=524288-"  # resumed, not restarted
    assert _status(manager, NAME) == "installed"
    assert (registry_with_tiny.path_of(NAME) / "manifest.json").is_file()

    manager.select(NAME)
    with qtbot.waitSignal(manager.useRequested) as chosen:
        manager.use_button.click()
    assert chosen.args == [NAME]
    assert _status(manager, NAME) == "in use"
    assert not manager.remove_button.isEnabled()  # the library's model is never removed

    manager.active_model = "tiny"
    manager.refresh()
    manager.select(NAME)
    manager.remove_selected(confirm=False)
    assert registry_with_tiny.path_of(NAME) is None
    assert _status(manager, NAME) == "not installed"


def test_a_failed_download_says_why(qtbot, app, hub: FakeHub, registry_with_tiny):
    hub.faults.corrupt.add("visual/ballast")
    manager = _manager(qtbot, registry_with_tiny, hub)
    manager.select(NAME)
    with qtbot.waitSignal(manager.downloads.failed, timeout=30_000) as failed:
        manager.download_button.click()
    assert "does not match the hub's hash" in failed.args[1]
    assert "not installed" in manager.status.text()
    assert registry_with_tiny.path_of(NAME) is None


def test_settings_lists_a_model_picked_in_the_manager(
    qtbot, app, hub: FakeHub, registry_with_tiny: ModelRegistry
):
    settings = SettingsDialog(AppSettings("tiny", (), 500, 100), registry_with_tiny)
    qtbot.addWidget(settings)
    dialog = settings.open_model_manager(endpoint=hub.endpoint)
    manager = dialog.manager
    manager.select(NAME)
    with qtbot.waitSignal(manager.downloads.finished, timeout=30_000):
        manager.download_button.click()
    manager.select(NAME)
    manager.use_button.click()
    dialog.reject()
    assert settings.chosen().model == NAME


def test_first_run_offer_asks_the_hub_only_when_ticked(qtbot, app, hub: FakeHub):
    dialog = FirstRunDialog([], endpoint=hub.endpoint)
    qtbot.addWidget(dialog)
    assert dialog.offer is not None and not dialog.offer.isChecked()
    assert hub.log == []  # showing the screen made no request
    assert dialog.wanted_model() is None
    dialog.offer.setChecked(True)
    qtbot.waitUntil(lambda: dialog.offered_size is not None, timeout=30_000)
    assert "MB" in dialog.offer.text()
    assert dialog.wanted_model() == suggested_entry().name

    offline = FirstRunDialog([], endpoint="http://127.0.0.1:9")
    qtbot.addWidget(offline)
    offline.offer.setChecked(True)
    qtbot.waitUntil(lambda: not offline.offer.isEnabled(), timeout=30_000)
    assert "cannot be downloaded now" in offline.offer.text()
    assert offline.wanted_model() is None
