"""One ranking from the model and the word index (photosearch.search.fusion), on real libraries."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select

from photosearch.catalog import Catalog, Photo
from photosearch.catalog.text_index import TermSource, drop_terms, set_terms
from photosearch.cli.main import main
from photosearch.search.fusion import (
    LOOKS,
    NAME,
    PLACE,
    TEXT,
    Fusion,
    WordEvidence,
    fuse,
    word_evidence,
    word_query,
)
from photosearch.search.query import SearchQuery
from tests.conftest import make_photo
from tests.support.tiny_bundle import build_tiny_bundle


def _evidence(matched: int, known: int, total: int, strength: float = 1.0) -> WordEvidence:
    return WordEvidence(matched, known, total, strength, {TermSource.NAME: ()})


@pytest.mark.parametrize("method", ["rrf", "blend"])
def test_a_photo_holding_every_query_word_rises_to_the_top(method: str):
    model = [(1, 0.30), (2, 0.29), (3, 0.28), (4, 0.10), (5, 0.05)]
    setting = Fusion(method, weight=1.5, k0=5)
    assert [pid for pid, _ in fuse(model, {5: _evidence(2, 2, 2)}, setting)][0] == 5
    assert fuse(model, {}, setting) == model
    assert fuse(model, {5: _evidence(2, 2, 2)}, Fusion("off")) == model


def test_blend_moves_a_one_word_overlap_less_than_a_full_match():
    model = [(1, 0.30), (2, 0.20), (3, 0.15), (4, 0.10), (5, 0.05)]
    setting = Fusion("blend", weight=1.5)
    # photo 4 holds one of the query's four words: it rises, but not above the best look
    partial = [pid for pid, _ in fuse(model, {4: _evidence(1, 4, 4)}, setting)]
    assert partial == [1, 2, 4, 3, 5]


def test_blend_scales_a_re_ranked_list_by_rank():
    # a full word match rises to the top; a one-word-in-four overlap does not jump the list
    model = [(1, 0.80), (2, 0.70), (3, 0.30), (4, 0.25)]
    setting = Fusion("blend", weight=1.5)
    assert [pid for pid, _ in fuse(model, {4: _evidence(1, 1, 1)}, setting)][0] == 4
    assert [pid for pid, _ in fuse(model, {3: _evidence(1, 4, 4)}, setting)] == [1, 2, 3, 4]
    # re-scored head on a lower scale than the student's tail: the list's order is kept
    reranked = [(2, 0.30), (1, 0.28), (3, 0.45), (4, 0.40)]
    assert [pid for pid, _ in fuse(reranked, {9: _evidence(0, 1, 1)}, setting)][:4] == [2, 1, 3, 4]


def test_words_no_photo_has_count_less_when_unknown_is_lowered():
    # "paris eiffel tower night": only "paris" is in any photo's words
    evidence = _evidence(1, 1, 4)
    assert Fusion(unknown=1.0).coverage(evidence) == pytest.approx(0.25)
    assert Fusion(unknown=0.0).coverage(evidence) == pytest.approx(1.0)


def test_word_query_drops_stop_words_and_accents():
    assert word_query("Photos of the café at Lisboa 2019") == "cafe lisboa 2019"


def _ids(library) -> dict[str, int]:
    with library.catalog.session() as session:
        return {Path(path).name: pid for pid, path in session.execute(select(Photo.id, Photo.path))}


GREEN, BLUE = "IMG_0002.jpg", "IMG_0005.jpg"


@pytest.fixture
def worded(library, tmp_path: Path):
    """Five colour photos; the blue one is in a "2019 Paris trip" folder taken in Paris, the
    green one has "bakery" written in it (words written as the extractors would)."""
    folder = tmp_path / "photos"  # camera names: no colour word in any name
    for number, colour in enumerate(("red", "green", "yellow", "white"), 1):
        make_photo(folder / f"IMG_000{number}.jpg", colour)
    make_photo(folder / "paris" / "IMG_0005.jpg", "blue")
    library.add_folder(folder)
    library.index()
    ids = _ids(library)
    with library.catalog.session() as session:
        set_terms(session, ids[BLUE], TermSource.NAME, "2019 paris trip")
        set_terms(session, ids[BLUE], TermSource.PLACE, "Paris Île-de-France France")
        set_terms(session, ids[GREEN], TermSource.TEXT_IN_PHOTO, "BAKERY open")
        session.commit()
    return library, folder


def test_search_finds_photos_by_their_words_and_says_why(worded):
    library, _ = worded
    results = library.search(SearchQuery(text="paris trip", k=5))
    assert Path(results[0].path).name == BLUE
    reasons = {r.kind: r.words for r in results[0].reasons}
    assert reasons[NAME] == ("paris", "trip")
    assert reasons[PLACE] == ("paris",)
    bakery = library.search(SearchQuery(text="bakery", k=5))
    assert Path(bakery[0].path).name == GREEN
    assert [(r.kind, r.words) for r in bakery[0].reasons if r.kind != LOOKS] == [
        (TEXT, ("bakery",))
    ]
    assert bakery[0].reasons[0].describe() == "text in photo: bakery"


def test_search_without_matching_words_keeps_the_model_order(worded):
    library, _ = worded
    with library.catalog.session() as session:  # scanning indexed "red" from red.jpg's name
        drop_terms(session, _ids(library).values(), TermSource.NAME)
        session.commit()
    vector = library.encoder.encode_texts(["red"])[0]
    alone = [r.path for r in library.search_vector(vector, 5)]
    results = library.search(SearchQuery(text="red", k=5))
    assert [r.path for r in results] == alone
    assert all(
        r.reasons == (next(iter(r.reasons)),) and r.reasons[0].kind == LOOKS for r in results
    )


def test_word_matches_honour_the_search_filters(worded):
    library, folder = worded
    results = library.search(SearchQuery(text="paris", k=5, folder=folder / "paris"))
    assert [Path(r.path).name for r in results] == [BLUE]
    elsewhere = library.search(SearchQuery(text="bakery", k=5, folder=folder / "paris"))
    assert GREEN not in [Path(r.path).name for r in elsewhere]
    with library.catalog.session() as session:
        ids = _ids(library)
        assert set(word_evidence(session, "bakery", exclude={ids[GREEN]})) == set()


def test_cli_prints_reasons_and_json_lists_them(
    tmp_path: Path, photo_dir: Path, capsys: pytest.CaptureFixture
):
    models = tmp_path / "models"
    build_tiny_bundle(models / "tiny")
    common = ["--library", str(tmp_path / "lib"), "--models-dir", str(models), "--model", "tiny"]
    assert main([*common, "folders", "add", str(photo_dir)]) == 0
    assert main([*common, "index"]) == 0
    catalog = Catalog(tmp_path / "lib" / "catalog.sqlite")
    with catalog.session() as session:
        green = session.scalar(select(Photo.id).where(Photo.path.like("%green.jpg")))
        set_terms(session, green, TermSource.TEXT_IN_PHOTO, "BAKERY open")
        session.commit()
    capsys.readouterr()
    assert main([*common, "search", "bakery", "-k", "2"]) == 0
    assert "green.jpg  [text in photo: bakery" in capsys.readouterr().out
    assert main([*common, "search", "bakery", "-k", "2", "--json"]) == 0
    first = json.loads(capsys.readouterr().out)[0]
    assert Path(first["path"]).name == "green.jpg"
    assert {"kind": "text", "words": ["bakery"]} in first["reasons"]
