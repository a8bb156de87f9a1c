"""Walking a library's folders: which are reachable, and which photo files each holds now.

The observation half of a full scan; ``Library.apply_changes`` (the same step the watcher
uses for one batch) turns what was observed into catalog changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from photosearch.catalog import Catalog
from photosearch.catalog.queries import folder_has_photos, folder_rows, set_folders_online
from photosearch.files.scanning import FileStat, IgnoreRules, gc_paused, walk_photos
from photosearch.paths import folder_available


@dataclass
class FolderObservation:
    """What a walk of every library folder found."""

    observed: dict[str, FileStat | None] = field(default_factory=dict)
    online_ids: list[int] = field(default_factory=list)  # folders walked whole
    offline: list[str] = field(default_factory=list)  # folders that could not be reached
    unreadable: list[tuple[str, str]] = field(default_factory=list)  # (path, why)


def observe_folders(catalog: Catalog, rules: IgnoreRules) -> FolderObservation:
    """Walk every reachable folder (``paths.folder_available``) and record in the catalog
    which folders are online; an unreachable folder keeps its photos."""
    seen = FolderObservation()
    folders = folder_rows(catalog)
    for folder in folders:
        if not folder_available(
            folder.path, had_photos=lambda f=folder: folder_has_photos(catalog, f.id)
        ):
            seen.offline.append(folder.path)
            continue
        seen.online_ids.append(folder.id)
        with gc_paused():
            for found in walk_photos(
                Path(folder.path), rules, on_error=lambda p, r: seen.unreadable.append((p, r))
            ):
                seen.observed[found.path] = found
    set_folders_online(catalog, {f.path: f.path not in seen.offline for f in folders})
    return seen
