"""Settings: reading the text in photos is on by default and can be turned off for the library."""

from __future__ import annotations

import pytest

from photosearch.indexing.text_reading import READ_TEXT_KEY, reading_enabled


def test_the_text_in_photos_setting_turns_reading_off_and_on(
    window, qtbot, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.delenv("PHOTOSEARCH_READ_TEXT")  # conftest turns reading off for other tests
    catalog = window.controller.library.catalog
    dialog = window.open_settings()
    assert dialog.read_text.isChecked()  # on by default
    dialog.read_text.setChecked(False)
    dialog.accept()
    assert catalog.get_meta(READ_TEXT_KEY) == "off" and not reading_enabled(catalog)
    dialog = window.open_settings()
    assert not dialog.read_text.isChecked()
    dialog.read_text.setChecked(True)
    dialog.accept()
    assert reading_enabled(catalog)
