"""The words a photo carries beyond its pixels, in one SQLite FTS5 index (schema v4).

Each photo has at most one row per source: its folder and file names, the place names of its
GPS position, and the text read in it (OCR). The rowid is ``photo_id * 8 + source`` so a
photo's row for a source is replaced or dropped by rowid (FTS5 cannot index a plain column),
and a trigger on ``photos`` drops a deleted photo's rows. Matching ranks by FTS5's BM25, so a
word that is rare in the library counts for more than one that is everywhere.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum

from sqlalchemy import text
from sqlalchemy.orm import Session

ROWS_PER_PHOTO = 8
_WORD = re.compile(r"\w+", re.UNICODE)


class TermSource(IntEnum):
    """Where a photo's words came from; the value is part of the FTS rowid, never renumber."""

    NAME = 0  # folder and file names
    PLACE = 1  # reverse-geocoded place names
    TEXT_IN_PHOTO = 2  # text read in the photo (OCR)


@dataclass(frozen=True)
class TermMatch:
    """One photo's match for one source; lower ``rank`` is better (FTS5 BM25 is negative)."""

    photo_id: int
    source: TermSource
    rank: float


def _rowid(photo_id: int, source: TermSource) -> int:
    return photo_id * ROWS_PER_PHOTO + int(source)


def set_terms(session: Session, photo_id: int, source: TermSource, words: str) -> None:
    """Replace the photo's words for ``source``; empty ``words`` removes the row."""
    rowid = _rowid(photo_id, source)
    session.execute(text("DELETE FROM photo_terms WHERE rowid = :r"), {"r": rowid})
    if words.strip():
        session.execute(
            text("INSERT INTO photo_terms (rowid, text) VALUES (:r, :t)"), {"r": rowid, "t": words}
        )


def drop_terms(
    session: Session, photo_ids: Iterable[int], source: TermSource | None = None
) -> None:
    """Remove the photos' words (all sources, or one)."""
    for photo_id in photo_ids:
        if source is None:
            low = photo_id * ROWS_PER_PHOTO
            session.execute(
                text("DELETE FROM photo_terms WHERE rowid BETWEEN :lo AND :hi"),
                {"lo": low, "hi": low + ROWS_PER_PHOTO - 1},
            )
        else:
            session.execute(
                text("DELETE FROM photo_terms WHERE rowid = :r"), {"r": _rowid(photo_id, source)}
            )


def words_of(photo_id: int, source: TermSource, session: Session) -> str:
    """The stored words of one photo and source ('' when none)."""
    row = session.execute(
        text("SELECT text FROM photo_terms WHERE rowid = :r"), {"r": _rowid(photo_id, source)}
    ).first()
    return row[0] if row else ""


def fts_query(query: str) -> str | None:
    """An FTS5 MATCH expression for free text: every word quoted (no FTS syntax from users),
    any word may match (BM25 ranks photos matching more, and rarer, words higher)."""
    words = [w for w in _WORD.findall(query.lower()) if len(w) > 1 or w.isdigit()]
    if not words:
        return None
    return " OR ".join(f'"{w}"' for w in dict.fromkeys(words))


def match_terms(
    session: Session,
    query: str,
    *,
    limit: int = 1000,
    sources: Iterable[TermSource] | None = None,
) -> list[TermMatch]:
    """Photos whose words match ``query``, best first (one entry per photo and source)."""
    expression = fts_query(query)
    if expression is None:
        return []
    rows = session.execute(
        text(
            "SELECT rowid, bm25(photo_terms) AS score FROM photo_terms "
            "WHERE photo_terms MATCH :q ORDER BY score LIMIT :n"
        ),
        {"q": expression, "n": limit},
    ).all()
    wanted = set(sources) if sources is not None else set(TermSource)
    matches = []
    for rowid, score in rows:
        source = TermSource(rowid % ROWS_PER_PHOTO)
        if source in wanted:
            matches.append(TermMatch(rowid // ROWS_PER_PHOTO, source, float(score)))
    return matches
