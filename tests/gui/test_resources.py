"""The Linux desktop entry, AppStream metainfo and icon that packages install."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

RESOURCES = Path(__file__).resolve().parents[2] / "resources"
DESKTOP = RESOURCES / "photosearch.desktop"
METAINFO = RESOURCES / "io.github.photosearch.metainfo.xml"


def test_desktop_entry_launches_photosearch_with_its_icon():
    entry = configparser.ConfigParser(interpolation=None)
    entry.optionxform = str  # keys are case-sensitive
    entry.read(DESKTOP)
    desktop = entry["Desktop Entry"]
    assert desktop["Exec"] == "photosearch" and desktop["Type"] == "Application"
    assert (RESOURCES / "icons" / f"{desktop['Icon']}.svg").is_file()


def test_metainfo_names_the_desktop_entry_and_icon():
    root = ET.parse(METAINFO).getroot()
    assert root.findtext("launchable") == DESKTOP.name
    assert root.findtext("icon") == "photosearch"
    assert root.find("releases/release").get("version")


@pytest.mark.parametrize(
    "tool, args, path",
    [
        ("desktop-file-validate", [], DESKTOP),
        ("appstreamcli", ["validate", "--no-net", "--pedantic"], METAINFO),
    ],
)
def test_validators_accept_the_files(tool, args, path):
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed (apt: desktop-file-utils, appstream)")
    done = subprocess.run([tool, *args, str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
