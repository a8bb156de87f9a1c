"""The words a photo carries beyond its pixels, in one SQLite FTS5 index (schema v4).

Each photo has at most one row per source: its folder and file names, the place names of its
GPS position, and the text read in it (OCR). The rowid is ``photo_id * 8 + source`` so a
photo's row for a source is replaced or dropped by rowid (FTS5 cannot index a plain column),
and a trigger on ``photos`` drops a deleted photo's rows. Matching ranks by FTS5's BM25, so a
word that is rare in the library counts for more than one that is everywhere.

Reads take a ``Catalog.reading`` connection (a search: no SQLAlchemy) or a session (inside a
unit of work); writes take a session.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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


def _execute(session: Session, sql: str, parameters: dict[str, Any]) -> None:
    from sqlalchemy import text  # loaded already wherever photos are written

    session.execute(text(sql), parameters)


def _read(reader: Session | sqlite3.Connection, sql: str, parameters: dict) -> Sequence[tuple]:
    if isinstance(reader, sqlite3.Connection):
        return reader.execute(sql, parameters).fetchall()
    from sqlalchemy import text

    return reader.execute(text(sql), parameters).all()


def set_terms(session: Session, photo_id: int, source: TermSource, words: str) -> None:
    """Replace the photo's words for ``source``; empty ``words`` removes the row."""
    rowid = _rowid(photo_id, source)
    _execute(session, "DELETE FROM photo_terms WHERE rowid = :r", {"r": rowid})
    if words.strip():
        _execute(
            session,
            "INSERT INTO photo_terms (rowid, text) VALUES (:r, :t)",
            {"r": rowid, "t": words},
        )


def drop_terms(
    session: Session, photo_ids: Iterable[int], source: TermSource | None = None
) -> None:
    """Remove the photos' words (all sources, or one)."""
    for photo_id in photo_ids:
        if source is None:
            low = photo_id * ROWS_PER_PHOTO
            _execute(
                session,
                "DELETE FROM photo_terms WHERE rowid BETWEEN :lo AND :hi",
                {"lo": low, "hi": low + ROWS_PER_PHOTO - 1},
            )
        else:
            _execute(
                session, "DELETE FROM photo_terms WHERE rowid = :r", {"r": _rowid(photo_id, source)}
            )


def words_of(photo_id: int, source: TermSource, reader: Session | sqlite3.Connection) -> str:
    """The stored words of one photo and source ('' when none)."""
    rows = _read(
        reader, "SELECT text FROM photo_terms WHERE rowid = :r", {"r": _rowid(photo_id, source)}
    )
    return rows[0][0] if rows else ""


def fts_query(query: str) -> str | None:
    """An FTS5 MATCH expression for free text: every word quoted (no FTS syntax from users),
    any word may match (BM25 ranks photos matching more, and rarer, words higher)."""
    words = [w for w in _WORD.findall(query.lower()) if len(w) > 1 or w.isdigit()]
    if not words:
        return None
    return " OR ".join(f'"{w}"' for w in dict.fromkeys(words))


def match_terms(
    reader: Session | sqlite3.Connection,
    query: str,
    *,
    limit: int = 1000,
    sources: Iterable[TermSource] | None = None,
) -> list[TermMatch]:
    """Photos whose words match ``query``, best first (one entry per photo and source)."""
    expression = fts_query(query)
    if expression is None:
        return []
    rows = _read(
        reader,
        "SELECT rowid, bm25(photo_terms) AS score FROM photo_terms "
        "WHERE photo_terms MATCH :q ORDER BY score LIMIT :n",
        {"q": expression, "n": limit},
    )
    wanted = set(sources) if sources is not None else set(TermSource)
    matches = []
    for rowid, score in rows:
        source = TermSource(rowid % ROWS_PER_PHOTO)
        if source in wanted:
            matches.append(TermMatch(rowid // ROWS_PER_PHOTO, source, float(score)))
    return matches
