"""The FTS5 word index of schema v4, on a real catalog file."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from photosearch.catalog import Catalog, Folder, Photo
from photosearch.catalog.text_index import (
    TermSource,
    drop_terms,
    fts_query,
    match_terms,
    set_terms,
    words_of,
)


def _photo(session, folder: Folder, name: str) -> int:
    now = datetime(2024, 1, 1)
    photo = Photo(
        folder=folder,
        path=f"{folder.path}/{name}",
        size=1,
        mtime_ns=1,
        content_hash=name,
        file_time=now,
        added_at=now,
    )
    session.add(photo)
    session.flush()
    return photo.id


def test_words_are_matched_ranked_replaced_and_dropped_with_their_photo(tmp_path):
    catalog = Catalog(tmp_path / "catalog.sqlite")
    with catalog.session() as session:
        folder = Folder(path=str(tmp_path), added_at=datetime(2024, 1, 1))
        session.add(folder)
        paris = _photo(session, folder, "a.jpg")
        receipt = _photo(session, folder, "b.jpg")
        set_terms(session, paris, TermSource.NAME, "2019 paris trip img 0412")
        set_terms(session, paris, TermSource.PLACE, "Paris Île-de-France France")
        set_terms(session, receipt, TermSource.TEXT_IN_PHOTO, "IKEA receipt total 49.99")
        session.commit()

    with catalog.session() as session:
        hits = match_terms(session, "Paris trip")
        assert {(h.photo_id, h.source) for h in hits} == {
            (paris, TermSource.NAME),
            (paris, TermSource.PLACE),
        }
        assert hits[0].source is TermSource.NAME  # two matched words beat one
        # diacritics folded, case ignored, FTS syntax in user text is inert
        assert [h.photo_id for h in match_terms(session, 'ile "de" AND NOT(')] == [paris]
        assert [h.photo_id for h in match_terms(session, "ikea")] == [receipt]
        assert match_terms(session, "ikea", sources=[TermSource.NAME]) == []
        set_terms(session, receipt, TermSource.TEXT_IN_PHOTO, "router wifi password")
        assert match_terms(session, "ikea") == []
        assert words_of(receipt, TermSource.TEXT_IN_PHOTO, session) == "router wifi password"
        drop_terms(session, [paris], TermSource.PLACE)
        assert {h.source for h in match_terms(session, "paris")} == {TermSource.NAME}
        session.delete(session.get(Photo, paris))
        session.commit()

    with catalog.session() as session:
        assert match_terms(session, "paris") == []
        assert session.scalars(select(Photo.id)).all() == [receipt]
    assert fts_query("  ,;  ") is None
