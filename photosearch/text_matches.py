"""Photos whose text in the photo holds every word of a text query, put first in the results.

The simplest way to make ``search`` find a photo by the words on it: the model alone cannot
read. A stand-in for the fused ranking of issue 20 (model similarity fused with every lexical
match), which replaces ``put_text_matches_first`` when it lands; kept to this one module and
one call in ``Library.search``.
"""

from __future__ import annotations

import re

from sqlalchemy import text
from sqlalchemy.orm import Session

from photosearch.catalog.text_index import ROWS_PER_PHOTO, TermSource

_WORD = re.compile(r"\w+", re.UNICODE)


def photos_with_all_words(session: Session, query: str, limit: int) -> list[int]:
    """Ids of photos whose read text contains every word of ``query``, best BM25 first."""
    words = list(dict.fromkeys(w for w in _WORD.findall(query.lower()) if len(w) > 1))
    if not words:
        return []
    expression = " AND ".join(f'"{w}"' for w in words)
    rows = session.execute(
        text("SELECT rowid FROM photo_terms WHERE photo_terms MATCH :q "
             "AND rowid % :n = :source ORDER BY bm25(photo_terms) LIMIT :k"),
        {"q": expression, "n": ROWS_PER_PHOTO, "source": int(TermSource.TEXT_IN_PHOTO),
         "k": limit},
    ).scalars().all()
    return [int(rowid) // ROWS_PER_PHOTO for rowid in rows]


def put_text_matches_first(results: list, matched: list, k: int) -> list:
    """``matched`` (results for the text matches, best first) ahead of the model's ``results``,
    without repeats, cut to ``k``."""
    seen = {r.photo_id for r in matched}
    return (matched + [r for r in results if r.photo_id not in seen])[:k]
