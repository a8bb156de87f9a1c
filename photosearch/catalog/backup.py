"""Rotating catalog backups, made with SQLite's online backup API and checked before they count.

A backup is taken after a successful index at most once per BACKUP_INTERVAL and the newest
KEEP_BACKUPS are kept. Copying a catalog is a full read (about a second per few hundred MB,
see benchmarks/bench_catalog_check.py), so once a day bounds its cost while a damaged catalog
still loses at most a day of indexing (and `repair` reuses the vectors saved since). The copy is
checked with ``PRAGMA quick_check``; a copy that fails means the live catalog is damaged, which
makes the backup also the scheduled deep check.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy.exc import OperationalError

from photosearch.catalog.database import Catalog, CatalogDamaged, integrity_problem

log = logging.getLogger(__name__)

BACKUP_DIR = "backups"
BACKUP_INTERVAL = timedelta(hours=24)
KEEP_BACKUPS = 3
_PREFIX = "catalog-"
_SUFFIX = ".sqlite"


def backups(directory: Path) -> list[Path]:
    """Backups in ``directory``, newest first."""
    if not directory.is_dir():
        return []
    found = [
        p for p in directory.iterdir() if p.name.startswith(_PREFIX) and p.name.endswith(_SUFFIX)
    ]
    return sorted(found, key=lambda p: p.name, reverse=True)


def backup_or_check(catalog: Catalog, directory: Path, force: bool = False) -> Path | None:
    """After a writing session: a backup when one is due (its copy is quick_checked), else a
    quick_check of the catalog itself, so damage is reported when it happens, not when the
    damaged page is next read. Raises CatalogDamaged; an I/O error only skips the backup."""
    try:
        catalog.checkpoint()  # also heals a WAL file deleted under this process
        if force or backup_due(directory):
            return make_backup(catalog.path, directory)
    except (sqlite3.OperationalError, OperationalError) as exc:
        log.warning("catalog backup skipped: %s", getattr(exc, "orig", exc))
        return None
    problem = integrity_problem(catalog.path, quick=True)
    if problem:
        raise CatalogDamaged(catalog.path, problem)
    return None


def backup_due(directory: Path, interval: timedelta = BACKUP_INTERVAL) -> bool:
    existing = backups(directory)
    if not existing:
        return True
    age = time.time() - existing[0].stat().st_mtime
    return age >= interval.total_seconds()


def make_backup(catalog: Path, directory: Path, keep: int = KEEP_BACKUPS) -> Path:
    """Copy ``catalog`` into ``directory`` (consistent even while others write), verify the copy,
    then drop all but the newest ``keep``. Raises CatalogDamaged when the copy fails its check
    (the live catalog is damaged; the bad copy is not kept)."""
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob(f".{_PREFIX}*.partial"):  # left by a process killed midway
        stale.unlink(missing_ok=True)
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    final = directory / f"{_PREFIX}{stamp}{_SUFFIX}"
    partial = directory / f".{final.name}.partial"
    try:
        copy_database(catalog, partial)
        problem = integrity_problem(partial, quick=True)
        if problem:
            raise CatalogDamaged(catalog, problem)
        os.replace(partial, final)
    finally:
        partial.unlink(missing_ok=True)
    for old in backups(directory)[keep:]:
        old.unlink(missing_ok=True)
    return final


def newest_good_backup(directory: Path) -> Path | None:
    """The newest backup that passes a full ``integrity_check``, or None."""
    for candidate in backups(directory):
        if integrity_problem(candidate, quick=False) is None:
            return candidate
    return None


def copy_database(source: Path, target: Path) -> None:
    """SQLite's backup API: a page-consistent copy, flushed to disk, then renamed over
    ``target`` (a kill midway leaves no half-written ``target``)."""
    partial = target.with_name(f".{target.name}.copying")
    partial.unlink(missing_ok=True)
    reader = sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True)
    try:
        writer = sqlite3.connect(partial)
        try:
            reader.backup(writer)
            writer.execute("PRAGMA journal_mode=DELETE")
        finally:
            writer.close()
        with partial.open("rb") as handle:
            os.fsync(handle.fileno())
        os.replace(partial, target)
    finally:
        reader.close()
        partial.unlink(missing_ok=True)
