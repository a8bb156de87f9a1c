"""Library: the one facade the CLI and the GUI use (folders, index, search, status).

A library is a directory holding everything the app writes (see ``photosearch.paths``). The
facade wires the parts together and holds no SQL: catalog reads and edits are
``photosearch.catalog.queries``, searching is ``photosearch.search.query``, the active model is
``ModelSets``, updating is ``Indexer``. ``index`` and the folder watcher update the library through
the same two public steps: ``apply_changes`` (observed files into the catalog) and
``encode_pending``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from contextlib import AbstractContextManager
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from photosearch.catalog.database import open_catalog
from photosearch.errors import PhotosearchError
from photosearch.library.active_model import ActiveModel
from photosearch.library.locking import WriteLock, check_library_writable
from photosearch.library.model_sets import ModelSets
from photosearch.library.settings import LibrarySettings
from photosearch.models.providers import ModelRegistry
from photosearch.models.runtime import Encoder
from photosearch.paths import (
    CATALOG_FILE,
    LOCK_FILE,
    VECTORS_DIR,
    default_library_dir,
    default_models_dir,
)
from photosearch.search.query import SearchQuery, SearchResult, search_vector
from photosearch.search.ranking import run_search
from photosearch.search.rerank import saved_reranker
from photosearch.vectors.graph_integrity import holds_saved_vectors
from photosearch.vectors.store import VectorStore

if TYPE_CHECKING:
    from photosearch.catalog.queries import FolderInfo
    from photosearch.files.scanning import FileStat, IgnoreRules
    from photosearch.indexing.encode import IndexResult, ProgressCallback
    from photosearch.indexing.reconcile import ReconcileResult
    from photosearch.library.indexer import Indexer
    from photosearch.library.model_switch import DroppedSet, SwitchState
    from photosearch.library.reports import IndexReport, LibraryStatus, ScanReport
    from photosearch.library.text import TextInPhotos

# What only indexing, folders and status need (and with them SQLAlchemy, ~0.2 s) is imported
# on first use, so a one-shot `photosearch search` opens a library without it (issue 18).
_REEXPORTED = {
    "FolderInfo": "photosearch.catalog.queries",
    "IndexReport": "photosearch.library.reports",
    "LibraryStatus": "photosearch.library.reports",
    "ScanReport": "photosearch.library.reports",
}

__all__ = [
    "FolderInfo",
    "IndexReport",
    "Library",
    "LibraryStatus",
    "ScanReport",
    "default_library_dir",
    "default_models_dir",
]  # the names front ends import from here
log = logging.getLogger(__name__)


def __getattr__(name: str) -> Any:
    if name in _REEXPORTED:
        from importlib import import_module

        return getattr(import_module(_REEXPORTED[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class _OnFirstUse:
    """A module imported when one of its names is first used (thread-safe: the import lock)."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attribute: str) -> Any:
        from importlib import import_module

        return getattr(import_module(self._name), attribute)


q = _OnFirstUse("photosearch.catalog.queries")
_backup = _OnFirstUse("photosearch.catalog.backup")
_reports = _OnFirstUse("photosearch.library.reports")
_scanning = _OnFirstUse("photosearch.files.scanning")


def _text_in_photos(library: Library) -> TextInPhotos:
    """Text read in photos (OCR): its status and its runs (made on first use)."""
    from photosearch.library.text import TextInPhotos

    return TextInPhotos(library.catalog, library.writing, library.check_writable)


def _indexer(library: Library) -> Indexer:
    """Scanning and encoding (made on first use: a search needs neither)."""
    from photosearch.library.indexer import Indexer

    return Indexer(library.catalog, library.models, library.settings, library.directory)


class Library:
    """Open with ``Library(directory)``; close with ``close()`` or use as a context manager."""

    def __init__(
        self,
        directory: Path,
        *,
        models_dir: Path | None = None,
        model: str | None = None,
        registry: ModelRegistry | None = None,
        threads: int | None = None,
        model_progress: Callable[[str], None] | None = None,
        provider: str | None = None,
        readonly: bool = False,
        one_shot: bool = False,
    ) -> None:
        """``readonly``: only read (status, search): the catalog is opened ``mode=ro``. A
        library that does not exist yet is still created. ``one_shot``: this process runs one
        vector search and exits (VectorStore's one_shot: the matrix answers, not the graph)."""
        self.directory = directory.expanduser().resolve()
        self.catalog = open_catalog(
            self.directory / CATALOG_FILE,
            readonly=readonly,
            expect_data=holds_saved_vectors(self.directory / VECTORS_DIR),
        )
        self.readonly = self.catalog.readonly
        self.registry = registry or ModelRegistry(models_dir or default_models_dir())
        self.threads = threads
        self.model_progress = model_progress or (lambda message: log.info("%s", message))
        self.settings = LibrarySettings(self.catalog, provider, lambda: saved_reranker(self))
        self.models = ModelSets(
            self.catalog,
            self.registry,
            self.directory / VECTORS_DIR,
            model=model,
            threads=threads,
            provider=lambda: self.provider,
            model_progress=self.model_progress,
            one_shot=one_shot,
        )
        self.lock = WriteLock(self.directory / LOCK_FILE)

    text = cached_property(_text_in_photos)
    indexer = cached_property(_indexer)

    def __enter__(self) -> Library:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.settings.close()
        self.lock.release_all()
        self.catalog.close()

    def writing(
        self,
        wait_s: float = 0.0,
        on_wait: Callable[[int | None], None] | None = None,
        *,
        thread_wait_s: float | None = None,
    ) -> AbstractContextManager[WriteLock]:
        """Be this library's only writer: no other process, no other thread (``locking``)."""
        return self.lock.writing(wait_s, on_wait, thread_wait_s=thread_wait_s)

    # --- model ---------------------------------------------------------------------------

    @property
    def model_name(self) -> str:
        """The model this library searches with: explicit, else saved, else the default."""
        return self.models.name

    @property
    def target_model(self) -> str | None:
        """The model being switched to, or None (read each time: another process may switch)."""
        return self.models.target_name

    def use_model(self, name: str) -> SwitchState:
        """Choose the library's model without leaving it unsearchable (``ModelSets.choose``)."""
        return self.models.choose(name)

    def active(self) -> ActiveModel:
        """The active model's encoder, id and store, opened together (``ModelSets.active``)."""
        return self.models.active()

    def drop_model_set(self, key: str, lock_wait_s: float = 0.0) -> DroppedSet:
        """Delete one vector set by identity or name (not the active set nor a switch's target)."""
        with self.writing(lock_wait_s):
            return self.models.drop(key)

    @property
    def provider(self) -> str:
        return self.settings.provider

    def use_provider(self, name: str) -> None:
        """Run the encoders on another execution provider. The vectors do not change (same
        model), so nothing is re-indexed; the sessions are reopened on next use."""
        self.settings.use_provider(name)
        self.models.reopen_encoders()

    @property
    def encoder(self) -> Encoder:
        return self.models.encoder

    @property
    def model_id(self) -> int:
        return self.models.model_id

    @property
    def store(self) -> VectorStore:
        """The active model's HNSW store, checked against the catalog when first opened."""
        return self.models.store

    # --- folders -------------------------------------------------------------------------

    def add_folder(self, path: Path) -> FolderInfo:
        """Add a folder to the library (not indexed until ``index``). A quick catalog edit:
        it takes only the inter-process lock, so it may run while this process indexes."""
        resolved = _scanning.photo_folder(path, self.directory)
        with self.lock.holding():
            q.add_folder(self.catalog, str(resolved))
        return q.folder_infos(self.catalog, str(resolved))[0]

    def remove_folder(self, path: Path) -> int:
        """Forget a folder and its photos (the files are untouched); returns photos dropped."""
        with self.writing():  # an indexer would hit FOREIGN KEY errors
            count = q.remove_folder(self.catalog, [str(path.expanduser().resolve()), str(path)])
            if count is None:
                raise PhotosearchError(f"{path} is not a library folder")
            self.models.sync_open_stores()
            for store in self.models.open_stores():
                store.save()
        return count

    def folders(self) -> list[FolderInfo]:
        return q.folder_infos(self.catalog)

    def ignore_rules(self) -> IgnoreRules:
        """The saved ignore patterns, and the library's own directory, which is never read."""
        return self.indexer.ignore_rules()

    def set_folder_online(self, path: str, online: bool) -> None:
        """Mark a library folder as reachable or not (its photos are kept either way)."""
        q.set_folder_online(self.catalog, path, online)

    def retry_failed(self) -> int:
        """Mark failed photos whose file still exists as pending again, so the next ``index``
        retries them (a failure is otherwise only retried when the file changes); how many."""
        return q.reset_failed(self.catalog, os.path.isfile)

    # --- indexing (``Indexer``): scan (observe, apply_changes), then encode_pending --------

    def scan(self) -> ScanReport:
        """Reconcile the catalog with every online folder; folders that vanished go offline."""
        return self.indexer.scan()

    def apply_changes(
        self, observed: dict[str, FileStat | None], complete_in: list[int] | None = None
    ) -> ReconcileResult:
        """Public step 1 (``Indexer.apply_changes``): what was observed on disk (a file's stat,
        or None for a vanished path) into the catalog and the open vector stores; paths outside
        online folders are left alone. The caller holds ``writing()``."""
        return self.indexer.apply_changes(observed, complete_in)

    def encode_pending(
        self,
        progress: ProgressCallback | None = None,
        should_stop: Callable[[], bool] | None = None,
        batch_size: int | None = None,
        save: bool = True,
    ) -> IndexResult:
        """Public step 2: encode every photo that lacks a vector for the active model (new and
        changed photos, retried failures). ``save``: the store is saved afterwards, also when
        nothing was pending. The caller holds ``writing()``."""
        return self.indexer.encode_pending(progress, should_stop, batch_size, save)

    def index(
        self,
        progress: ProgressCallback | None = None,
        should_stop: Callable[[], bool] | None = None,
        lock_wait_s: float = 0.0,
        on_lock_wait: Callable[[int | None], None] | None = None,
        batch_size: int | None = None,
        reembed: bool = True,
    ) -> IndexReport:
        """Scan, encode everything pending and, with ``reembed``, re-embed for a pending model
        switch (``Indexer.index``), as the only writer throughout; then back the catalog up
        when a backup is due (see catalog.backup)."""
        with self.writing(lock_wait_s, on_lock_wait):
            self.check_writable()
            report = self.indexer.index(progress, should_stop, batch_size, reembed)
            self.backup_if_due()
            return report

    def check_writable(self) -> None:
        """Raise LibraryReadOnly, naming the path and why, when the library's directory,
        catalog or vectors cannot be written (read-only media, permissions)."""
        check_library_writable(self.directory, self.catalog)

    def backup_if_due(self, force: bool = False) -> Path | None:
        """Back the catalog up if due, else quick_check it (see catalog.backup)."""
        return _backup.backup_or_check(self.catalog, self.directory / _backup.BACKUP_DIR, force)

    # --- search --------------------------------------------------------------------------

    def search(self, query: SearchQuery) -> list[SearchResult]:
        """Rank photos for a query (``search.run_search``); raises EmptyQuery when there is
        nothing to search by, ModelMismatch when the library has only other models' vectors
        (run ``index`` to encode with the active model)."""
        self.models.follow_saved()
        return run_search(
            self.catalog,
            self.models.active(),
            query,
            saved_model=self.models.saved_name(),
            reranker=self.settings.reranker,
        )

    def search_vector(
        self,
        vector: np.ndarray,
        k: int,
        filters: SearchQuery | None = None,
        exclude: set[int] | None = None,
    ) -> list[SearchResult]:
        """Top-k photos for a ready query vector, honouring the query's filters."""
        return search_vector(
            self.catalog,
            self.models.active(),
            vector,
            k,
            filters,
            exclude,
            saved_model=self.models.saved_name(),
        )

    # --- status --------------------------------------------------------------------------

    def status(self, failures_limit: int = 50) -> LibraryStatus:
        """What the library holds (``library_status``): never loads or builds a model."""
        return _reports.read_status(
            self.catalog,
            self.models,
            self.directory,
            failures_limit,
            self.settings.skipped(),
            self.text.status(),
        )
