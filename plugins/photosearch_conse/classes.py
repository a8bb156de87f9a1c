"""The 1000 ImageNet-1k classes (WordNet lemmas and definitions) and the texts describing them."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

DATA_FILE = Path(__file__).resolve().parent / "data" / "imagenet_classes.tsv"


@dataclass(frozen=True)
class ImageNetClass:
    index: int
    synset: str
    lemmas: tuple[str, ...]  # WordNet synonyms, most common first
    definition: str


@lru_cache(maxsize=1)
def load_classes(path: Path = DATA_FILE) -> tuple[ImageNetClass, ...]:
    """The classes in classifier-output order."""
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        classes = tuple(
            ImageNetClass(
                index=int(row["index"]),
                synset=row["synset"],
                lemmas=tuple(x.strip() for x in row["lemmas"].split(",") if x.strip()),
                definition=row["definition"].strip(),
            )
            for row in reader
        )
    if [c.index for c in classes] != list(range(1000)):
        raise ValueError(f"{path}: expected class indices 0..999 in order")
    return classes


def article(word: str) -> str:
    """'a' or 'an' for a noun phrase, by its first letter (good enough for prompts)."""
    return "an" if word[:1].lower() in "aeiou" else "a"


def fill_prompt(template: str, name: str) -> str:
    """Fill '{name}' (and '{a}', the matching indefinite article) in a prompt template."""
    return template.format(name=name, a=article(name))
