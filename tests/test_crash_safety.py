"""kill -9 of a real `photosearch index` / `photosearch watch` process at random moments: on
restart the catalog and the vector store agree, no photo is lost or doubled, and indexing
finishes. Three trials by default; the `slow` stress test runs twenty more."""

from __future__ import annotations

import random
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import func, select

from photosearch.catalog import Photo, Vector
from photosearch.files.scanning import IgnoreRules, walk_photos
from photosearch.library import saved_vectors
from photosearch.library.facade import Library
from photosearch.search.query import SearchQuery
from photosearch.vectors.store import VectorStore
from tests.support.cli_process import photosearch_command
from tests.support.tiny_bundle import build_tiny_bundle


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    models = tmp_path_factory.mktemp("models")
    build_tiny_bundle(models / "tiny", name="tiny")
    return models


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Unique noise photos (no byte-identical copies), so every one is really encoded."""
    folder = tmp_path_factory.mktemp("corpus")
    rng = np.random.default_rng(7)
    for i in range(160):
        pixels = rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"p{i:03d}.png")
    return folder


def open_library(library: Path, models: Path) -> Library:
    return Library(library, models_dir=models, model="tiny", threads=1)


def assert_consistent(library_dir: Path, models: Path, photos: Path) -> None:
    """What a restart must find: a loadable store that the catalog repairs, then a complete
    index with exactly one row per file and one vector per decodable photo."""
    with open_library(library_dir, models) as library:
        identity, dim = library.encoder.identity, library.encoder.embed_dim
        VectorStore(library.directory / "vectors", identity, dim)  # loads, or rebuilds quietly
        report = library.index(lock_wait_s=10)
        assert not report.encoding.stopped
        on_disk = {f.path for f in walk_photos(photos, IgnoreRules())}
        with library.catalog.session() as session:
            paths = session.scalars(select(Photo.path).where(Photo.present())).all()
            ok_ids = set(
                session.scalars(select(Photo.id).where(Photo.status == "ok", Photo.present())).all()
            )
            vector_ids = session.scalars(
                select(Vector.photo_id)
                .join(Photo, Photo.id == Vector.photo_id)
                .where(Vector.model_id == library.model_id, Photo.present())
            ).all()
            failed = session.scalar(
                select(func.count()).select_from(Photo).where(Photo.status == "failed")
            )
        assert len(paths) == len(set(paths)) == len(on_disk)
        assert set(paths) == on_disk
        assert failed == 0
        assert len(vector_ids) == len(set(vector_ids))
        assert set(vector_ids) == ok_ids
        store = library.store  # every vector readable, inline or from the slot file (schema v6)
        slots = saved_vectors.slots_for(store.directory, store.identity, store.dim)
        readable = saved_vectors.read(library.catalog, library.model_id, slots, list(vector_ids))[0]
        assert sorted(readable.tolist()) == sorted(vector_ids)
        assert library.store.live_ids() == ok_ids
        assert library.status().pending == 0
        assert len(library.search(SearchQuery(text="red", k=5))) == 5
    # and the saved store alone (as the next process loads it) already holds every vector
    saved = VectorStore(library_dir.resolve() / "vectors", identity, dim)
    assert saved.live_ids() == ok_ids
    # and the float16 matrix saved with that graph verifies and holds the same photos
    assert saved.has_matrix()
    query = saved.get_vectors([min(ok_ids)])[0]
    assert {pid for pid, _ in saved.search(query, len(ok_ids), method="exact")} == ok_ids


def kill_index_trial(tmp: Path, models: Path, corpus: Path, rng: random.Random) -> None:
    library, photos = tmp / "library", tmp / "photos"
    shutil.copytree(corpus, photos)
    with open_library(library, models) as lib:
        lib.add_folder(photos)
    for _ in range(2):  # kill, and kill again the run that resumes
        process = subprocess.Popen(
            photosearch_command(library, models, "index", "--batch-size", "8"),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(rng.uniform(0.3, 3.0))
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert_consistent(library, models, photos)


def kill_watch_trial(tmp: Path, models: Path, corpus: Path, rng: random.Random) -> None:
    library, photos = tmp / "library", tmp / "photos"
    photos.mkdir()
    first = sorted(corpus.iterdir())
    for path in first[:40]:
        shutil.copy2(path, photos / path.name)
    with open_library(library, models) as lib:
        lib.add_folder(photos)
    process = subprocess.Popen(
        photosearch_command(library, models, "watch", "--settle", "0.3"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(rng.uniform(0.5, 3.0))
        shutil.copytree(corpus, photos / "import")
        for path in first[:10]:  # renames and deletions racing with the kill
            (photos / path.name).rename(photos / "import" / f"moved-{path.name}")
        for path in first[10:15]:
            (photos / path.name).unlink()
        time.sleep(rng.uniform(0.0, 2.0))
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert_consistent(library, models, photos)


def run_trials(count: int, tmp_path: Path, models: Path, corpus: Path, seed: int) -> None:
    rng = random.Random(seed)
    for trial in range(count):
        tmp = tmp_path / f"trial{trial}"
        tmp.mkdir()
        kind = kill_index_trial if trial % 2 == 0 else kill_watch_trial
        kind(tmp, models, corpus, rng)


def test_kill_during_index_and_watch_leaves_a_consistent_library(
    tmp_path: Path, models_dir: Path, corpus: Path
):
    run_trials(3, tmp_path, models_dir, corpus, seed=1)


@pytest.mark.slow
def test_kill_stress(tmp_path: Path, models_dir: Path, corpus: Path):
    run_trials(20, tmp_path, models_dir, corpus, seed=int(time.time()))


def test_watch_stops_cleanly_on_sigterm_and_saves(tmp_path: Path, models_dir: Path, corpus: Path):
    library, photos = tmp_path / "library", tmp_path / "photos"
    shutil.copytree(corpus, photos)
    with open_library(library, models_dir) as lib:
        lib.add_folder(photos)
    process = subprocess.Popen(
        photosearch_command(library, models_dir, "watch"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines = []
    for line in process.stdout:  # type: ignore[union-attr]
        lines.append(line)
        if "caught up" in line:
            break
    process.send_signal(signal.SIGTERM)
    rest, _ = process.communicate(timeout=30)
    assert process.returncode == 0, "".join(lines) + rest
    with open_library(library, models_dir) as lib:
        with lib.catalog.session() as session:
            ids = set(session.scalars(select(Vector.photo_id)).all())
        saved = VectorStore(lib.directory / "vectors", lib.encoder.identity, lib.encoder.embed_dim)
    assert len(ids) == 160 and saved.live_ids() == ids


def test_kill_during_repair_then_repair_again_leaves_a_consistent_library(
    tmp_path: Path, models_dir: Path, corpus: Path
):
    """kill -9 of `repair` at a random moment (moving the damaged catalog aside, copying the
    backup in, salvaging, indexing): the next `repair` finishes the job."""
    library, photos = tmp_path / "library", tmp_path / "photos"
    shutil.copytree(corpus, photos)
    with open_library(library, models_dir) as lib:
        lib.add_folder(photos)
        lib.index()
    catalog = library / "catalog.sqlite"
    with catalog.open("r+b") as handle:  # 16 KB of garbage inside
        handle.seek(catalog.stat().st_size // 3)
        handle.write(random.Random(3).randbytes(16384))
    process = subprocess.Popen(
        photosearch_command(library, models_dir, "repair"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(random.Random().uniform(0.3, 1.5))
    process.send_signal(signal.SIGKILL)
    process.wait()
    again = subprocess.run(
        photosearch_command(library, models_dir, "repair"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert again.returncode == 0, again.stdout + again.stderr
    assert " encoded" not in again.stdout or " 0 encoded" in again.stdout  # vectors kept
    assert_consistent(library, models_dir, photos)
