"""The encoding pipeline: progress, stopping, resuming, and surviving SIGKILL."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import func, select

from photosearch.catalog import Photo, Vector
from photosearch.errors import LibraryLocked
from photosearch.indexing.encode import IndexProgress, pending_photos
from photosearch.library.facade import Library
from photosearch.search.query import SearchQuery
from tests.conftest import make_photo
from tests.support.tiny_bundle import COLOUR_RGB, build_tiny_bundle

ROOT = Path(__file__).resolve().parent.parent


def _many_photos(folder: Path, count: int, size: tuple[int, int] = (64, 48)) -> None:
    colours = list(COLOUR_RGB)
    for number in range(count):
        make_photo(
            folder / f"{number // 50:02d}" / f"p{number:04d}.png",
            colours[number % len(colours)],
            size=size,
        )


def _check_consistent(library: Library, expected_photos: int) -> None:
    with library.catalog.session() as session:
        photos = session.scalar(select(func.count()).select_from(Photo))
        vectors = list(
            session.scalars(select(Vector.photo_id).where(Vector.model_id == library.model_id))
        )
        ids = set(session.scalars(select(Photo.id).where(Photo.present())))
    assert photos == expected_photos
    assert len(vectors) == len(set(vectors)) == expected_photos
    assert set(vectors) == ids
    assert library.store.live_ids() == ids
    assert len(library.store) == expected_photos


def test_progress_reports_every_batch(library, photo_dir):
    library.add_folder(photo_dir)
    seen: list[IndexProgress] = []
    report = library.index(progress=seen.append, batch_size=2)
    assert [p.done for p in seen] == [2, 4, 5]
    assert all(p.total == 5 for p in seen)
    assert seen[-1].eta_s == 0.0
    assert report.encoding.stopped is False


def test_resume_after_stop_encodes_each_photo_once(library, tmp_path):
    folder = tmp_path / "many"
    _many_photos(folder, 23)
    library.add_folder(folder)
    first = library.index(should_stop=lambda: True, batch_size=4)
    assert first.encoding.stopped is True
    assert first.encoding.encoded == 4
    assert len(pending_photos(library.catalog, library.model_id)) == 19
    assert library.status().pending == 19

    second = library.index(batch_size=4)
    assert second.encoding.encoded == 19
    assert second.encoding.stopped is False
    assert pending_photos(library.catalog, library.model_id) == []
    _check_consistent(library, 23)


def test_resume_in_a_new_process_after_stop(tmp_path, registry):
    folder = tmp_path / "many"
    _many_photos(folder, 10)
    with Library(tmp_path / "lib", registry=registry) as library:
        library.add_folder(folder)
        assert library.index(should_stop=lambda: True, batch_size=3).encoding.encoded == 3
    with Library(tmp_path / "lib", registry=registry) as library:
        assert library.index(batch_size=3).encoding.encoded == 7
        _check_consistent(library, 10)


def test_store_lost_after_crash_is_rebuilt_from_catalog(tmp_path, registry, photo_dir):
    with Library(tmp_path / "lib", registry=registry) as library:
        library.add_folder(photo_dir)
        library.index()
    for path in (tmp_path / "lib" / "vectors").iterdir():
        if path.suffix != ".slots":  # the catalog's vectors (schema v6) stay
            path.unlink()  # as if the process died before the store was ever saved
    with Library(tmp_path / "lib", registry=registry) as library:
        assert library.index().encoding.encoded == 0
        _check_consistent(library, 5)


@pytest.mark.parametrize("damage", ["missing", "truncated", "overwritten"])
def test_a_lost_or_damaged_vector_file_makes_its_photos_pending_again(
    tmp_path, registry, photo_dir, damage, caplog
):
    with Library(tmp_path / "lib", registry=registry) as library:
        library.add_folder(photo_dir)
        library.index()
        before = {r.path: r.score for r in library.search(SearchQuery(text="red", k=5))}
    (slots,) = (tmp_path / "lib" / "vectors").glob("*.slots")
    for path in (tmp_path / "lib" / "vectors").iterdir():
        if path.suffix != ".slots":
            path.unlink()  # no graph either: the vectors must come from the slot file
    if damage == "missing":
        slots.unlink()
    elif damage == "truncated":
        os.truncate(slots, slots.stat().st_size - 10)  # the last photo's slot
    else:
        with slots.open("r+b") as handle:
            handle.seek(100)
            handle.write(b"\x7f" * 8)  # inside one photo's slot
    lost = 5 if damage == "missing" else 1
    with Library(tmp_path / "lib", registry=registry) as library:
        assert len(library.store) == 5 - lost  # never a wrong vector
        warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
        assert any(
            f"{lost} saved vectors are missing or damaged" in w and "\n" not in w for w in warnings
        ), warnings
        assert library.index().encoding.encoded == lost  # read again from the photos
        _check_consistent(library, 5)
        after = {r.path: r.score for r in library.search(SearchQuery(text="red", k=5))}
    assert after.keys() == before.keys()
    assert all(abs(after[p] - before[p]) < 1e-6 for p in before)


def test_second_writer_is_refused_while_one_indexes(tmp_path, registry, photo_dir):
    with (
        Library(tmp_path / "lib", registry=registry) as first,
        Library(tmp_path / "lib", registry=registry) as second,
    ):
        first.add_folder(photo_dir)
        first.lock.acquire()
        with pytest.raises(LibraryLocked, match=f"pid {os.getpid()}"):
            second.index()
        first.lock.release()
        assert second.index().encoding.encoded == 5


def _cli(args: list[str], **kwargs) -> subprocess.Popen:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    return subprocess.Popen(
        [sys.executable, "-m", "photosearch", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        **kwargs,
    )


def _vector_rows(catalog_file: Path) -> int:
    if not catalog_file.exists():
        return 0
    connection = sqlite3.connect(catalog_file, timeout=5)
    try:
        return connection.execute("SELECT count(*) FROM vectors").fetchone()[0]
    except sqlite3.OperationalError:
        return 0
    finally:
        connection.close()


def test_sigkill_mid_index_then_rerun_is_consistent(tmp_path):
    models = tmp_path / "models"
    build_tiny_bundle(models / "tiny", name="tiny")
    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(1)
    for number in range(200):  # noisy PNGs: no draft mode, so decoding takes real time
        pixels = rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"p{number:03d}.png", compress_level=0)
    library_dir = tmp_path / "lib"
    common = ["--library", str(library_dir), "--models-dir", str(models), "--model", "tiny"]
    add = _cli([*common, "folders", "add", str(folder)])
    assert add.wait(60) == 0, add.stderr.read()

    process = _cli([*common, "index", "--batch-size", "4", "--threads", "1"])
    deadline = time.monotonic() + 60
    killed_at = None
    while time.monotonic() < deadline and process.poll() is None:
        rows = _vector_rows(library_dir / "catalog.sqlite")
        if rows >= 8:
            process.send_signal(signal.SIGKILL)
            killed_at = rows
            break
        time.sleep(0.01)
    process.wait(60)
    process.stdout.close()
    process.stderr.close()
    assert killed_at is not None, "the index finished before it could be killed"
    assert _vector_rows(library_dir / "catalog.sqlite") < 200

    rerun = _cli([*common, "index", "--json"])
    out, err = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, err.decode()
    with Library(library_dir, models_dir=models, model="tiny") as library:
        _check_consistent(library, 200)
        assert library.index().encoding.encoded == 0
