"""How good a search's matches are, without showing anyone a cosine number.

Each model has its own score scale, and a rare concept's best match scores lower than a common
one's, so no fixed threshold transfers. Two relative measures decide instead:

- the *relative cut*: scores >= top - MARGIN * (top - median). The median of a long top-k list
  approximates "an unrelated photo" for this query and model, so the cut sits between the best
  match and a typical non-match whatever the scale (the date ordering has always used it);
- the *noise level* of this library and model: what nonsense text ("qwertyuiop", "blorft")
  scores at best here. A text query whose matches do not beat nonsense has no good matches.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence

MARGIN = 0.5
NOISE_PROBES = (
    "qwertyuiop",
    "asdfghjkl",
    "zxcvbnm",
    "xyzzy plugh",
    "lorem ipsum dolor",
    "kjhgf dsalkj",
    "blorft",
    "mnbvc lkjh",
    "ghjkl qwert",
)
NOISE_QUANTILE = 0.75  # of the probes' best scores: most nonsense stays below it


def relevant_cutoff(scores: Sequence[float]) -> float:
    """The lowest score the relative cut keeps (everything, for fewer than 3 results)."""
    if len(scores) < 3:
        return min(scores, default=0.0)
    top = max(scores)
    return top - MARGIN * (top - statistics.median(scores))


def noise_level(best_score_of: Callable[[str], float | None]) -> float | None:
    """The score nonsense text reaches in this library: ``best_score_of(text)`` is the best
    search score for a text (None for an empty library, which makes this None)."""
    tops = [best_score_of(probe) for probe in NOISE_PROBES]
    known = sorted(t for t in tops if t is not None)
    if not known:
        return None
    return known[min(len(known) - 1, round(NOISE_QUANTILE * (len(known) - 1)))]


def good_match_count(scores: Sequence[float], noise: float | None = None) -> int:
    """How many of ``scores`` (best first) are good matches: above the relative cut and, for
    text queries where ``noise`` is known, above what nonsense scores."""
    if not scores:
        return 0
    cut = relevant_cutoff(scores)
    if noise is not None:
        cut = max(cut, noise)
    return sum(1 for score in scores if score >= cut and score > (noise or float("-inf")))
