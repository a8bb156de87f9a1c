"""Text in photos: extractor discovery through entry points, and the reading stage (resumable,
changed photos read again, bad photos cost one line), with a small third-party extractor
installed the way any plugin is (a dist-info directory on the path). The built-in RapidOCR
plugin reading real text is tested in tests/plugins/test_ocr_plugin.py."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
import tomllib
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest
from sqlalchemy import event, select

from photosearch.catalog.tables import PhotoExtraction
from photosearch.catalog.text_index import TermSource, match_terms, words_of
from photosearch.indexing.extractors import ENTRY_POINT_GROUP, discover_extractors, extractor_key
from photosearch.indexing.text_reading import (
    COMMIT_EVERY,
    read_text_in_photos,
    reading_enabled,
    reading_status,
    set_reading_enabled,
)
from photosearch.search.query import SearchQuery
from tests.conftest import make_photo
from tests.support.plugin_paths import ROOT, subprocess_env
from tests.support.tiny_bundle import build_tiny_bundle

# A third-party extractor: "reads" the name of the photo's colour, as if painted on a sign, and
# notes each photo it reads in $WORDS_LOG (the tests count reads with it).
PLUGIN = """
import os, time
from photosearch.indexing.extractors import ExtractorUnavailable
from tests.support.tiny_bundle import COLOUR_RGB

class ColourSign:
    name = "coloursign"

    def __init__(self):
        self.version = os.environ.get("WORDS_VERSION", "1")

    def read_text(self, image):
        time.sleep(float(os.environ.get("WORDS_SLEEP", "0")))
        rgb = image.resize((1, 1)).getpixel((0, 0))
        colour = min(COLOUR_RGB,
                     key=lambda c: sum((a - b) ** 2 for a, b in zip(COLOUR_RGB[c], rgb)))
        if log := os.environ.get("WORDS_LOG"):
            with open(log, "a") as f:
                f.write(f"{image.size[0]}x{image.size[1]} {colour}\\n")
        return f"{colour} sign"

class NeedsSomething:
    def __init__(self):
        raise ExtractorUnavailable("install the something extra")
"""


@pytest.fixture
def plugin_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A site directory holding the plugin module and its entry points, first on the path."""
    site = tmp_path / "site"
    info = site / "coloursign-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: coloursign\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        f"[{ENTRY_POINT_GROUP}]\ncoloursign = coloursign:ColourSign\n"
        "needs = coloursign:NeedsSomething\nbroken = coloursign_gone:Nothing\n"
    )
    (site / "coloursign.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delenv("PHOTOSEARCH_READ_TEXT")  # conftest turns reading off elsewhere
    monkeypatch.setenv("WORDS_LOG", str(tmp_path / "reads.log"))
    return site


def _reads(tmp_path: Path) -> list[str]:
    log = tmp_path / "reads.log"
    return log.read_text().splitlines() if log.exists() else []


def _coloursign(library):
    return [library.text.extractors().extractors["coloursign"]]


def _read(library, **options):
    """Library.read_text with only the test's extractor (an installed OCR plugin is left out,
    so the counts are this extractor's)."""
    return read_text_in_photos(library.catalog, _coloursign(library), **options)


def test_discovery_through_entry_points(plugin_site: Path):
    found = discover_extractors()
    assert "coloursign" in found.extractors
    extractor = found.extractors["coloursign"]
    assert extractor_key(extractor) == "coloursign@1"
    assert found.unavailable["needs"] == "install the something extra"
    assert found.unavailable["broken"].startswith("failed to load:")


def test_builtin_ocr_plugin_is_registered_like_a_third_party_one():
    """pyproject.toml registers the RapidOCR plugin under the same group; its entry point
    loads, and without its dependencies it says how to install them instead of failing."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    value = project["project"]["entry-points"][ENTRY_POINT_GROUP]["rapidocr"]
    factory = EntryPoint("rapidocr", value, ENTRY_POINT_GROUP).load()
    from photosearch.indexing.extractors import ExtractorUnavailable

    try:
        extractor = factory()
    except ExtractorUnavailable as exc:
        assert "photosearch[ocr]" in str(exc)
    else:
        assert extractor.name == "rapidocr" and extractor.version


def test_reading_resumes_and_reads_changed_photos_again(library, tmp_path: Path, plugin_site: Path):
    folder = tmp_path / "photos"
    for i, colour in enumerate(["red", "green", "blue", "yellow", "white"]):
        make_photo(folder / f"{i}.png", colour)
    library.add_folder(folder)
    library.index()

    stops = iter([False, True])  # stop after the second photo, as Ctrl-C would
    first = _read(library, should_stop=lambda: next(stops))
    assert (first.read, first.stopped, first.remaining) == (2, True, 3)
    assert len(_reads(tmp_path)) == 2
    second = _read(library)
    assert (second.read, second.with_text, second.failed, second.stopped) == (3, 3, 0, False)
    assert len(_reads(tmp_path)) == 5  # only the rest was read
    assert _read(library).read == 0  # a finished photo is never read again

    make_photo(folder / "1.png", "black")  # changed on disk: read again after the rescan
    library.index()
    assert _read(library).read == 1
    assert _reads(tmp_path)[-1].endswith("black")
    with library.catalog.session() as session:
        hits = match_terms(session, "black sign", sources=[TermSource.TEXT_IN_PHOTO])
        photo_id = hits[0].photo_id
        assert words_of(photo_id, TermSource.TEXT_IN_PHOTO, session) == "black sign"
        assert not match_terms(session, "green", sources=[TermSource.TEXT_IN_PHOTO])
    status = library.text.status()
    assert "coloursign@1" in status.extractors
    assert any(line.startswith("needs: install") for line in status.unavailable)
    status = reading_status(library.catalog, _coloursign(library))
    assert (status.read, status.with_text, status.pending) == (5, 5, 0)


def test_a_limited_step_reads_its_batch_and_counts_the_rest_only_when_asked(
    library, tmp_path: Path, plugin_site: Path
):
    """The watch reads a few photos a step: only that batch is read from the catalog, and what
    is left is counted when asked (for a progress line), else reported as not counted."""
    folder = tmp_path / "photos"
    for i, colour in enumerate(["red", "green", "blue", "yellow", "white"]):
        make_photo(folder / f"{i}.png", colour)
    library.add_folder(folder)
    library.index()
    statements: list[str] = []
    event.listen(
        library.catalog.engine,
        "before_cursor_execute",
        lambda _c, _cur, statement, *_a: statements.append(statement),
    )
    first = _read(library, limit=2)
    assert (first.read, first.remaining) == (2, 3)
    batch_reads = [s for s in statements if "ORDER BY photos.id" in s]
    assert batch_reads and all("LIMIT" in s for s in batch_reads)  # not every pending row
    second = _read(library, limit=2, count_left=False)
    assert (second.read, second.remaining) == (2, None)  # more are left, not counted
    last = _read(library, limit=2, count_left=False)
    assert (last.read, last.remaining) == (1, 0)  # nothing beyond the batch: known without a count
    assert len(_reads(tmp_path)) == 5 and _read(library, limit=2).read == 0


def test_a_copy_of_a_photo_already_read_takes_its_text_unread(
    library, tmp_path: Path, plugin_site: Path
):
    import shutil

    folder = tmp_path / "photos"
    make_photo(folder / "a.png", "yellow")
    library.add_folder(folder)
    library.index()
    assert _read(library).read == 1
    shutil.copy(folder / "a.png", folder / "copy.png")
    library.index()
    assert _read(library).with_text == 1
    assert len(_reads(tmp_path)) == 1  # the extractor never saw the copy
    with library.catalog.session() as session:
        hits = match_terms(session, "yellow", sources=[TermSource.TEXT_IN_PHOTO])
    assert len(hits) == 2


def test_a_new_extractor_version_reads_every_photo_again(
    library, tmp_path: Path, plugin_site: Path, monkeypatch: pytest.MonkeyPatch
):
    make_photo(tmp_path / "photos" / "a.png", "red")
    library.add_folder(tmp_path / "photos")
    library.index()
    assert _read(library).read == 1
    monkeypatch.setenv("WORDS_VERSION", "2")
    library.text._found = None  # a newly installed plugin version is found on the next start
    assert _read(library).read == 1
    with library.catalog.session() as session:  # the old version's row is replaced
        assert session.scalars(
            select(PhotoExtraction.extractor).where(PhotoExtraction.extractor.like("coloursign@%"))
        ).all() == ["coloursign@2"]


def test_a_photo_that_cannot_be_read_costs_one_line_and_nothing_else(
    library, tmp_path: Path, plugin_site: Path, caplog: pytest.LogCaptureFixture
):
    folder = tmp_path / "photos"
    good = make_photo(folder / "good.png", "red")
    bad = make_photo(folder / "bad.png", "blue")
    library.add_folder(folder)
    library.index()
    bad.write_bytes(bad.read_bytes()[:40])  # damaged after it was encoded
    with caplog.at_level(logging.WARNING, logger="photosearch.indexing.text_reading"):
        report = _read(library)
    assert (report.read, report.with_text, report.failed) == (2, 1, 1)
    lines = [
        r.getMessage() for r in caplog.records if r.name == "photosearch.indexing.text_reading"
    ]
    assert len(lines) == 1 and str(bad) in lines[0] and "\n" not in lines[0]
    assert _read(library).read == 0  # not retried until the file changes
    results = library.search(SearchQuery(text="red sign", k=2))
    assert results[0].path == str(good)


def test_setting_off_and_search_by_the_text(library, tmp_path: Path, plugin_site: Path):
    folder = tmp_path / "photos"
    for colour in ("red", "green", "blue"):
        make_photo(folder / f"{colour}.png", colour)
    library.add_folder(folder)
    library.index()
    set_reading_enabled(library.catalog, False)
    assert library.text.read() is None
    assert not reading_status(library.catalog, _coloursign(library)).enabled
    set_reading_enabled(library.catalog, True)
    assert _read(library).read == 3
    results = library.search(SearchQuery(text="green sign", k=3))
    assert results[0].path == str(folder / "green.png")
    assert {r.path for r in results} == {str(folder / f"{c}.png") for c in ("red", "green", "blue")}


def test_the_text_in_photos_command_turns_reading_off_and_on(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
):
    from photosearch.catalog.database import open_catalog
    from photosearch.cli.main import main

    monkeypatch.delenv("PHOTOSEARCH_READ_TEXT")  # conftest turns reading off elsewhere
    directory = tmp_path / "lib"
    assert main(["text-in-photos", "off", "--library", str(directory)]) == 0
    assert "[off: `photosearch text-in-photos on`]" in capsys.readouterr().out
    catalog = open_catalog(directory / "catalog.sqlite", readonly=True, expect_data=False)
    try:
        assert not reading_enabled(catalog)
    finally:
        catalog.close()
    assert main(["text-in-photos", "on", "--library", str(directory)]) == 0
    assert main(["text-in-photos", "--library", str(directory)]) == 0
    out = capsys.readouterr().out
    assert "[off" not in out, out


def test_index_killed_while_reading_resumes_with_the_rest(tmp_path: Path, plugin_site: Path):
    """`photosearch index` killed (SIGKILL) during the reading stage: the rerun reads exactly
    the photos with no committed reading, and the first run's committed ones never again."""
    models = tmp_path / "models"
    build_tiny_bundle(models / "tiny")
    folder = tmp_path / "photos"
    count = COMMIT_EVERY + 6
    for i in range(count):
        make_photo(folder / f"{i:02d}.png", "red", size=(64 + i, 48))  # sizes tell them apart
    common = ["--library", str(tmp_path / "lib"), "--models-dir", str(models), "--model", "tiny"]
    env = subprocess_env(
        PYTHONPATH=os.pathsep.join([str(ROOT), str(plugin_site)]),
        WORDS_SLEEP="0.1",
        WORDS_LOG=str(tmp_path / "reads.log"),
    )
    env.pop("PHOTOSEARCH_READ_TEXT", None)
    run = [sys.executable, "-m", "photosearch", *common]
    subprocess.run([*run, "folders", "add", str(folder)], env=env, check=True, capture_output=True)
    first = subprocess.Popen(
        [*run, "index"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 120
    while len(_reads(tmp_path)) < COMMIT_EVERY + 2 and time.monotonic() < deadline:
        assert first.poll() is None, "index finished before it could be killed"
        time.sleep(0.02)
    first.send_signal(signal.SIGKILL)
    first.wait()
    read_first = _reads(tmp_path)
    assert len(read_first) >= COMMIT_EVERY + 2

    from photosearch.library.facade import Library

    with (
        Library(tmp_path / "lib", models_dir=models, model="tiny") as library,
        library.catalog.session() as session,
    ):
        committed = len(
            session.scalars(
                select(PhotoExtraction.photo_id).where(PhotoExtraction.extractor == "coloursign@1")
            ).all()
        )
    assert COMMIT_EVERY <= committed < count
    subprocess.run([*run, "index"], env=env, capture_output=True, check=True)
    read_second = _reads(tmp_path)[len(read_first) :]
    assert len(read_second) == count - committed
    sizes = [line.split()[0] for line in read_first[:committed] + read_second]
    assert sorted(sizes) == sorted(f"{64 + i}x48" for i in range(count))


def test_the_watcher_reads_text_at_idle_and_new_photos_after_they_are_encoded(
    library, tmp_path: Path, plugin_site: Path
):
    from photosearch.library.watch_service import WatchService, WatchStatus

    folder = tmp_path / "photos"
    for colour in ("red", "green"):
        make_photo(folder / f"{colour}.png", colour)
    library.add_folder(folder)
    statuses: list[WatchStatus] = []
    service = WatchService(library, on_status=statuses.append, settle_s=0.3, quiet_s=0.2)
    service.start()
    try:
        assert service.wait_idle(30)
        _wait_for(lambda: len(_reads(tmp_path)) == 2)
        make_photo(folder / "blue.png", "blue")
        _wait_for(lambda: _reads(tmp_path)[-1:] == ["64x48 blue"])
    finally:
        service.stop()
    assert len(_reads(tmp_path)) == 3  # nothing read twice
    assert service.status.state == "stopped"
    with library.catalog.session() as session:
        assert match_terms(session, "blue", sources=[TermSource.TEXT_IN_PHOTO])


def _wait_for(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_place_names_of_the_gps_pass_stay_out_of_the_text_in_photo(
    library, tmp_path: Path, plugin_site: Path
):
    from datetime import datetime

    from photosearch.catalog import Photo
    from photosearch.indexing.words import PLACES_EXTRACTOR

    make_photo(tmp_path / "photos" / "a.png", "yellow")
    library.add_folder(tmp_path / "photos")
    library.index()
    with library.catalog.session() as session:  # as the GPS pass records a photo it named
        photo = session.scalars(select(Photo)).one()
        session.merge(
            PhotoExtraction(
                photo_id=photo.id,
                extractor=PLACES_EXTRACTOR,
                content_hash=photo.content_hash,
                text="Lisbon Portugal",
                finished_at=datetime.now(),
            )
        )
        session.commit()
    assert _read(library).read == 1
    with library.catalog.session() as session:
        assert match_terms(session, "yellow", sources=[TermSource.TEXT_IN_PHOTO])
        assert not match_terms(session, "lisbon", sources=[TermSource.TEXT_IN_PHOTO])
