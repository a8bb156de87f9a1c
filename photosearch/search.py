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


def combine_query(
    positives: list[np.ndarray], negatives: list[np.ndarray]
) -> np.ndarray:
    """One unit query vector from positive and negative unit vectors."""
    if not positives:
        raise ValueError("a search needs some text or a photo to search by")
    vector = np.mean(np.stack(positives), axis=0)
    for negative in negatives:
        vector = vector - NEGATIVE_WEIGHT * negative
    norm = float(np.linalg.norm(vector))
    return (vector / norm if norm > 0 else vector).astype(np.float32)
