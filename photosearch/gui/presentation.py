"""What the grid shows for a search or the timeline: which photos, under which headers, and
the one-line summary above them. Plain data in and out (no Qt), so the rules are testable.

A search shows its good matches first and says how many ("14 good matches"), then a divider
and at most MORE_RESULTS weaker ones; when nothing is a good match it says so and offers the
CLOSEST few. The count is never "the whole library", and no score is ever shown.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from photosearch.gui.date_groups import date_headers, sort_by_date
from photosearch.gui.grid_layout import Header
from photosearch.search.match_strength import good_match_count
from photosearch.search.query import SearchResult
from photosearch.search.timeline import DatedPhotos

MORE_RESULTS = 100
CLOSEST = 12
SORT_RELEVANCE, SORT_NEWEST, SORT_OLDEST = "relevance", "newest", "oldest"


@dataclass(frozen=True)
class Presentation:
    results: Sequence[SearchResult]
    headers: list[Header] = field(default_factory=list)
    summary: str = ""
    good: int = 0  # good matches among ``results`` (searches only)


def matches_text(count: int) -> str:
    return "1 good match" if count == 1 else f"{count:,} good matches"


def present_search(
    results: Sequence[SearchResult], sort: str, noise: float | None, by_text: bool = True
) -> Presentation:
    """``results`` best first; ``noise`` (see match_strength) applies to text queries only."""
    # a photo matched by its words (fusion's reasons) is a good match whatever it looks like
    top = max((r.score for r in results), default=0.0)
    scores = [top if any(why.words for why in r.reasons) else r.score for r in results]
    good = good_match_count(scores, noise if by_text else None)
    if not results:
        return Presentation([], [], "No photos match these filters")
    if good == 0:
        closest = list(results[:CLOSEST])
        return Presentation(
            closest,
            [Header(0, "No good matches. The closest photos:", "major")],
            "No good matches",
            0,
        )
    matches = list(results[:good])
    if sort in (SORT_NEWEST, SORT_OLDEST):
        ordered = sort_by_date(matches, newest_first=sort == SORT_NEWEST)
        order = "newest first" if sort == SORT_NEWEST else "oldest first"
        return Presentation(
            ordered, date_headers(ordered, by_day=False), f"{matches_text(good)}, {order}", good
        )
    more = list(results[good : good + MORE_RESULTS])
    headers = [Header(0, matches_text(good), "major")]
    if more:
        headers.append(Header(good, "More results (weaker matches)", "divider"))
    return Presentation(matches + more, headers, matches_text(good), good)


def present_timeline(
    photos: Sequence[SearchResult], newest_first: bool, filtered: bool
) -> Presentation:
    """The library by date (``photos`` already ordered), with month and day headers."""
    order = "newest first" if newest_first else "oldest first"
    count = len(photos)
    noun = "photo" if count == 1 else "photos"
    if not count:
        summary = "No photos match these filters" if filtered else "No photos yet"
        return Presentation([], [], summary)
    kept = photos if isinstance(photos, DatedPhotos) else list(photos)  # compact: kept so
    return Presentation(kept, date_headers(photos), f"{count:,} {noun}, {order}")
