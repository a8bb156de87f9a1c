"""Why a search result matched: the kinds of evidence and the record each result carries.

Its own module so that ``query`` (whose ``SearchResult`` carries the reasons) and ``fusion``
(which finds them) both import it and neither imports the other.
"""

from __future__ import annotations

from dataclasses import dataclass

NAME, PLACE, TEXT, LOOKS = "name", "place", "text", "looks"
_DESCRIPTION = {
    NAME: "folder/file name",
    PLACE: "place",
    TEXT: "text in photo",
    LOOKS: "looks like",
}


@dataclass(frozen=True)
class MatchReason:
    """Why a photo matched: ``kind`` is name, place, text or looks; ``words`` the query words
    found in that source (empty for looks)."""

    kind: str
    words: tuple[str, ...] = ()

    def describe(self) -> str:
        label = _DESCRIPTION.get(self.kind, self.kind)
        return f"{label}: {' '.join(self.words)}" if self.words else label

    def as_json(self) -> dict[str, object]:
        return {"kind": self.kind, "words": list(self.words)}
