"""Searching: query text parsing, negative terms, query by photo, filters, model mismatch."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from photosearch.errors import EmptyQuery, ModelMismatch
from photosearch.library.facade import Library
from photosearch.search.query import NEGATIVE_WEIGHT, SearchQuery, combine_query, parse_query_text
from tests.conftest import make_photo

EXIF_IFD, DATETIME_ORIGINAL, MAKE, MODEL = 0x8769, 36867, 271, 272


@pytest.mark.parametrize(
    ("text", "positive", "negatives"),
    [
        ('beach -people -"red car"', "beach", ("people", "red car")),
        ("t-shirt", "t-shirt", ()),
        ("x-ray of a dog -cat", "x-ray of a dog", ("cat",)),
        ("-night", "", ("night",)),
        ("  sunset   over   sea ", "sunset over sea", ()),
        ("well-known place", "well-known place", ()),
    ],
)
def test_parse_query_text(text: str, positive: str, negatives: tuple[str, ...]):
    parsed = parse_query_text(text)
    assert parsed.positive == positive
    assert parsed.negatives == negatives


def test_combine_query():
    a = np.asarray([1.0, 0.0, 0.0], np.float32)
    b = np.asarray([0.0, 1.0, 0.0], np.float32)
    assert np.allclose(combine_query([a], []), a)
    both = combine_query([a, b], [])
    assert np.allclose(both, np.asarray([1, 1, 0]) / np.sqrt(2))
    negated = combine_query([a], [b])
    expected = np.asarray([1.0, -NEGATIVE_WEIGHT, 0.0])
    assert np.allclose(negated, expected / np.linalg.norm(expected))
    assert np.isclose(np.linalg.norm(negated), 1.0)
    with pytest.raises(EmptyQuery):
        combine_query([], [b])


def _rank(results, name: str) -> int:
    return [Path(r.path).name for r in results].index(name)


def test_negative_term_pushes_matching_photos_down(library, photo_dir):
    library.add_folder(photo_dir)
    library.index()
    plain = library.search(SearchQuery(text="red", k=5))
    negated = library.search(SearchQuery(text="red -yellow", k=5))
    via_option = library.search(SearchQuery(text="red", negatives=("yellow",), k=5))
    assert _rank(plain, "red.jpg") == _rank(negated, "red.jpg") == 0
    assert _rank(negated, "yellow.jpg") > _rank(plain, "yellow.jpg")
    assert [r.path for r in negated] == [r.path for r in via_option]
    yellow_score = {Path(r.path).name: r.score for r in plain}["yellow.jpg"]
    assert {Path(r.path).name: r.score for r in negated}["yellow.jpg"] < yellow_score


def test_like_a_library_photo_excludes_itself_and_ranks_similar_colour_first(library, photo_dir):
    Image.new("RGB", (64, 48), (180, 40, 30)).save(photo_dir / "darkred.jpg")
    library.add_folder(photo_dir)
    library.index()
    results = library.search(SearchQuery(like=photo_dir / "red.jpg", k=10))
    names = [Path(r.path).name for r in results]
    assert "red.jpg" not in names
    assert names[0] == "darkred.jpg"
    assert len(names) == 5


def test_like_a_photo_outside_the_library(library, photo_dir, tmp_path):
    library.add_folder(photo_dir)
    library.index()
    outside = make_photo(tmp_path / "elsewhere" / "query.png", "blue")
    results = library.search(SearchQuery(like=outside, k=2))
    assert Path(results[0].path).name == "blue.jpg"


def test_text_and_like_combined(library, photo_dir):
    library.add_folder(photo_dir)
    library.index()
    results = library.search(SearchQuery(text="green", like=photo_dir / "blue.jpg", k=5))
    assert Path(results[0].path).name == "green.jpg"
    assert "blue.jpg" not in [Path(r.path).name for r in results]


def test_folder_filter(library, photo_dir):
    library.add_folder(photo_dir)
    library.index()
    results = library.search(SearchQuery(text="red", folder=photo_dir / "sub", k=10))
    assert [Path(r.path).name for r in results] == ["white.png"]
    # a folder name that is a prefix of another must not match it
    make_photo(photo_dir / "sub2" / "red2.jpg", "red")
    library.index()
    results = library.search(SearchQuery(text="red", folder=photo_dir / "sub", k=10))
    assert [Path(r.path).name for r in results] == ["white.png"]


def _exif_photo(
    path: Path,
    colour: tuple[int, int, int],
    taken: str | None = None,
    make: str | None = None,
    model: str | None = None,
) -> Path:
    exif = Image.Exif()
    if taken:
        exif.get_ifd(EXIF_IFD)[DATETIME_ORIGINAL] = taken
    if make:
        exif[MAKE] = make
    if model:
        exif[MODEL] = model
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (40, 30), colour).save(path, exif=exif)
    return path


@pytest.fixture
def dated_library(library: Library, tmp_path: Path) -> Library:
    folder = tmp_path / "dated"
    _exif_photo(folder / "2019.jpg", (230, 20, 20), "2019:06:01 12:00:00", "Canon", "Canon EOS 80D")
    _exif_photo(folder / "2021.jpg", (220, 30, 20), "2021:03:15 08:00:00", "FUJIFILM", "X-T3")
    _exif_photo(folder / "2023.jpg", (210, 20, 40), "2023:12:31 23:59:00")
    no_exif = make_photo(folder / "mtime.jpg", "red")
    stamp = datetime(2020, 5, 5, 10, 0).timestamp()
    os.utime(no_exif, (stamp, stamp))  # no EXIF: the file time counts
    library.add_folder(folder)
    library.index()
    return library


def _names(library: Library, **filters) -> set[str]:
    return {Path(r.path).name for r in library.search(SearchQuery(text="red", k=10, **filters))}


def test_date_filters(dated_library: Library):
    assert _names(dated_library) == {"2019.jpg", "2021.jpg", "2023.jpg", "mtime.jpg"}
    assert _names(dated_library, after=datetime(2020, 1, 1)) == {
        "mtime.jpg",
        "2021.jpg",
        "2023.jpg",
    }
    assert _names(dated_library, before=datetime(2021, 1, 1)) == {"2019.jpg", "mtime.jpg"}
    assert _names(dated_library, after=datetime(2020, 1, 1), before=datetime(2022, 1, 1)) == {
        "mtime.jpg",
        "2021.jpg",
    }
    assert _names(dated_library, after=datetime(2030, 1, 1)) == set()


def test_camera_filter(dated_library: Library):
    assert _names(dated_library, camera="canon") == {"2019.jpg"}
    assert _names(dated_library, camera="X-T3") == {"2021.jpg"}
    assert _names(dated_library, camera="fuji") == {"2021.jpg"}
    assert _names(dated_library, camera="Leica") == set()


def test_results_carry_metadata(dated_library: Library):
    (result,) = dated_library.search(SearchQuery(text="red", k=1, camera="Canon"))
    assert result.taken_at == datetime(2019, 6, 1, 12, 0)
    assert result.camera == "Canon EOS 80D"
    assert (result.width, result.height) == (40, 30)
    assert -1.0 <= result.score <= 1.0


def test_a_library_never_switched_searches_with_the_model_that_made_its_vectors(
    tmp_path: Path, registry, photo_dir: Path, monkeypatch: pytest.MonkeyPatch
):
    """No model recorded (never `models use`): the one model whose vectors it holds, without
    asking the plugins for their default (every package's entry points: 20-35 ms of a cold
    search); a library with no vectors yet takes the default."""
    with Library(tmp_path / "lib", registry=registry, model="tiny2") as library:
        library.add_folder(photo_dir)
        library.index()
    asked: list[str] = []
    offers = registry.providers["tiny"].offers
    monkeypatch.setattr(registry.providers["tiny"], "offers", lambda: asked.append("") or offers())
    with Library(tmp_path / "lib", registry=registry) as library:
        assert library.model_name == "tiny2"
        assert len(library.search(SearchQuery(text="red", k=2))) == 2
    assert asked == []
    with Library(tmp_path / "new", registry=registry) as library:
        assert library.model_name == "tiny"
    assert asked


def test_empty_library_returns_nothing(library):
    assert library.search(SearchQuery(text="red")) == []


def test_model_mismatch(tmp_path: Path, registry, photo_dir):
    with Library(tmp_path / "lib", registry=registry, model="tiny") as library:
        library.add_folder(photo_dir)
        library.index()
    with Library(tmp_path / "lib", registry=registry, model="tiny2") as library:
        with pytest.raises(ModelMismatch) as caught:
            library.search(SearchQuery(text="red"))
        message = str(caught.value)
        assert "tiny@" in message and "photosearch models use tiny2" in message
        assert "5 photos" in message
        library.index()  # encoding with the new model resolves it
        assert len(library.search(SearchQuery(text="red", k=3))) == 3
        assert library.status().other_models  # the first model's vectors are kept
