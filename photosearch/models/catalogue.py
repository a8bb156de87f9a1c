"""The catalogue of hub models known by short name (resources/models-catalogue.json).

Facts come from the models' publishers (see the file's "sources"); unknown values are None,
never guessed. Reading it makes no network request.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from photosearch.errors import PhotosearchError

CATALOGUE_NAME = "models-catalogue.json"


@dataclass(frozen=True)
class CatalogueEntry:
    """One model on the hub, as the catalogue describes it."""

    name: str
    repository: str
    description: str
    download_size_bytes: int | None
    embed_dim: int | None
    languages: tuple[str, ...]
    licence: str | None
    quality: dict[str, Any] | None
    publisher_memory_mib: int | None
    suggested: bool


def catalogue_path() -> Path:
    """resources/ beside the package (source checkout, frozen app) or under sys.prefix."""
    candidates = (
        Path(__file__).resolve().parents[2] / "resources" / CATALOGUE_NAME,
        Path(sys.prefix) / "share" / "photosearch" / CATALOGUE_NAME,
    )
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    return candidates[0]


@lru_cache(maxsize=1)
def load_catalogue() -> tuple[CatalogueEntry, ...]:
    """Every catalogue entry; an empty catalogue when the file is not shipped."""
    path = catalogue_path()
    if not path.is_file():
        return ()
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return tuple(_entry(item) for item in raw["models"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise PhotosearchError(f"the model catalogue {path} is unreadable: {exc}") from exc


def find_entry(name: str) -> CatalogueEntry | None:
    """The entry whose short name or repository is ``name`` (case-insensitive)."""
    wanted = name.casefold()
    for entry in load_catalogue():
        if wanted in (entry.name.casefold(), entry.repository.casefold()):
            return entry
    return None


def suggested_entry() -> CatalogueEntry | None:
    """The model the first-run screen offers as a stronger, downloadable choice."""
    return next((entry for entry in load_catalogue() if entry.suggested), None)


def _entry(item: dict[str, Any]) -> CatalogueEntry:
    return CatalogueEntry(
        name=str(item["name"]),
        repository=str(item["repository"]),
        description=str(item.get("description") or ""),
        download_size_bytes=item.get("download_size_bytes"),
        embed_dim=item.get("embed_dim"),
        languages=tuple(item.get("languages") or ()),
        licence=item.get("licence"),
        quality=item.get("quality"),
        publisher_memory_mib=item.get("publisher_memory_mib"),
        suggested=bool(item.get("suggested", False)),
    )
