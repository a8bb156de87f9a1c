"""Indexer: the steps that keep one library's catalog and vectors in step with its folders.

``Library.index`` and the folder watcher update a library through the same two public steps:
``apply_changes`` (what was observed on disk into the catalog, ``indexing.reconcile``, with the
open vector stores following) and ``encode_pending`` (vectors for the active model,
``indexing.encode``, then place names). A full run (``index``) scans every folder first and
afterwards fills what older versions left out and re-embeds for a pending model switch.
The facade takes the write lock around every step; nothing here locks.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from photosearch.catalog import Catalog
from photosearch.files.scanning import FileStat, IgnoreRules
from photosearch.indexing.encode import BATCH_SIZE, IndexResult, ProgressCallback, encode_pending
from photosearch.indexing.folder_scan import observe_folders
from photosearch.indexing.hash_fill import fill_missing_hashes
from photosearch.indexing.reconcile import (
    TOMBSTONE_TTL,
    ReconcileResult,
    apply_observed,
    purge_tombstones,
)
from photosearch.indexing.words import fill_places
from photosearch.library.model_sets import ModelSets
from photosearch.library.reports import IndexReport, ScanReport
from photosearch.library.settings import LibrarySettings
from photosearch.paths import VECTORS_DIR
from photosearch.search.duplicates import save_hash_file


class Indexer:
    """One library's update steps; ``directory`` (the library's own) is never read as photos."""

    def __init__(
        self, catalog: Catalog, models: ModelSets, settings: LibrarySettings, directory: Path
    ) -> None:
        self.catalog = catalog
        self.models = models
        self.settings = settings
        self.directory = directory

    def ignore_rules(self) -> IgnoreRules:
        """The saved ignore patterns, and the library's own directory."""
        return IgnoreRules(
            patterns=self.settings.ignore_patterns(), excluded_dirs=(str(self.directory),)
        )

    def scan(self) -> ScanReport:
        """Reconcile the catalog with every online folder; folders that vanished go offline."""
        started = time.monotonic()
        purge_tombstones(self.catalog.session, TOMBSTONE_TTL)
        seen = observe_folders(self.catalog, self.ignore_rules())
        self.settings.record_skipped(seen.unreadable)
        changes = self.apply_changes(seen.observed, complete_in=seen.online_ids)
        return ScanReport(changes, seen.offline, seen.unreadable, time.monotonic() - started)

    def apply_changes(
        self, observed: dict[str, FileStat | None], complete_in: list[int] | None = None
    ) -> ReconcileResult:
        """Step 1: ``reconcile.apply_observed``, then every open store follows the catalog."""
        changes = apply_observed(self.catalog, observed, complete_in)
        self.models.sync_open_stores()
        return changes

    def encode_pending(
        self,
        progress: ProgressCallback | None,
        should_stop: Callable[[], bool] | None,
        batch_size: int | None,
        save: bool,
    ) -> IndexResult:
        """Step 2: encode what the active model lacks, then read places (EXIF GPS, each photo
        once). ``save``: the store is saved afterwards, also when nothing was pending (a store
        repaired from the catalog on open)."""
        active = self.models.active()
        encoding = encode_pending(
            self.catalog,
            active.store,
            active.encoder,
            active.model_id,
            progress=progress,
            should_stop=should_stop,
            batch_size=batch_size or BATCH_SIZE,
            save=save,
        )
        if save and active.store.dirty:
            active.store.save()
        fill_places(self.catalog, should_stop)
        return encoding

    def save_hash_file(self) -> bool:
        """Rewrite the photo-hash file beside the vectors when photos changed since it was
        written (``duplicates.save_hash_file``: one-shot searches fold copies from it): at the
        end of a run and, in `watch` and the app, at each save of the vectors."""
        return save_hash_file(self.catalog, self.directory / VECTORS_DIR)

    def index(
        self,
        progress: ProgressCallback | None,
        should_stop: Callable[[], bool] | None,
        batch_size: int | None,
        reembed: bool,
    ) -> IndexReport:
        """A full run: scan, encode, then hash photos encoded before the catalog kept hashes.

        During a model switch, new photos are encoded for the active model first (so they
        are searchable at once), then, with ``reembed``, every photo still lacking a vector
        for the target model (``ModelSets.reembed``); the library switches over when none is
        left.
        """
        self.models.follow_saved()
        self.models.active()  # opened before the scan, so the scan keeps its store in line
        scan = self.scan()
        encoding = self.encode_pending(progress, should_stop, batch_size, save=True)
        if encoding.stopped:
            self.save_hash_file()
            return IndexReport(scan, encoding)
        active = self.models.active()
        fill_missing_hashes(
            self.catalog,
            active.model_id,
            active.encoder.config.preprocessing,
            should_stop=should_stop,
            progress=progress,
        )
        switch = self.models.reembed(progress, should_stop, batch_size) if reembed else None
        self.save_hash_file()
        return IndexReport(scan, encoding, switch)
