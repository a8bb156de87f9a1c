"""Query parsing and ranking: text with negative terms, query by image, and filters.

A query vector is the normalised mean of its positive parts (the text, a liked photo) minus
``NEGATIVE_WEIGHT`` times each negative term's vector. Ranking by the dot product with that one
vector is the same as ranking by "similarity to what you want minus similarity to what you
don't", and it needs a single index lookup.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from photosearch.errors import EmptyQuery, InvalidQuery

if TYPE_CHECKING:  # numpy is imported when a vector is made: the CLI checks a query without it
    import numpy as np

NEGATIVE_WEIGHT = 0.5
_NEGATIVE = re.compile(r'(?:^|\s)-(?:"([^"]+)"|(\S+))')


@dataclass(frozen=True)
class SearchQuery:
    """Everything a search can ask for. Empty ``text`` with ``like`` searches by image alone."""

    text: str = ""
    negatives: tuple[str, ...] = ()
    like: Path | None = None
    k: int = 20
    folder: Path | None = None
    after: datetime | None = None
    before: datetime | None = None
    camera: str | None = None

    @property
    def has_filters(self) -> bool:
        return any(v is not None for v in (self.folder, self.after, self.before, self.camera))


@dataclass(frozen=True)
class SearchResult:
    """One ranked photo, as plain data for the CLI and GUI."""

    photo_id: int
    path: str
    score: float
    width: int | None = None
    height: int | None = None
    taken_at: datetime | None = None
    camera: str | None = None
    file_time: datetime | None = None  # the file's own date, shown for photos without one

    @property
    def shown_date(self) -> datetime | None:
        """The date a photo is sorted, filtered and shown by: capture time, else file time."""
        return self.taken_at or self.file_time


@dataclass(frozen=True)
class ParsedText:
    positive: str
    negatives: tuple[str, ...] = field(default_factory=tuple)


def parse_query_text(text: str) -> ParsedText:
    """Split ``beach -people -"red car"`` into the positive text and its negative terms.

    Only a leading dash marks a negative, so "t-shirt" and "x-ray" stay intact.
    """
    negatives = tuple(
        (quoted or word).strip() for quoted, word in _NEGATIVE.findall(text) if quoted or word
    )
    positive = _NEGATIVE.sub(" ", text)
    return ParsedText(" ".join(positive.split()), negatives)


def check_query(query: SearchQuery) -> ParsedText:
    """Parse a query's text and refuse what cannot be searched, before any model is loaded.

    Raises EmptyQuery when there is nothing to search for (no text, only spaces, or only
    negative terms, and no example photo), InvalidQuery for text that is not valid Unicode
    (bytes that are not UTF-8 on the command line) or a result count below 1.
    """
    if query.k < 1:
        raise InvalidQuery(f"the number of results must be at least 1, not {query.k}")
    for text in (query.text, *query.negatives):
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            shown = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
            raise InvalidQuery(
                f'the query "{shown}" has bytes that are not UTF-8 text; type it again in a '
                'UTF-8 terminal') from None
    parsed = parse_query_text(query.text)
    if not parsed.positive and query.like is None:
        if parsed.negatives or query.negatives:
            raise EmptyQuery(
                "a query of only excluded terms matches nothing in particular: say what to find "
                'as well (e.g. "beach -people"), or give --like PHOTO')
        raise EmptyQuery("give some text to search for, or --like PHOTO")
    return parsed


def combine_query(
    positives: list[np.ndarray], negatives: list[np.ndarray]
) -> np.ndarray:
    """One unit query vector from positive and negative unit vectors."""
    import numpy as np

    if not positives:
        raise EmptyQuery("a search needs some text or a photo to search by")
    vector = np.mean(np.stack(positives), axis=0)
    for negative in negatives:
        vector = vector - NEGATIVE_WEIGHT * negative
    norm = float(np.linalg.norm(vector))
    return (vector / norm if norm > 0 else vector).astype(np.float32)
