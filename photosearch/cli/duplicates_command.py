"""`photosearch duplicates`: list near-duplicate groups with their sizes and paths.

Kept out of cli.py (which only registers the parser); like cli.py, this layer prints. The
command only reads: it never moves or deletes a photo (the app's trash action does that, on
request, after confirmation).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import TYPE_CHECKING

from photosearch.files.photo_files import display_path

if TYPE_CHECKING:  # the CLI registers this command at start-up: keep the import light
    from photosearch.search.duplicates import DuplicateGroup, DuplicatePhoto


def add_duplicates_command(
    commands,  # noqa: ANN001 - argparse's private subparsers action
    common: argparse.ArgumentParser,
    open_library: Callable,
) -> None:
    duplicates = commands.add_parser(
        "duplicates",
        parents=[common],
        help="list groups of near-duplicate photos (resized, recompressed, mirrored copies)",
        description="Lists each group with the copy worth keeping first (most pixels, then the "
        "largest file, then the oldest), its size and its path, the groups whose "
        "copies take the most space first. Nothing is moved or deleted.",
    )
    duplicates.add_argument("--json", action="store_true", help="print JSON")
    duplicates.set_defaults(handler=lambda args: _duplicates(args, open_library), reads_only=True)


def _duplicates(args: argparse.Namespace, open_library: Callable) -> int:
    from photosearch.search.duplicates import find_groups

    with open_library(args, readonly=True) as library:
        library.models.follow_saved()
        groups = find_groups(library.catalog, library.store)
    if args.json:
        print(json.dumps([_group_json(g) for g in groups], indent=2))
        return 0
    if not groups:
        print(
            "no near-duplicates found (photos are compared once `photosearch index` has "
            "encoded them)"
        )
        return 0
    extra = sum(g.extra_bytes for g in groups)
    copies = sum(len(g.photos) - 1 for g in groups)
    print(
        f"{len(groups)} groups of near-duplicates; the {copies} copies besides the best of "
        f"each take {_size(extra)}"
    )
    for number, group in enumerate(groups, 1):
        print(f"\ngroup {number}: {len(group.photos)} photos, {_size(group.total_bytes)}")
        for rank, photo in enumerate(group.photos):
            mark = "best" if rank == 0 else "    "
            print(
                f"  {mark}  {_pixels(photo):>11}  {_size(photo.size_bytes):>9}  "
                f"{_date(photo):>10}  {display_path(photo.path)}"
            )
    return 0


def _group_json(group: DuplicateGroup) -> dict:
    return {
        "photos": [
            {
                "path": p.path,
                "bytes": p.size_bytes,
                "width": p.width,
                "height": p.height,
                "date": p.shown_date.isoformat() if p.shown_date else None,
            }
            for p in group.photos
        ],
        "bytes": group.total_bytes,
        "extra_bytes": group.extra_bytes,
    }


def _size(nbytes: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if nbytes >= scale:
            return f"{nbytes / scale:.1f} {unit}"
    return f"{nbytes} B"


def _pixels(photo: DuplicatePhoto) -> str:
    return f"{photo.width}x{photo.height}" if photo.width and photo.height else "?"


def _date(photo: DuplicatePhoto) -> str:
    return photo.shown_date.strftime("%Y-%m-%d") if photo.shown_date else ""
