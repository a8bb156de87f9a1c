"""One ranking from what a photo looks like and the words it carries (issue 20, item 5).

The model ranks photos by similarity to the query text; the catalog's word index
(``catalog.text_index``) ranks them by their folder and file names, the names of the place
they were taken and the text read in them. In "paris eiffel tower at night" the word "paris"
then counts for the photos of a "2019 Paris trip" folder or taken in Paris, and the pixels for
those that look like a tower at night.

The two rankings are merged by one of two rules, both scale-free so they work the same for
every model bundle whatever its similarity scale: reciprocal rank fusion (Cormack et al., SIGIR
2009), ``1 / (K0 + model rank) + WEIGHT * coverage / (K0 + word rank)``, or a blend of the
model's similarity scaled to 0..1 over its top results plus ``WEIGHT * coverage``. Coverage is
the share of the query's words the photo's words contain, raised to a power, so "paris trip"
matching a folder's name fully moves a photo a lot while a caption sharing one word with a
folder name ("a black dog in the park" and "Dog park") hardly moves it. The rule and its
numbers (CHOSEN) were chosen on the validation queries of the constructed library
(benchmarks/bench_hybrid.py --choose), never on its test queries, keeping only settings under
which plain visual queries do no worse than the model alone.

Every result says why it is there: the words that matched its folder or file name, its place,
the text in it, and "looks like" when the model alone ranks it in the top results.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from photosearch.catalog.text_index import TermSource, match_terms
from photosearch.search.match_reasons import LOOKS, NAME, PLACE, TEXT, MatchReason

if TYPE_CHECKING:
    import sqlite3

    import numpy as np
    from sqlalchemy.orm import Session

    from photosearch.search.query import SearchResult
    from photosearch.vectors.store import VectorStore

MODEL_DEPTH = 200  # how far down the model's ranking fusion reads
WORD_DEPTH = 1000  # how many word matches it reads
_KIND_OF_SOURCE = {TermSource.NAME: NAME, TermSource.PLACE: PLACE, TermSource.TEXT_IN_PHOTO: TEXT}
_WORD = re.compile(r"\w+", re.UNICODE)
# Words that say nothing about which photo is meant; matching them would promote any photo
# whose name or text happens to contain "at" or "the".
STOP_WORDS = frozenset(
    {
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "for",
        "from",
        "has",
        "have",
        "i",
        "in",
        "is",
        "it",
        "its",
        "me",
        "my",
        "of",
        "on",
        "or",
        "our",
        "photo",
        "photos",
        "picture",
        "pictures",
        "show",
        "some",
        "that",
        "the",
        "their",
        "there",
        "these",
        "this",
        "those",
        "to",
        "was",
        "we",
        "were",
        "where",
        "which",
        "while",
        "who",
        "with",
    }
)


@dataclass(frozen=True)
class Fusion:
    """How the two rankings merge. ``method``: "rrf" (reciprocal rank fusion), "blend" (the
    model's similarity scaled to 0..1 over its top MODEL_DEPTH plus ``weight`` times the word
    score relative to the best) or "off" (the model's ranking alone)."""

    method: str = "rrf"
    weight: float = 1.0
    k0: float = 60.0
    unknown: float = 1.0  # how much query words no photo's words contain count in coverage
    power: float = 1.0  # coverage ** power: above 1, a partial word match counts for less

    def coverage(self, evidence: WordEvidence) -> float:
        """The share of the query's words the photo's words contain, to the ``power``. Words
        that no photo's words contain ("tower", "night") are for the model alone; ``unknown``
        says how far they still dilute the others (0: not at all)."""
        unknown = evidence.total - evidence.known
        share = evidence.matched / max(1e-9, evidence.known + self.unknown * unknown)
        return share**self.power


# chosen by `bench_hybrid.py --choose` on the val split of the constructed library, with the
# words the app itself writes (names, places, RapidOCR text): the best mean of P@10 and R@10
# over the query kinds among the settings that keep plain visual queries' P@10 and R@10
CHOSEN = Fusion("blend", weight=6.0, unknown=1.0, power=2.0)


def folded_words(text: str) -> list[str]:
    """Lower-case words without accents, as the word index compares them."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return _WORD.findall(plain)


def word_query(text: str) -> str:
    """The query's words worth looking up in names, places and photo text."""
    return " ".join(w for w in folded_words(text) if w not in STOP_WORDS)


@dataclass(frozen=True)
class WordEvidence:
    """What one photo's words say for a query (see Fusion.coverage). ``strength``: the FTS5
    BM25 of the whole query summed over its sources (higher is better; orders photos of equal
    coverage); ``found``: the query words found per source (the result's reasons)."""

    matched: int  # query words found in this photo's words
    known: int  # query words found in any photo's words
    total: int  # query words (stop words left out)
    strength: float
    found: dict[TermSource, tuple[str, ...]]


def word_evidence(
    reader: Session | sqlite3.Connection,
    text: str,
    *,
    allowed: set[int] | None = None,
    exclude: set[int] | None = None,
) -> dict[int, WordEvidence]:
    """The photos whose names, places or text match words of ``text``, honouring the
    search's filters. One FTS5 lookup per query word (to know which words each photo has)
    and one for the whole query (BM25)."""
    wanted = list(dict.fromkeys(word_query(text).split()))
    if not wanted:
        return {}

    def keep(pid: int) -> bool:
        return (allowed is None or pid in allowed) and not (exclude and pid in exclude)

    found: dict[int, dict[TermSource, list[str]]] = {}
    known = 0
    for word in wanted:
        matches = match_terms(reader, word, limit=WORD_DEPTH)
        known += bool(matches)
        for match in matches:
            if keep(match.photo_id):
                found.setdefault(match.photo_id, {}).setdefault(match.source, []).append(word)
    strength: dict[int, float] = {}
    for match in match_terms(reader, " ".join(wanted), limit=WORD_DEPTH):
        strength[match.photo_id] = strength.get(match.photo_id, 0.0) - match.rank
    evidence = {}
    for pid, sources in found.items():
        words = {w for found_words in sources.values() for w in found_words}
        evidence[pid] = WordEvidence(
            len(words),
            known,
            len(wanted),
            strength.get(pid, 0.0),
            {source: tuple(ws) for source, ws in sorted(sources.items())},
        )
    return evidence


def fuse(
    model: Sequence[tuple[int, float]],
    words: Mapping[int, WordEvidence],
    fusion: Fusion = CHOSEN,
    similarity: Mapping[int, float] | None = None,
) -> list[tuple[int, float]]:
    """Merge the model's ranking (``(photo_id, similarity)`` best first) with the photos'
    word evidence into one ranking of ``(photo_id, fused score)``, best first. A photo's word
    part is scaled by its coverage, so a caption that shares one word with a folder name moves
    little while "paris trip" matching a folder's name fully moves a lot. ``similarity``: the
    model's similarity of word-matched photos outside ``model`` (used by "blend" only)."""
    if fusion.method == "off" or not words:
        return list(model)
    if fusion.method == "rrf":
        fused = {pid: 1.0 / (fusion.k0 + rank) for rank, (pid, _) in enumerate(model, 1)}
        coverage = {pid: fusion.coverage(evidence) for pid, evidence in words.items()}
        ordered = sorted(words, key=lambda pid: (-coverage[pid], -words[pid].strength))
        for rank, pid in enumerate(ordered, 1):
            fused[pid] = fused.get(pid, 0.0) + fusion.weight * coverage[pid] / (fusion.k0 + rank)
    elif fusion.method == "blend":
        fused = _looks(model, similarity or {})
        fused.update({pid: 0.0 for pid in words if pid not in fused})
        for pid, evidence in words.items():
            fused[pid] += fusion.weight * fusion.coverage(evidence)
    else:
        raise ValueError(f"unknown fusion method {fusion.method!r}")
    return sorted(fused.items(), key=lambda item: -item[1])


def _looks(model: Sequence[tuple[int, float]], similarity: Mapping[int, float]) -> dict[int, float]:
    """The model's part of a blend, 0..1: similarity scaled between the list's first and last
    photo (photos outside the list by their own similarity, floored at 0). A list not ordered
    by its scores (a re-ranker re-scored its top with another model's scale) is scaled by rank
    instead, as scores from two models cannot be put on one line."""
    if not model:
        return {}
    scores = [score for _, score in model]
    if any(later > earlier + 1e-6 for earlier, later in itertools.pairwise(scores)):
        return {pid: 1.0 - rank / len(model) for rank, (pid, _) in enumerate(model)}
    top, floor = scores[0], scores[-1]
    span = (top - floor) or 1.0
    looks = {pid: (score - floor) / span for pid, score in model}
    for pid, score in similarity.items():
        looks.setdefault(pid, max(0.0, (score - floor) / span))
    return looks


def fused_search(
    reading: Callable[[], AbstractContextManager[sqlite3.Connection]],
    text: str,
    k: int,
    ranked: Callable[[int], list[SearchResult]],
    fetch: Callable[[list[tuple[int, float]]], list[SearchResult]],
    *,
    allowed: set[int] | None = None,
    exclude: set[int] | None = None,
    store: VectorStore | None = None,
    vector: np.ndarray | None = None,
    fusion: Fusion | None = None,
) -> list[SearchResult]:
    """The top ``k`` for ``text``: the model's ranking (``ranked(depth)``: its top ``depth``
    results, honouring the search's filters) fused with the photos whose words match, each
    with its reasons. ``allowed``/``exclude``: the search's filters, which word matches honour
    too; ``fetch`` turns ``(photo_id, score)`` pairs into results (dropping photos no longer
    present); ``store`` and ``vector`` give word-matched photos outside the model's list their
    real similarity as their score. ``fusion``: CHOSEN (read at call time) unless given.
    ``reading``: the catalog's read connections (``Catalog.reading``). Without any word match
    only the model's top ``k`` is read."""
    fusion = fusion or CHOSEN
    with reading() as connection:
        words = (
            word_evidence(connection, text, allowed=allowed, exclude=exclude)
            if fusion.method != "off"
            else {}
        )
    if not words:
        return [replace(r, reasons=(MatchReason(LOOKS),)) for r in ranked(k)[:k]]
    model_results = ranked(max(k, MODEL_DEPTH))
    model = [(r.photo_id, r.score) for r in model_results]
    in_model = {pid for pid, _ in model}
    similarity = _similarities(store, vector, [p for p in words if p not in in_model])
    order = fuse(model, words, fusion, similarity)[:k]
    by_id = {r.photo_id: r for r in model_results}
    missing = [(pid, similarity.get(pid, 0.0)) for pid, _ in order if pid not in by_id]
    by_id.update({r.photo_id: r for r in fetch(missing)} if missing else {})
    looks = {r.photo_id for r in model_results[:k]}
    results = []
    for pid, _ in order:
        result = by_id.get(pid)
        if result is None:
            continue  # gone since the index was read
        evidence = words.get(pid)
        reasons = [
            MatchReason(_KIND_OF_SOURCE[source], found)
            for source, found in (evidence.found.items() if evidence else ())
        ]
        if pid in looks:
            reasons.append(MatchReason(LOOKS))
        results.append(replace(result, reasons=tuple(reasons)))
    return results


def _similarities(
    store: VectorStore | None, vector: np.ndarray | None, ids: list[int]
) -> dict[int, float]:
    """The model's similarity of the given photos that have a vector."""
    if store is None or vector is None or not ids:
        return {}
    present = store.held(ids)
    if not present:
        return {}
    vectors = store.get_vectors(present)
    return {pid: float(v @ vector) for pid, v in zip(present, vectors, strict=True)}
