"""VLDeformer-style text hard negatives, offline: swap nouns for other objects of the same kind
and words for their antonyms (each eligible word with probability 0.5, at least one), using a
small built-in word list instead of WordNet."""

from __future__ import annotations

import random
import re

# Interchangeable nouns: a caption about a dog becomes one about a cat.
_GROUPS = (
    ("man", "woman", "boy", "girl", "child", "baby", "person"),
    ("men", "women", "boys", "girls", "children", "people"),
    ("dog", "cat", "horse", "bird", "cow", "sheep", "bear", "elephant", "giraffe", "zebra"),
    ("dogs", "cats", "horses", "birds", "cows", "sheep", "bears", "elephants"),
    ("red", "blue", "green", "black", "white", "yellow", "brown", "pink", "orange", "purple"),
    ("ball", "frisbee", "kite", "stick", "bag", "hat", "umbrella", "skateboard", "surfboard"),
    ("car", "bus", "truck", "bicycle", "bike", "motorcycle", "boat", "train", "plane"),
    ("beach", "street", "field", "park", "forest", "mountain", "snow", "road", "river", "lake"),
    ("water", "grass", "sand", "rock", "mud", "ice", "dirt"),
    ("shirt", "jacket", "dress", "coat", "helmet", "uniform"),
    ("table", "bench", "bed", "chair", "couch", "fence", "wall"),
)
# Antonyms (both directions).
_ANTONYMS = (
    ("big", "small"),
    ("large", "small"),
    ("young", "old"),
    ("up", "down"),
    ("in", "out"),
    ("wet", "dry"),
    ("standing", "sitting"),
    ("running", "walking"),
    ("day", "night"),
    ("open", "closed"),
    ("inside", "outside"),
    ("tall", "short"),
    ("long", "short"),
    ("empty", "full"),
    ("happy", "sad"),
    ("front", "back"),
    ("left", "right"),
    ("on", "off"),
    ("top", "bottom"),
    ("jumping", "lying"),
    ("smiling", "frowning"),
    ("light", "dark"),
)


def _swap_table() -> dict[str, tuple[str, ...]]:
    table: dict[str, list[str]] = {}
    for group in _GROUPS:
        for word in group:
            table.setdefault(word, []).extend(w for w in group if w != word)
    for a, b in _ANTONYMS:
        table.setdefault(a, []).append(b)
        table.setdefault(b, []).append(a)
    return {w: tuple(dict.fromkeys(alts)) for w, alts in table.items()}


SWAPS = _swap_table()
_WORD = re.compile(r"[A-Za-z]+")


def swap_words(caption: str, rng: random.Random, ratio: float = 0.5) -> str | None:
    """A hard-negative version of ``caption``, or None when no word of it can be swapped."""
    spans = [m for m in _WORD.finditer(caption) if m.group().lower() in SWAPS]
    if not spans:
        return None
    chosen = [m for m in spans if rng.random() < ratio] or [rng.choice(spans)]
    pieces, last = [], 0
    for match in chosen:
        word = match.group()
        new = rng.choice(SWAPS[word.lower()])
        pieces += [caption[last : match.start()], new.capitalize() if word[0].isupper() else new]
        last = match.end()
    pieces.append(caption[last:])
    return "".join(pieces)


def negatives_for(captions: list[str], seed: int) -> list[str | None]:
    """One swapped caption per caption, reproducible from ``seed`` (None where impossible)."""
    return [swap_words(c, random.Random(f"{seed}:{i}")) for i, c in enumerate(captions)]
