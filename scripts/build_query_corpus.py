"""Build the training plugin's shipped text corpus from the COCO 2017 val captions.

Writes, deterministically (gzip without a timestamp, so a rebuild is byte-identical):
- resources/corpus/coco_captions_val2017.txt.gz: the 25,014 caption texts as given;
- resources/corpus/coco_query_phrases.txt.gz: short query-style phrases made from them (the
  leading noun phrase, "black honda motorcycle", and the first clause, "a black honda
  motorcycle parked in front of a garage"), deduplicated in order of first appearance,
  because people type short queries, not full captions.

Usage: python scripts/build_query_corpus.py [CAPTIONS_TXT]  (default:
../shared/data/coco-captions/captions_val2017.txt). The texts are CC BY 4.0 (COCO); see
resources/corpus/ATTRIBUTION.md.
"""

from __future__ import annotations

import gzip
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCE = Path("shared") / "data" / "coco-captions" / "captions_val2017.txt"
DEFAULT_SOURCES = (ROOT.parent / SOURCE, ROOT.parents[1] / SOURCE)  # checkout or worktree
OUT = ROOT / "resources" / "corpus"
DETERMINERS = {"a", "an", "the", "two", "three", "four", "several", "some", "many", "one"}
# Words that end a noun phrase: verbs, prepositions, conjunctions, relative pronouns.
STOPS = {
    "is",
    "are",
    "was",
    "were",
    "has",
    "have",
    "sits",
    "sit",
    "stands",
    "stand",
    "that",
    "which",
    "who",
    "while",
    "with",
    "in",
    "on",
    "at",
    "of",
    "near",
    "next",
    "by",
    "from",
    "to",
    "into",
    "onto",
    "under",
    "over",
    "behind",
    "above",
    "beside",
    "inside",
    "outside",
    "and",
    "for",
    "as",
    "up",
    "down",
    "around",
    "through",
    "along",
    "across",
    "against",
    "parked",
    "filled",
    "covered",
    "topped",
    "made",
    "holding",
    "laying",
    "lying",
}
CLAUSE_END = re.compile(r",|;|\bwhile\b|\bas\b|\bwhere\b|\bwho\b|\bwhich\b")


def words_of(caption: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", caption.lower())


def noun_phrase(caption: str) -> str | None:
    """The leading noun phrase without its determiner: "black honda motorcycle"."""
    words = words_of(caption)
    while words and words[0] in DETERMINERS:
        words = words[1:]
    phrase = []
    for word in words:
        if word in STOPS or (word.endswith("ing") and len(word) > 4):
            break
        phrase.append(word)
    return " ".join(phrase) if 1 <= len(phrase) <= 5 else None


def first_clause(caption: str) -> str | None:
    """The caption up to its first comma or subordinate clause, at most 8 words."""
    head = CLAUSE_END.split(caption.lower(), maxsplit=1)[0]
    words = words_of(head)
    return " ".join(words) if 3 <= len(words) <= 8 else None


def phrases(captions: list[str]) -> list[str]:
    seen: dict[str, None] = {}
    for caption in captions:
        for phrase in (noun_phrase(caption), first_clause(caption)):
            if phrase and phrase not in seen:
                seen[phrase] = None
    return list(seen)


def write_gzip(path: Path, lines: list[str]) -> None:
    data = ("\n".join(lines) + "\n").encode("utf-8")
    with path.open("wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as gz:
        gz.write(data)


def main(argv: list[str]) -> int:
    found = [p for p in DEFAULT_SOURCES if p.is_file()]
    if not argv and not found:
        print(f"captions file not found (looked for {SOURCE} beside the checkout); pass it")
        return 2
    source = Path(argv[0]) if argv else found[0]
    captions = [c.strip() for c in source.read_text(encoding="utf-8").splitlines() if c.strip()]
    OUT.mkdir(parents=True, exist_ok=True)
    write_gzip(OUT / "coco_captions_val2017.txt.gz", captions)
    made = phrases(captions)
    write_gzip(OUT / "coco_query_phrases.txt.gz", made)
    print(f"{len(captions)} captions, {len(made)} query phrases -> {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
