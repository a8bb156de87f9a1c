"""Searching: query parsing, the query vector, filters, ranking and the result list.

``run_search`` is the whole path: parse, encode, combine, filter (``allowed_ids``), rank in
the vector store, re-rank, and attach file facts (``build_results``).

A query vector is the normalised mean of its positive parts (the text, a liked photo) minus
``NEGATIVE_WEIGHT`` times each negative term's vector. Ranking by the dot product with that one
vector is the same as ranking by "similarity to what you want minus similarity to what you
don't", and it needs a single index lookup.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from pathlib import Path
from typing import Protocol

import numpy as np

from photosearch.catalog import Catalog
from photosearch.catalog.reads import present_photo_id, result_rows
from photosearch.errors import EmptyQuery, InvalidQuery, ModelMismatch
from photosearch.models.runtime import Encoder
from photosearch.search.dates import DateFilter, find_dates
from photosearch.search.match_reasons import MatchReason
from photosearch.search.places import place_label
from photosearch.vectors.store import VectorStore

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
    dates: DateFilter | None = None  # a date typed in the query (photosearch.search.dates)
    place: str | None = None  # a place name (photosearch.search.places)
    # False: near-duplicates fold into one result (photosearch.search.duplicates)
    all_copies: bool = False

    @property
    def has_filters(self) -> bool:
        return any(
            v is not None
            for v in (self.folder, self.after, self.before, self.camera, self.dates, self.place)
        )


@dataclass(frozen=True, slots=True)
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
    place: str | None = None  # "Lisbon, Portugal", from the photo's GPS position
    reasons: tuple[MatchReason, ...] = ()  # why it matched (found by photosearch.search.fusion)
    similar: tuple[str, ...] = ()  # paths of near-duplicates folded into this result

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
                "UTF-8 terminal"
            ) from None
    parsed = parse_query_text(query.text)
    if not parsed.positive and query.like is None:
        if parsed.negatives or query.negatives:
            raise EmptyQuery(
                "a query of only excluded terms matches nothing in particular: say what to find "
                'as well (e.g. "beach -people"), or give --like PHOTO'
            )
        raise EmptyQuery("give some text to search for, or --like PHOTO")
    return parsed


def combine_query(positives: list[np.ndarray], negatives: list[np.ndarray]) -> np.ndarray:
    """One unit query vector from positive and negative unit vectors."""
    if not positives:
        raise EmptyQuery("a search needs some text or a photo to search by")
    vector = np.mean(np.stack(positives), axis=0)
    for negative in negatives:
        vector = vector - NEGATIVE_WEIGHT * negative
    norm = float(np.linalg.norm(vector))
    return (vector / norm if norm > 0 else vector).astype(np.float32)


# --- running a search -----------------------------------------------------------------------


class QueryModel(Protocol):
    """What a search needs of the library's model (``ActiveModel`` has it)."""

    @property
    def name(self) -> str: ...
    @property
    def encoder(self) -> Encoder: ...
    @property
    def store(self) -> VectorStore: ...


class ResultReranker(Protocol):
    """Re-scores the top ``depth`` results of a text search (``photosearch.search.rerank``)."""

    depth: int

    def rerank(self, texts: list[str], results: list[SearchResult]) -> list[SearchResult]: ...


@dataclass(frozen=True)
class PreparedQuery:
    """A query turned into one vector (``combine_query``), with what the later steps need."""

    vector: np.ndarray
    texts: list[str]  # the positive text (if any), then the negative terms
    positive: str  # the positive text ("" for a search by example photo alone)
    exclude: set[int]  # the example photo itself, when it is in the library
    text_only: bool  # text without an example photo: re-ranking and word fusion apply


def prepare_query(catalog: Catalog, model: QueryModel, query: SearchQuery) -> PreparedQuery:
    """Encode a query's text (with negative terms) and liked photo into one query vector."""
    parsed = parse_query_text(query.text)
    negatives = list(parsed.negatives) + list(query.negatives)
    texts = ([parsed.positive] if parsed.positive else []) + negatives
    text_vectors = list(model.encoder.encode_texts(texts)) if texts else []
    positives = text_vectors[:1] if parsed.positive else []
    exclude: set[int] = set()
    if query.like is not None:
        vector, own_id = like_vector(catalog, model, query.like)
        positives.append(vector)
        if own_id is not None:
            exclude.add(own_id)
    vector = combine_query(positives, text_vectors[len(text_vectors) - len(negatives) :])
    return PreparedQuery(
        vector, texts, parsed.positive, exclude, bool(parsed.positive) and query.like is None
    )


def search_vector(
    catalog: Catalog,
    model: QueryModel,
    vector: np.ndarray,
    k: int,
    filters: SearchQuery | None = None,
    exclude: set[int] | None = None,
    *,
    saved_model: str | None = None,
) -> list[SearchResult]:
    """Top-k photos for a ready query vector, within the filters, leaving out ``exclude``."""
    store = model.store
    if len(store) == 0:
        check_other_models(catalog, model, saved_model or model.name)
        return []
    allowed = allowed_ids(catalog, filters) if filters and filters.has_filters else None
    if exclude:
        allowed = (allowed if allowed is not None else store.live_ids()) - exclude
    return build_results(catalog, store.search(vector, k, allowed))


def allowed_ids(catalog: Catalog, query: SearchQuery) -> set[int]:
    """Ids of the photos a query's filters let through (the place new filters go)."""
    # filters are SQLAlchemy conditions: imported here, so a plain search never loads it
    from photosearch.catalog.queries import filtered_photo_ids
    from photosearch.search.dates import photo_date_condition
    from photosearch.search.places import place_condition

    folder = str(query.folder.expanduser().resolve()) if query.folder is not None else None
    conditions = []
    if query.dates is not None:  # a date typed in the query
        conditions.append(photo_date_condition(query.dates))
    if query.place is not None:  # the Places filter
        conditions.append(place_condition(query.place))
    return filtered_photo_ids(
        catalog,
        folder=folder,
        after=query.after,
        before=query.before,
        camera=query.camera,
        conditions=conditions,
    )


def like_vector(catalog: Catalog, model: QueryModel, path: Path) -> tuple[np.ndarray, int | None]:
    """The query vector of an example photo, and its id when it is in the library (its saved
    vector is used then, and the caller leaves it out of the results)."""
    from photosearch.files.imaging import decode_for_model  # Pillow: a --like search's cost

    resolved = str(path.expanduser().resolve())
    own_id = present_photo_id(catalog, [resolved, str(path)])
    if own_id is not None and own_id in model.store.live_ids():
        return model.store.get_vectors([own_id])[0], own_id
    decoded = decode_for_model(Path(resolved), model.encoder.config.preprocessing)
    return model.encoder.encode_images(decoded.pixels[None])[0], own_id


def check_other_models(catalog: Catalog, model: QueryModel, saved_model: str) -> None:
    """An empty vector set while other models have vectors: raise ModelMismatch saying what
    would fix it. ``saved_model`` differs from ``model.name`` under ``--model``."""
    from photosearch.catalog.queries import vectors_per_model

    identity = model.encoder.identity
    others = vectors_per_model(catalog, except_identity=identity)
    if not others:
        return
    names = ", ".join(f"{other} ({count} photos)" for other, count in others.items())
    if model.name != saved_model:  # --model for this command only
        hint = (
            f"`photosearch models use {model.name}` switches the library to it (searches "
            f"keep using {saved_model} until its vectors cover the library), or `photosearch "
            f"--model {model.name} index` encodes the photos for it now"
        )
    else:
        hint = (
            "run `photosearch index` to encode the photos with it (searches answer once "
            "that is done)"
        )
    raise ModelMismatch(
        f"this library was indexed with {names}, not with the model {model.name} "
        f"({identity}); {hint}"
    )


def build_results(catalog: Catalog, hits: list[tuple[int, float]]) -> list[SearchResult]:
    """Attach each hit's file facts, in rank order; hits deleted by another process since
    the graph was loaded are dropped."""
    if not hits:
        return []
    rows = result_rows(catalog, [pid for pid, _ in hits])
    results = []
    for pid, score in hits:
        row = rows.get(pid)
        if row is None:
            continue
        _, path, width, height, taken_at, camera, file_time, *place = row
        results.append(
            SearchResult(
                pid, path, score, width, height, taken_at, camera, file_time, place_label(*place)
            )
        )
    return results


def with_dates(query: SearchQuery, today: date | None = None) -> SearchQuery:
    """``query`` with the date phrase of its text moved into ``query.dates``. The model gets
    the rest of the text, or the phrase itself when nothing else is left to search by (then
    it ranks the photos of that period by how well they fit "christmas 2019")."""
    if query.dates is not None:
        return query
    found = find_dates(query.text, today)
    if found.dates is None:
        return query
    text = found.text
    if not parse_query_text(text).positive and query.like is None:
        text = f"{found.dates.phrase} {text}".strip()
    return replace(query, text=text, dates=found.dates)
