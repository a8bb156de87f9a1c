"""Switching models never leaves the library without search: two tiny real bundles (different
seeds, so different identities and different scores), real SQLite, hnswlib and ONNX Runtime,
and a real `photosearch index` process killed with SIGKILL in the middle of a re-encode."""

from __future__ import annotations

import shutil
import signal
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import func, select

from photosearch.catalog import Model, Photo, Vector
from photosearch.cli.main import main
from photosearch.errors import ModelNotFound
from photosearch.library.facade import Library
from photosearch.library.model_switch import ModelSetInUse, vector_store_files
from photosearch.library.watch_service import WatchService
from photosearch.search.query import SearchQuery
from tests.conftest import make_photo
from tests.support.cli_process import photosearch_command
from tests.support.tiny_bundle import build_tiny_bundle

PHOTOS = 40
QUERY = "red"


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    models = tmp_path_factory.mktemp("models")
    build_tiny_bundle(models / "tiny", name="tiny", seed=0)
    build_tiny_bundle(models / "tiny2", name="tiny2", seed=1)
    return models


def noise_photos(folder: Path, count: int, seed: int) -> Path:
    """Unique photos (no byte-identical copies), so each one is really encoded."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        Image.fromarray(rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)).save(
            folder / f"p{i:03d}.png"
        )
    return folder


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return noise_photos(tmp_path_factory.mktemp("corpus"), PHOTOS, seed=3)


def open_library(directory: Path, models: Path) -> Library:
    """As the CLI and the app open a library: no --model, so the library's own choice."""
    return Library(directory, models_dir=models, threads=1)


def ranking(library: Library, k: int = PHOTOS) -> list[tuple[str, float]]:
    """(file name, score) best first: equal for two libraries only if the same model answered."""
    return [
        (Path(r.path).name, round(r.score, 5)) for r in library.search(SearchQuery(text=QUERY, k=k))
    ]


def indexed_with(directory: Path, models: Path, photos: Path, name: str) -> Library:
    library = open_library(directory, models)
    assert library.use_model(name).switched  # an empty library switches at once
    library.add_folder(photos)
    library.index()
    return library


@pytest.fixture(scope="module")
def expected(tmp_path_factory: pytest.TempPathFactory, models_dir: Path, corpus: Path):
    """Each model's full ranking of the corpus for QUERY, from libraries that only ever had
    that model: what "answered by the old model" and "by the new one" look like."""
    rankings = {}
    for name in ("tiny", "tiny2"):
        with indexed_with(tmp_path_factory.mktemp(name), models_dir, corpus, name) as library:
            rankings[name] = ranking(library)
    assert len(rankings["tiny"]) == len(rankings["tiny2"]) == PHOTOS
    assert rankings["tiny"] != rankings["tiny2"]  # the two models are told apart
    return rankings


def vector_count(catalog_path: Path, name: str) -> int:
    """Vectors of one model, read with plain sqlite3 (as another process would)."""
    with sqlite3.connect(f"file:{catalog_path}?mode=ro", uri=True, timeout=30) as connection:
        row = connection.execute(
            "SELECT count(*) FROM vectors JOIN models ON models.id = vectors.model_id "
            "WHERE models.name = ?",
            (name,),
        ).fetchone()
    return int(row[0])


def test_searches_answer_from_the_old_model_until_the_new_set_covers_the_library(
    tmp_path: Path, models_dir: Path, corpus: Path, expected: dict
):
    with (
        indexed_with(tmp_path / "lib", models_dir, corpus, "tiny") as library,
        open_library(tmp_path / "lib", models_dir) as other_view,
    ):
        assert ranking(other_view) == expected["tiny"]
        state = library.use_model("tiny2")
        assert (state.switched, state.active, state.target) == (False, "tiny", "tiny2")
        assert (state.covered, state.pending) == (0, PHOTOS)
        assert ranking(library) == expected["tiny"]  # choosing did not switch search

        mid_switch: list[int] = []

        def search_now(update) -> None:
            if update.model == "tiny2" and update.done < update.total:
                mid_switch.append(update.done)
                assert ranking(library) == expected["tiny"]
                assert ranking(other_view) == expected["tiny"]

        report = library.index(progress=search_now, batch_size=4)
        assert report.encoding.encoded == 0  # nothing new for the active model
        switch = report.switch
        assert switch is not None and switch.switched and switch.remaining == 0
        assert switch.encoding.encoded == PHOTOS
        assert len(mid_switch) >= 5
        assert library.model_name == "tiny2" and library.target_model is None
        assert ranking(library) == expected["tiny2"]
        assert ranking(other_view) == expected["tiny2"]  # follows the switch from the catalog

        # switching back to a set that still covers the library is instant
        back = library.use_model("tiny")
        assert back.switched and back.pending == 0
        assert ranking(library) == expected["tiny"]
        assert ranking(other_view) == expected["tiny"]


def test_new_photos_are_searchable_during_a_switch_and_join_the_new_set(
    tmp_path: Path, models_dir: Path, corpus: Path
):
    photos = tmp_path / "photos"
    for path in corpus.glob("p00*.png"):
        (photos / path.name).parent.mkdir(parents=True, exist_ok=True)
        (photos / path.name).write_bytes(path.read_bytes())
    with indexed_with(tmp_path / "lib", models_dir, photos, "tiny") as library:
        library.use_model("tiny2")
        make_photo(photos / "new-red.jpg", "red")
        reached_target = threading.Event()

        def progress(update) -> None:
            if update.model == "tiny2":
                reached_target.set()

        report = library.index(progress=progress, should_stop=reached_target.is_set, batch_size=2)
        assert report.encoding.encoded == 1  # the new photo, for the active model first
        assert report.switch is not None and report.switch.encoding.stopped
        assert not report.switch.switched and library.model_name == "tiny"
        assert Path(library.search(SearchQuery(text="red", k=1))[0].path).name == "new-red.jpg"

        report = library.index()  # resumes the re-encode from what the catalog lacks
        assert report.switch is not None and report.switch.switched
        assert report.switch.encoding.encoded == 11 - 2
        assert library.model_name == "tiny2"
        assert Path(library.search(SearchQuery(text="red", k=1))[0].path).name == "new-red.jpg"


def test_a_re_encode_finishing_late_does_not_override_a_newer_choice(
    tmp_path: Path, models_dir: Path, corpus: Path, expected: dict
):
    """`models use tiny` (a cancel) from another process while an index re-encodes for
    tiny2: the finished re-encode keeps its vectors but does not switch."""
    with (
        indexed_with(tmp_path / "lib", models_dir, corpus, "tiny") as library,
        open_library(tmp_path / "lib", models_dir) as other_process,
    ):
        library.use_model("tiny2")

        def cancel_meanwhile(update) -> None:
            if update.model == "tiny2" and update.done == 8:
                assert other_process.use_model("tiny").cancelled == "tiny2"

        report = library.index(progress=cancel_meanwhile, batch_size=8)
        assert report.switch is not None and report.switch.remaining == 0
        assert not report.switch.switched
        assert library.model_name == "tiny" and library.target_model is None
        assert ranking(library) == expected["tiny"]
        assert library.use_model("tiny2").switched  # its set is complete now: instant


def test_status_coverage_cancel_and_drop(tmp_path: Path, models_dir: Path, corpus: Path):
    with indexed_with(tmp_path / "lib", models_dir, corpus, "tiny") as library:
        library.use_model("tiny2")
        library.index(should_stop=lambda: True, batch_size=8)  # one batch for tiny2
        status = library.status()
        assert status.model == "tiny" and status.target_model == "tiny2"
        coverage = {s.name: (s.vectors, s.photos, s.active, s.target) for s in status.sets}
        assert coverage == {
            "tiny": (PHOTOS, PHOTOS, True, False),
            "tiny2": (8, PHOTOS, False, True),
        }

        with pytest.raises(ModelSetInUse, match="active model"):
            library.drop_model_set("tiny")
        with pytest.raises(ModelSetInUse, match="switch"):
            library.drop_model_set("tiny2")

        cancelled = library.use_model("tiny")  # choosing the active model cancels
        assert cancelled.cancelled == "tiny2" and library.target_model is None
        assert {s.name: s.vectors for s in library.status().sets} == {"tiny": PHOTOS, "tiny2": 8}

        library.use_model("tiny2")
        library.index()  # finishes the switch, re-encoding only the 32 left
        assert library.model_name == "tiny2"
        vectors = library.directory / "vectors"
        tiny_identity = next(s.identity for s in library.status().sets if s.name == "tiny")
        tiny2_identity = library.encoder.identity
        assert vector_store_files(vectors, tiny_identity)
        with pytest.raises(ModelSetInUse):
            library.drop_model_set(tiny2_identity)

        dropped = library.drop_model_set(tiny_identity)
        assert (dropped.name, dropped.vectors) == ("tiny", PHOTOS)
        assert vector_store_files(vectors, tiny_identity) == []
        assert vector_store_files(vectors, tiny2_identity)  # the active set is untouched
        with library.catalog.session() as session:
            assert (
                session.scalar(
                    select(func.count()).select_from(Model).where(Model.identity == tiny_identity)
                )
                == 0
            )
            assert session.scalar(select(func.count()).select_from(Vector)) == PHOTOS
        assert [s.name for s in library.status().sets] == ["tiny2"]
        assert len(ranking(library)) == PHOTOS

        again = library.use_model("tiny")  # its set is gone: a real re-encode this time
        assert not again.switched and again.pending == PHOTOS


def test_a_target_bundle_gone_mid_switch_is_a_clear_error_and_search_goes_on(
    tmp_path: Path, models_dir: Path, corpus: Path, expected: dict
):
    models = tmp_path / "models"
    shutil.copytree(models_dir, models)
    with indexed_with(tmp_path / "lib", models, corpus, "tiny") as library:
        library.use_model("tiny2")
    shutil.rmtree(models / "tiny2")  # e.g. `models remove tiny2` from another tool
    with open_library(tmp_path / "lib", models) as library:
        with pytest.raises(ModelNotFound) as caught:
            library.index()
        message = str(caught.value)
        assert "switching to" in message and "`photosearch models use tiny` cancels" in message
        assert ranking(library) == expected["tiny"]

        statuses: list = []
        service = WatchService(library, on_status=statuses.append, settle_s=0.2, quiet_s=0.1)
        service.start()
        try:
            assert service.wait_idle(30)
            assert service.status.state == "watching"  # still following the folders
        finally:
            service.stop()
        assert any(s.message.startswith("re-encoding for tiny2 stopped") for s in statuses)

        assert library.use_model("tiny").cancelled == "tiny2"
        assert library.index().switch is None


def test_cli_use_status_drop(
    tmp_path: Path, models_dir: Path, corpus: Path, capsys: pytest.CaptureFixture
):
    common = ["--library", str(tmp_path / "lib"), "--models-dir", str(models_dir)]

    def cli(*argv: str) -> tuple[int, str, str]:
        code = main([*common, *argv])
        out, err = capsys.readouterr()
        return code, out, err

    assert cli("models", "use", "tiny")[1].startswith("switched to tiny")
    cli("folders", "add", str(corpus))
    assert cli("index")[0] == 0
    code, out, _ = cli("models", "use", "tiny2")
    assert code == 0 and f"0 photos encoded, {PHOTOS} to go" in out
    assert "Searches keep using tiny" in out
    code, out, _ = cli("status")
    assert "switching to tiny2" in out
    assert f"{PHOTOS}/{PHOTOS} photos [active]" in out and f"0/{PHOTOS} photos [target]" in out
    code, _, err = cli("models", "drop", "tiny")
    assert code == 1 and "active model" in err
    code, _, err = cli("models", "remove", "tiny2", "--yes")  # the bundle the switch needs
    assert code == 1 and "switch target of library" in err
    assert (models_dir / "tiny2" / "config.json").is_file()
    code, out, _ = cli("index")
    assert code == 0 and "switched to tiny2" in out
    code, out, _ = cli("status")
    assert "model:    tiny2" in out and "[kept]" in out
    code, out, _ = cli("models", "drop", "tiny")
    assert code == 0 and f"{PHOTOS} vectors" in out
    code, out, _ = cli("status")
    assert "(tiny@" not in out and "[kept]" not in out
    code, _, err = cli("models", "drop", "nonesuch")
    assert code == 1 and "no vector set 'nonesuch'" in err


def test_watch_re_encodes_in_the_background_and_switches(
    tmp_path: Path, models_dir: Path, corpus: Path, expected: dict
):
    """The watcher re-encodes between its batches: a photo saved mid re-encode is encoded for
    the active model and found by a search before the switch completes."""
    photos = tmp_path / "photos"
    photos.mkdir()
    for path in corpus.iterdir():
        (photos / path.name).write_bytes(path.read_bytes())
    with (
        indexed_with(tmp_path / "lib", models_dir, photos, "tiny") as library,
        open_library(tmp_path / "lib", models_dir) as searcher,
    ):
        library.use_model("tiny2")
        statuses: list = []
        found_during_switch: list[str] = []

        def on_status(status) -> None:
            statuses.append(status)
            if status.state == "re-encoding" and not (photos / "new-red.jpg").exists():
                make_photo(photos / "new-red.jpg", "red")  # saved while re-encoding
            batch = status.last_batch  # carried over by later statuses: count each once
            if (
                batch is not None
                and batch.encoded
                and library.target_model == "tiny2"
                and all(batch is not seen.last_batch for seen in statuses[:-1])
            ):
                best = searcher.search(SearchQuery(text="red", k=1))[0]
                found_during_switch.append(f"{searcher.model_name}:{Path(best.path).name}")

        service = WatchService(
            library, on_status=on_status, settle_s=0.2, quiet_s=0.1, batch_size=1
        )
        service.start()
        try:
            assert service.wait_idle(60)  # idle means: re-encoded and switched
        finally:
            service.stop()
        assert found_during_switch == ["tiny:new-red.jpg"]
        switched = [s for s in statuses if s.message.startswith("switched to tiny2")]
        assert len(switched) == 1 and switched[0].model == "tiny2"
        assert library.model_name == "tiny2" and library.target_model is None
        assert Path(searcher.search(SearchQuery(text="red", k=1))[0].path).name == "new-red.jpg"
        assert [r for r in ranking(library, PHOTOS + 1) if "new-red" not in r[0]] == expected[
            "tiny2"
        ]


def test_kill_9_mid_switch_then_resume_while_another_process_searches(
    tmp_path: Path, models_dir: Path
):
    """A real `index` process re-encodes for tiny2 and is killed with SIGKILL half-way; a
    searcher in this process keeps getting tiny's full answer throughout, a second `index`
    finishes from where the catalog says, and the searcher then gets tiny2's answer."""
    big = noise_photos(tmp_path / "big", 400, seed=3)  # the corpus's photos, and 360 more
    library_dir = tmp_path / "lib"
    with indexed_with(library_dir, models_dir, big, "tiny") as library:
        old = ranking(library, k=PHOTOS)
        library.use_model("tiny2")
    catalog = library_dir / "catalog.sqlite"

    answers: list[tuple[int, list[tuple[str, float]], int]] = []
    stop = threading.Event()

    def search_repeatedly() -> None:
        with open_library(library_dir, models_dir) as searcher:
            while not stop.is_set():
                before = vector_count(catalog, "tiny2")
                answer = ranking(searcher, k=PHOTOS)
                answers.append((before, answer, vector_count(catalog, "tiny2")))
                time.sleep(0.005)

    searcher = threading.Thread(target=search_repeatedly, daemon=True)
    searcher.start()
    try:
        process = subprocess.Popen(
            photosearch_command(library_dir, models_dir, "index", "--batch-size", "1", model=None),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 60
        while (
            vector_count(catalog, "tiny2") < 40
            and process.poll() is None
            and time.monotonic() < deadline
        ):
            time.sleep(0.002)
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        partial = vector_count(catalog, "tiny2")
        assert 0 < partial < 400, f"the re-encode was not caught half-way ({partial}/400)"
        with open_library(library_dir, models_dir) as after_kill:
            assert after_kill.model_name == "tiny" and after_kill.target_model == "tiny2"
        time.sleep(0.2)  # the searcher answers against the killed state too

        finished = subprocess.run(
            photosearch_command(library_dir, models_dir, "index", model=None),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert finished.returncode == 0, finished.stderr
        assert "switched to tiny2" in finished.stdout
        assert f"encoded {400 - partial} for tiny2" in finished.stdout  # nothing twice
        time.sleep(0.3)
    finally:
        stop.set()
        searcher.join(30)

    with open_library(library_dir, models_dir) as library:
        assert library.model_name == "tiny2" and library.target_model is None
        with library.catalog.session() as session:
            ok_ids = set(session.scalars(select(Photo.id).where(Photo.status == "ok")).all())
            tiny2_ids = session.scalars(
                select(Vector.photo_id).where(Vector.model_id == library.model_id)
            ).all()
        assert len(ok_ids) == 400 and len(tiny2_ids) == len(set(tiny2_ids))
        assert set(tiny2_ids) == ok_ids == library.store.live_ids()
        new = ranking(library, k=PHOTOS)
    assert new != old

    assert answers and all(answer in (old, new) for _, answer, _ in answers)
    first_new = next(i for i, (_, answer, _) in enumerate(answers) if answer == new)
    assert all(answer == new for _, answer, _ in answers[first_new:])  # never back to old
    assert answers[first_new][2] == 400  # tiny2 answered only once it covered every photo
    mid = [a for a in answers[:first_new] if a[0] > 0 and a[2] < 400]
    assert len(mid) >= 3  # searched (and answered by tiny) while tiny2 was half done


def test_kill_9_of_watch_mid_switch_then_index_finishes(tmp_path: Path, models_dir: Path):
    photos = noise_photos(tmp_path / "photos", 400, seed=5)
    library_dir = tmp_path / "lib"
    with indexed_with(library_dir, models_dir, photos, "tiny") as library:
        library.use_model("tiny2")
    catalog = library_dir / "catalog.sqlite"
    process = subprocess.Popen(
        photosearch_command(library_dir, models_dir, "watch", "--batch-size", "1", model=None),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while (
        vector_count(catalog, "tiny2") < 40
        and process.poll() is None
        and time.monotonic() < deadline
    ):
        time.sleep(0.002)
    process.send_signal(signal.SIGKILL)
    process.wait(10)
    partial = vector_count(catalog, "tiny2")
    assert 0 < partial < 400, f"the re-encode was not caught half-way ({partial}/400)"

    finished = subprocess.run(
        photosearch_command(library_dir, models_dir, "index", model=None),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert finished.returncode == 0, finished.stderr
    assert f"encoded {400 - partial} for tiny2" in finished.stdout
    with open_library(library_dir, models_dir) as library:
        assert library.model_name == "tiny2" and library.target_model is None
        with library.catalog.session() as session:
            ok_ids = set(session.scalars(select(Photo.id).where(Photo.status == "ok")).all())
            ids = session.scalars(
                select(Vector.photo_id).where(Vector.model_id == library.model_id)
            ).all()
        assert len(ok_ids) == 400 and len(ids) == len(set(ids))
        assert set(ids) == ok_ids == library.store.live_ids()
