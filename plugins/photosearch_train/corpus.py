"""The text corpus a student's text tower is distilled on when the user has no captions.

Shipped with the project (resources/corpus/, CC BY 4.0, see ATTRIBUTION.md there): the 25,014
COCO val2017 caption texts and short query-style phrases made from them
(scripts/build_query_corpus.py). ``--texts FILE`` adds the user's own lines.
"""

from __future__ import annotations

import gzip
import sys
from pathlib import Path

from photosearch_train.config import ConfigError

CORPUS_FILES = ("coco_captions_val2017.txt.gz", "coco_query_phrases.txt.gz")


def corpus_dir() -> Path:
    """resources/corpus in the source tree (the editable install scripts/setup.sh makes),
    else share/photosearch/corpus under the Python prefix. The frozen app leaves the training
    plugin out, so it needs neither."""
    candidates = (
        Path(__file__).resolve().parents[2] / "resources" / "corpus",
        Path(sys.prefix) / "share" / "photosearch" / "corpus",
    )
    for candidate in candidates:
        if all((candidate / name).is_file() for name in CORPUS_FILES):
            return candidate
    raise ConfigError(
        "the shipped text corpus (resources/corpus) is not installed; pass --texts FILE or "
        "set stage1.corpus=false"
    )


def shipped_corpus() -> list[str]:
    """Captions, then phrases, as shipped (deduplicated, order kept)."""
    folder = corpus_dir()
    lines: dict[str, None] = {}
    for name in CORPUS_FILES:
        with gzip.open(folder / name, "rt", encoding="utf-8") as handle:
            for line in handle:
                if text := line.strip():
                    lines.setdefault(text, None)
    return list(lines)


def user_texts(path: Path) -> list[str]:
    """One text per non-empty line of a UTF-8 file."""
    try:
        raw = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read texts file {path}: {exc}") from exc
    return [line.strip() for line in raw.splitlines() if line.strip()]


def distillation_texts(texts_file: str | None, use_corpus: bool, limit: int | None) -> list[str]:
    """The user's texts (if any) then the shipped corpus (if ``use_corpus``), duplicates
    dropped; ``limit`` keeps every k-th of them, so a capped run still spans captions and
    phrases."""
    found: dict[str, None] = {}
    if texts_file:
        found.update(dict.fromkeys(user_texts(Path(texts_file))))
    if use_corpus:
        found.update(dict.fromkeys(shipped_corpus()))
    texts = list(found)
    if limit and len(texts) > limit:
        texts = [texts[int(i * len(texts) / limit)] for i in range(limit)]
    return texts
