"""Result orderings for the grid: by relevance, or by date among the clearly relevant.

Sorting by date must first drop weak matches, or the newest unrelated photo comes first. A
fixed score threshold does not transfer between queries or models (each model has its own
cosine scale, and a rare concept's best match scores lower than a common one's), so the cut is
relative to the result list itself: keep scores >= top - DATE_SORT_MARGIN * (top - median).
The median of a long top-k list approximates "an unrelated photo" for this query and model, so
the cut sits halfway between the best match and a typical non-match, whatever the scale; it is
invariant to any shift or scaling of the scores.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from datetime import datetime

from photosearch.search import SearchResult

DATE_SORT_MARGIN = 0.5


def relevant_cutoff(scores: Sequence[float]) -> float:
    """The lowest score kept by the date ordering (everything, for fewer than 3 results)."""
    if len(scores) < 3:
        return min(scores, default=0.0)
    top = max(scores)
    return top - DATE_SORT_MARGIN * (top - statistics.median(scores))


def by_date(results: Sequence[SearchResult], when: dict[str, datetime] | None = None
            ) -> list[SearchResult]:
    """The relevant results, newest first; undated photos last, by relevance.

    ``when`` may supply a date for photos without a capture time (e.g. file time).
    """
    cutoff = relevant_cutoff([r.score for r in results])
    kept = [r for r in results if r.score >= cutoff]
    when = when or {}

    def date_of(result: SearchResult) -> datetime | None:
        return result.taken_at or when.get(result.path)

    dated = sorted((r for r in kept if date_of(r) is not None), key=date_of, reverse=True)
    undated = [r for r in kept if date_of(r) is None]
    return dated + undated
