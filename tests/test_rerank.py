"""Re-ranking (photosearch.search.rerank): a second, real ONNX bundle (Immich layout, batch fixed
at 1) re-scores the top K of a library searched with a tiny student bundle; the rest keeps
the student's order; the re-ranker's image vectors are cached on disk and reused."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from photosearch.files.imaging import decode_for_model
from photosearch.library.facade import Library
from photosearch.models.runtime import Encoder
from photosearch.search.query import SearchQuery
from photosearch.search.rerank import Reranker, open_reranker, save_setting
from tests.support.immich_bundle import build_immich_bundle
from tests.support.tiny_bundle import build_tiny_bundle

ROOT = Path(__file__).resolve().parents[1]
QUERIES = ["a red photo", "blue sky", "a green car", "white dog", "yellow", "black car"]
TEACHER = "immich-teacher"


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("models")
    build_tiny_bundle(folder / "tiny", name="tiny", seed=0)
    build_immich_bundle(folder / TEACHER, "clip", seed=3)
    return folder


@pytest.fixture
def library(tmp_path: Path, models: Path) -> Library:
    rng = np.random.default_rng(7)
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(16):  # two-colour photos, so the two models disagree on the order
        image = Image.new("RGB", (48 + i, 40), tuple(int(c) for c in rng.integers(0, 256, 3)))
        image.paste(tuple(int(c) for c in rng.integers(0, 256, 3)), (0, 0, 24, 40))
        image.save(photos / f"p{i:02d}.png")
    lib = Library(tmp_path / "library", models_dir=models, model="tiny", threads=1)
    lib.add_folder(photos)
    lib.index()
    yield lib
    lib.close()


def teacher_order(models: Path, text: str, paths: list[str]) -> list[str]:
    """The teacher's own ranking of ``paths``, computed here without photosearch.search.rerank."""
    teacher = Encoder(models / TEACHER, threads=1)
    pixels = np.stack(
        [decode_for_model(Path(p), teacher.config.preprocessing).pixels for p in paths]
    )
    scores = teacher.encode_images(pixels) @ teacher.encode_texts([text])[0]
    return [paths[i] for i in np.argsort(-scores, kind="stable")]


def test_the_top_k_takes_the_teacher_s_order_and_the_rest_keeps_the_student_s(
    library: Library, models: Path
) -> None:
    depth, changed = 5, 0
    library.settings.use_reranker(open_reranker(library, TEACHER, depth))
    for text in QUERIES:
        library.settings.use_reranker(None)
        plain = [r.path for r in library.search(SearchQuery(text=text, k=12))]
        library.settings.use_reranker(open_reranker(library, TEACHER, depth))
        ranked = [r.path for r in library.search(SearchQuery(text=text, k=12))]
        expected = teacher_order(models, text, plain[:depth])
        assert ranked[:depth] == expected
        assert ranked[depth:] == plain[depth:]
        changed += expected != plain[:depth]
        # fewer results than the depth: the best of the re-scored top `depth`
        few = [r.path for r in library.search(SearchQuery(text=text, k=2))]
        assert few == expected[:2]
    assert changed >= 3  # the teacher really disagrees with the student


def test_negative_terms_and_image_queries(library: Library, models: Path) -> None:
    library.settings.use_reranker(None)
    plain = library.search(SearchQuery(text="a red photo -blue", k=8))
    like = library.search(SearchQuery(like=Path(plain[0].path), k=8))
    library.settings.use_reranker(open_reranker(library, TEACHER, 8))
    ranked = library.search(SearchQuery(text="a red photo -blue", k=8))
    teacher = Encoder(models / TEACHER, threads=1)
    red, blue = teacher.encode_texts(["a red photo", "blue"])
    top = ranked[0]
    assert sorted(r.path for r in ranked) == sorted(r.path for r in plain)
    pixels = decode_for_model(Path(top.path), teacher.config.preprocessing).pixels[None]
    vector = teacher.encode_images(pixels)[0]
    query = red - 0.5 * blue
    assert top.score == pytest.approx(float(vector @ (query / np.linalg.norm(query))), abs=1e-5)
    assert library.search(SearchQuery(like=Path(plain[0].path), k=8)) == like  # not re-ranked


def test_the_teacher_s_image_vectors_are_cached_on_disk_and_reused(library: Library) -> None:
    first = open_reranker(library, TEACHER, 6)
    library.settings.use_reranker(first)
    library.search(SearchQuery(text="a red photo", k=6))
    assert first.encoded == 6 and len(first.vectors) == 6
    library.search(SearchQuery(text="a red photo", k=6))
    assert first.encoded == 6
    files = list((library.directory / "rerank").glob("*.sqlite"))
    assert len(files) == 1 and files[0].name.startswith(f"{TEACHER}@")

    later = open_reranker(library, TEACHER, 6)  # another session
    library.settings.use_reranker(later)
    library.search(SearchQuery(text="blue sky", k=6))
    cached = later.encoded
    library.search(SearchQuery(text="a red photo", k=6))
    assert later.encoded == cached  # all six were on disk

    photo = Path(library.search(SearchQuery(text="a red photo", k=1))[0].path)
    Image.new("RGB", (30, 30), (1, 2, 3)).save(photo)  # edited since: encoded again
    library.search(SearchQuery(text="a red photo", k=6))
    assert later.encoded == cached + 1


def test_an_unreadable_photo_goes_below_the_re_scored_ones(library: Library) -> None:
    library.settings.use_reranker(None)
    plain = library.search(SearchQuery(text="yellow", k=4))
    Path(plain[0].path).write_bytes(b"not a photo any more")
    reranker = Reranker(library.registry.ensure(TEACHER), library.directory / "rerank", 4)
    ranked = reranker.rerank(["yellow"], plain)
    assert ranked[-1].path == plain[0].path and ranked[-1].score == plain[0].score
    assert sorted(r.path for r in ranked) == sorted(r.path for r in plain)


def test_the_setting_is_saved_per_library(library: Library, models: Path) -> None:
    save_setting(library, TEACHER, 7)
    library.close()
    again = Library(library.directory, models_dir=models, model="tiny", threads=1)
    try:
        assert again.settings.reranker is not None and again.settings.reranker.depth == 7
        save_setting(again, "off")
        assert again.settings.reranker is None
    finally:
        again.close()


def _cli(tmp: Path, models: Path, *args: str) -> subprocess.CompletedProcess:
    path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    env = dict(os.environ, PYTHONPATH=path)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "photosearch",
            "--library",
            str(tmp / "library"),
            "--models-dir",
            str(models),
            "--model",
            "tiny",
            *args,
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )


def test_the_command_line(library: Library, models: Path, tmp_path: Path) -> None:
    library.settings.use_reranker(None)
    plain = [r.path for r in library.search(SearchQuery(text="blue sky", k=8))]
    library.close()

    def search(*extra: str) -> list[str]:
        result = _cli(tmp_path, models, "search", "blue sky", "-k", "8", "--json", *extra)
        assert result.returncode == 0, result.stderr
        return [r["path"] for r in json.loads(result.stdout)]

    assert search() == plain
    assert search("--rerank", TEACHER, "--rerank-depth", "4")[:4] == teacher_order(
        models, "blue sky", plain[:4]
    )
    setting = _cli(tmp_path, models, "models", "rerank", TEACHER, "--depth", "3")
    assert setting.returncode == 0 and "top 3" in setting.stdout
    saved = search()
    assert saved[:3] == teacher_order(models, "blue sky", plain[:3]) and saved[3:] == plain[3:]
    assert search("--rerank", "off") == plain
    assert _cli(tmp_path, models, "models", "rerank", "off").returncode == 0
    assert search() == plain
    bad = _cli(tmp_path, models, "search", "blue sky", "--rerank", "no-such-model")
    assert bad.returncode != 0 and "Traceback" not in bad.stderr and "no-such-model" in bad.stderr


def test_fill_encodes_every_photo_once_so_no_search_pays(library: Library) -> None:
    from photosearch.search.rerank import library_photos

    reranker = open_reranker(library, TEACHER, 5)
    photos = library_photos(library)
    seen: list[tuple[int, int]] = []
    encoded = reranker.fill(photos, batch=6, progress=lambda *done: seen.append(done))
    assert encoded == 16
    assert seen == [(6, 16), (12, 16), (16, 16)] and len(reranker.vectors) == 16
    assert reranker.fill(photos) == 0
    library.settings.use_reranker(reranker)
    library.search(SearchQuery(text="a red photo", k=10))
    assert reranker.encoded == 16  # the search found every vector cached


def test_fill_from_the_command_line(library: Library, models: Path, tmp_path: Path) -> None:
    library.close()
    result = _cli(tmp_path, models, "models", "rerank", TEACHER, "--fill")
    assert result.returncode == 0, result.stderr
    assert "16 photos encoded for re-ranking" in result.stdout
    again = _cli(tmp_path, models, "models", "rerank", TEACHER, "--fill")
    assert "0 photos encoded" in again.stdout


def test_a_saved_re_ranker_that_is_gone_leaves_search_working(
    library: Library, models: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import shutil

    gone = tmp_path / "models2"
    shutil.copytree(models, gone)
    own = Library(library.directory, models_dir=gone, model="tiny", threads=1)
    save_setting(own, TEACHER, 5)
    own.close()
    shutil.rmtree(gone / TEACHER)
    library.settings.use_reranker(None)
    plain = [r.path for r in library.search(SearchQuery(text="blue sky", k=6))]
    again = Library(library.directory, models_dir=gone, model="tiny", threads=1)
    try:
        with caplog.at_level("WARNING"):
            assert [r.path for r in again.search(SearchQuery(text="blue sky", k=6))] == plain
        assert f"not re-ranking with {TEACHER}" in caplog.text
    finally:
        again.close()


def test_a_student_re_ranks_with_its_installed_teacher_until_turned_off(
    tmp_path: Path, models: Path
) -> None:
    from photosearch.models.bundle import TEACHER_BUNDLE
    from photosearch.search.rerank import OFF, reranker_setting

    own = tmp_path / "models"
    shutil.copytree(models, own)
    build_tiny_bundle(own / "student", name="student", seed=5, provenance={TEACHER_BUNDLE: TEACHER})
    build_tiny_bundle(
        own / "orphan", name="orphan", seed=6, provenance={TEACHER_BUNDLE: "not-installed"}
    )
    with Library(tmp_path / "lib", models_dir=own, model="student", threads=1) as library:
        assert reranker_setting(library) == (TEACHER, 50)
        assert library.settings.reranker is not None
        assert library.settings.reranker.name == TEACHER
        save_setting(library, OFF)
    with Library(tmp_path / "lib", models_dir=own, model="student", threads=1) as library:
        assert reranker_setting(library)[0] == OFF  # the user's "off" is kept
        assert library.settings.reranker is None
    with Library(tmp_path / "lib2", models_dir=own, model="orphan", threads=1) as library:
        assert reranker_setting(library)[0] == OFF
    with Library(tmp_path / "lib3", models_dir=own, model="tiny", threads=1) as library:
        assert reranker_setting(library)[0] == OFF  # not a student: nothing to re-rank with


def test_idle_fill_waits_while_busy_then_fills_everything(library: Library) -> None:
    import threading
    import time

    from photosearch.search.rerank import IdleFill, library_photos

    reranker = open_reranker(library, TEACHER, 5)
    busy = threading.Event()
    busy.set()
    fill = IdleFill(
        reranker, lambda: library_photos(library), busy.is_set, batch=4, pause_s=0.05
    ).start()
    time.sleep(0.5)
    assert fill.filled == 0 and len(reranker.vectors) == 0  # busy: nothing encoded
    busy.clear()
    deadline = time.monotonic() + 60
    while not fill.done and time.monotonic() < deadline:
        time.sleep(0.05)
    assert fill.done and fill.filled == 16 and len(reranker.vectors) == 16
    again = IdleFill(reranker, lambda: library_photos(library), lambda: False).start()
    again.stop()
    assert again.filled == 0  # resumable: what is cached is never encoded again
    reranker.close()
