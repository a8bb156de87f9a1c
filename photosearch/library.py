"""Library: the one facade the CLI and the GUI use (folders, index, search, status).

A library is a directory holding everything the app writes: ``catalog.sqlite``, ``vectors/``
(one HNSW graph per model) and ``write.lock``. Model bundles live in a models directory shared
by libraries. Photo folders are only ever read.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
from sqlalchemy import and_, func, select, update

from photosearch.catalog import Catalog, Folder, Model, Photo, Vector, path_is_under
from photosearch.catalog.backup import BACKUP_DIR, backup_or_check
from photosearch.catalog.database import CatalogReadOnly
from photosearch.errors import ModelMismatch, PhotosearchError
from photosearch.graph_integrity import holds_saved_vectors
from photosearch.imaging import decode_for_model
from photosearch.indexing import BATCH_SIZE, IndexResult, ProgressCallback, encode_pending
from photosearch.locking import WriteLock, check_writable
from photosearch.model_sets import ModelSets, OpenSet
from photosearch.model_switch import (
    ACTIVE_MODEL_KEY,  # noqa: F401 - re-exported: where the active model is recorded
    DroppedSet,
    ReembedReport,
    SwitchState,
    VectorSetInfo,
)
from photosearch.models.providers import ModelRegistry
from photosearch.models.runtime import AUTO_PROVIDER, Encoder, local_providers
from photosearch.reconcile import (
    TOMBSTONE_TTL,
    ReconcileResult,
    purge_tombstones,
    reconcile,
)
from photosearch.rerank import Reranker
from photosearch.scanning import FileStat, IgnoreRules, gc_paused, walk_photos
from photosearch.search import SearchQuery, SearchResult, combine_query, parse_query_text
from photosearch.vectors import VectorStore

log = logging.getLogger(__name__)
CATALOG_FILE = "catalog.sqlite"
VECTORS_DIR = "vectors"
PROVIDER_KEY = "execution_provider"
IGNORE_PATTERNS_KEY = "ignore_patterns"
SKIPPED_KEY = "skipped_paths"  # JSON [[path, reason], ...]: what the last scan could not read
SKIPPED_KEPT = 1000


def default_library_dir() -> Path:
    """$PHOTOSEARCH_LIBRARY, else the platform's user data directory."""
    if env := os.environ.get("PHOTOSEARCH_LIBRARY"):
        return Path(env).expanduser()
    from platformdirs import user_data_path

    return user_data_path("photosearch", appauthor=False)


def default_models_dir() -> Path:
    """$PHOTOSEARCH_MODELS, else ``models/`` in the platform's user data directory."""
    if env := os.environ.get("PHOTOSEARCH_MODELS"):
        return Path(env).expanduser()
    from platformdirs import user_data_path

    return user_data_path("photosearch", appauthor=False) / "models"


@dataclass(frozen=True)
class FolderInfo:
    path: str
    online: bool
    photos: int
    failed: int


@dataclass(frozen=True)
class ScanReport:
    changes: ReconcileResult
    offline_folders: list[str]
    unreadable: list[tuple[str, str]]
    seconds: float


@dataclass(frozen=True)
class IndexReport:
    scan: ScanReport
    encoding: IndexResult  # for the active model
    switch: ReembedReport | None = None  # encoding for the model being switched to, if any


@dataclass(frozen=True)
class LibraryStatus:
    library: str
    model: str
    model_identity: str | None
    folders: list[FolderInfo]
    photos: int
    indexed: int
    failed: int
    pending: int
    index_bytes: int
    catalog_bytes: int
    failures: list[tuple[str, str]] = field(default_factory=list)
    other_models: dict[str, int] = field(default_factory=dict)
    target_model: str | None = None  # the model being switched to (searches use ``model``)
    sets: list[VectorSetInfo] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, why), last scan


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
    ) -> None:
        """``readonly``: only read (status, search): the catalog is opened ``mode=ro``. A
        library that does not exist yet is still created."""
        self.directory = directory.expanduser().resolve()
        catalog_path = self.directory / CATALOG_FILE
        if catalog_path.exists() and not os.access(self.directory, os.W_OK):
            readonly = True  # read-only media: reading works, writing says why it cannot
        if not (readonly and catalog_path.exists()):
            readonly = False
            self.directory.mkdir(parents=True, exist_ok=True)
        expect_data = holds_saved_vectors(self.directory / VECTORS_DIR)
        try:
            self.catalog = Catalog(catalog_path, readonly=readonly, expect_data=expect_data)
        except CatalogReadOnly:  # an older schema: upgraded by whoever may write
            if not os.access(self.directory, os.W_OK):
                raise
            readonly = False
            self.catalog = Catalog(catalog_path, expect_data=expect_data)
        self.readonly = readonly
        self.registry = registry or ModelRegistry(models_dir or default_models_dir())
        self.threads = threads
        self.model_progress = model_progress or (lambda message: log.info("%s", message))
        self._provider = provider
        self.models = ModelSets(self.catalog, self.registry, self.directory / VECTORS_DIR,
                                model=model, threads=threads, provider=lambda: self.provider,
                                model_progress=self.model_progress)
        self._reranker: Reranker | None | bool = False  # False: saved setting not read yet
        self._reranker_lock = threading.RLock()  # the GUI searches from several threads
        self.lock = WriteLock(self.directory / "write.lock")

    def __enter__(self) -> Library:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._reranker:
            self._reranker.close()
        self.lock.release_all()
        self.catalog.close()

    # --- model ---------------------------------------------------------------------------

    @property
    def model_name(self) -> str:
        """The model this library searches with: explicit, else saved, else the default."""
        return self.models.name

    def saved_model_name(self) -> str:
        """The library's active model as recorded in the catalog (ignoring ``--model``)."""
        return self.models.saved_name()

    @property
    def target_model(self) -> str | None:
        """The model the library is switching to, or None (read from the catalog each time,
        so another process's ``models use`` is seen)."""
        return self.models.target_name

    def use_model(self, name: str) -> SwitchState:
        """Choose the library's model without leaving it unsearchable.

        When ``name``'s vectors already cover every readable photo (switching back, or an
        empty library) the switch is immediate. Otherwise ``name`` becomes the target:
        ``index``, ``watch`` and the app encode photos for it in the background while searches
        keep using the current model, and switch over once it covers the library. Choosing
        the active model cancels a pending switch (vectors made so far are kept). Raises
        ModelNotFound when the bundle is neither installed nor buildable offline.
        """
        return self.models.choose(name)

    def follow_saved_model(self) -> bool:
        """Pick up a switch another process recorded; True if the active model changed.
        Cheap (one catalog read); a ``--model`` choice is kept."""
        return self.models.follow_saved()

    def active_set(self) -> OpenSet:
        """The active model's encoder, id and store, opened together."""
        return self.models.active()

    def open_stores(self) -> list[VectorStore]:
        """The stores this Library has open (active and switch target), for savers."""
        return self.models.open_stores()

    def reembed(
        self,
        progress: ProgressCallback | None = None,
        should_stop: Callable[[], bool] | None = None,
        batch_size: int | None = None,
        save: bool = True,
    ) -> ReembedReport | None:
        """Encode photos that lack a vector for the target model; switch to it once none is
        left. None when no switch is pending. The caller holds ``lock``. Resumable at any
        point: what is left is read from the catalog."""
        return self.models.reembed(progress, should_stop, batch_size, save)

    def drop_model_set(self, key: str, lock_wait_s: float = 0.0) -> DroppedSet:
        """Delete one model's vector set (catalog vectors and graph files), named by identity
        or model name. Refuses the active set and the target of a pending switch."""
        self.lock.acquire(lock_wait_s)
        try:
            return self.models.drop(key)
        finally:
            self.lock.release()

    @property
    def provider(self) -> str:
        """The ONNX Runtime execution provider: explicit, else saved, else "auto"."""
        if self._provider is None:
            self._provider = self.catalog.get_meta(PROVIDER_KEY) or AUTO_PROVIDER
        return self._provider

    def use_provider(self, name: str) -> None:
        """Run the encoders on another execution provider. The vectors do not change (same
        model), so nothing is re-indexed; the sessions are reopened on next use."""
        choices = [AUTO_PROVIDER, *local_providers()]
        if name not in choices:
            raise PhotosearchError(
                f"unknown execution provider {name!r}; this machine has: {', '.join(choices)}")
        self.catalog.set_meta(PROVIDER_KEY, name)
        self._provider = name
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
        """Add a folder to the library (not indexed until ``index``)."""
        resolved = path.expanduser().resolve()
        if not resolved.is_dir():
            raise PhotosearchError(f"{path} is not a folder")
        text = str(resolved)
        if text == str(self.directory) or text.startswith(str(self.directory) + os.sep):
            raise PhotosearchError(f"{path} is inside the library's own directory")
        with self.lock.holding(), self.catalog.session() as session:
            folders = session.scalars(select(Folder)).all()
            for folder in folders:
                if text == folder.path or text.startswith(folder.path.rstrip(os.sep) + os.sep):
                    raise PhotosearchError(f"{path} is already in the library (via {folder.path})")
            added = Folder(path=text, added_at=datetime.now(), online=True)
            session.add(added)
            session.flush()
            for folder in folders:  # a parent of existing folders absorbs them
                if folder.path.startswith(text.rstrip(os.sep) + os.sep):
                    for photo in folder.photos:
                        photo.folder_id = added.id
                    session.flush()
                    session.delete(folder)
        return self._folder_info(text)

    def remove_folder(self, path: Path) -> int:
        """Forget a folder and its photos (the files are untouched); returns photos dropped."""
        text = str(path.expanduser().resolve())
        with self.lock.holding():  # an indexer in another process would hit FOREIGN KEY errors
            with self.catalog.session() as session:
                folder = session.scalar(select(Folder).where(Folder.path.in_([text, str(path)])))
                if folder is None:
                    raise PhotosearchError(f"{path} is not a library folder")
                count = session.scalar(select(func.count()).select_from(Photo).where(
                    Photo.folder_id == folder.id, Photo.present())) or 0
                session.delete(folder)
            self.models.sync_open_stores()
            for store in self.models.open_stores():
                store.save()
        return int(count)

    def folders(self) -> list[FolderInfo]:
        with self.catalog.session() as session:
            paths = session.scalars(select(Folder.path).order_by(Folder.path)).all()
        return [self._folder_info(p) for p in paths]

    def ignore_patterns(self) -> tuple[str, ...]:
        raw = self.catalog.get_meta(IGNORE_PATTERNS_KEY) or ""
        return tuple(p for p in raw.split("\n") if p)

    def set_ignore_patterns(self, patterns: list[str]) -> None:
        self.catalog.set_meta(IGNORE_PATTERNS_KEY, "\n".join(p for p in patterns if p.strip()))

    # --- indexing ------------------------------------------------------------------------

    def scan(self) -> ScanReport:
        """Reconcile the catalog with every online folder; folders that vanished go offline."""
        started = datetime.now()
        purge_tombstones(self.catalog.session, TOMBSTONE_TTL)
        rules = IgnoreRules(patterns=self.ignore_patterns(), excluded_dirs=(str(self.directory),))
        unreadable: list[tuple[str, str]] = []
        offline: list[str] = []
        with self.catalog.session() as session:
            folders = list(session.scalars(select(Folder)).all())
            for folder in folders:
                session.expunge(folder)
        observed: dict[str, FileStat | None] = {}
        online_ids: list[int] = []
        for folder in folders:
            if not self._reachable(folder):
                offline.append(folder.path)
                continue
            online_ids.append(folder.id)
            with gc_paused():
                for found in walk_photos(Path(folder.path), rules,
                                         on_error=lambda p, r: unreadable.append((p, r))):
                    observed[found.path] = found
        self._set_online(folders, offline)
        self.catalog.set_meta(SKIPPED_KEY, json.dumps(unreadable[:SKIPPED_KEPT]))
        online = [f for f in folders if f.path not in offline]
        changes = reconcile(self.catalog.session, observed, online, complete_in=online_ids)
        if changes.any:
            self.models.sync_open_stores()
        seconds = (datetime.now() - started).total_seconds()
        return ScanReport(changes, offline, unreadable, seconds)

    def index(
        self,
        progress: ProgressCallback | None = None,
        should_stop: Callable[[], bool] | None = None,
        lock_wait_s: float = 0.0,
        on_lock_wait: Callable[[int | None], None] | None = None,
        batch_size: int | None = None,
        reembed: bool = True,
    ) -> IndexReport:
        """Scan, then encode everything pending. Holds the library's write lock throughout, and
        backs the catalog up afterwards when one is due (see catalog.backup).

        During a model switch, new photos are encoded for the active model first (so they
        are searchable at once), then, with ``reembed``, every photo still lacking a vector
        for the target model; the library switches over when none is left.
        """
        self.lock.acquire(lock_wait_s, on_lock_wait)
        try:
            self.check_writable()
            self.models.follow_saved()
            active = self.models.active()
            scan = self.scan()
            self.models.sync_open_stores()
            encoding = encode_pending(
                self.catalog, active.store, active.encoder, active.model_id,
                progress=progress, should_stop=should_stop, batch_size=batch_size or BATCH_SIZE,
            )
            if active.store.dirty:
                active.store.save()
            switch = None
            if reembed and not encoding.stopped:
                switch = self.models.reembed(progress, should_stop, batch_size)
            self.backup_if_due()
            return IndexReport(scan, encoding, switch)
        finally:
            self.lock.release()

    def check_writable(self) -> None:
        """Raise LibraryReadOnly, naming the path and why, when the library's directory,
        catalog or vectors cannot be written (read-only media, permissions)."""
        check_writable([self.directory, self.catalog.path, self.directory / VECTORS_DIR])
        if self.readonly:
            raise CatalogReadOnly("this library was opened read-only")

    def backup_if_due(self, force: bool = False) -> Path | None:
        """Back the catalog up if due, else quick_check it (see catalog.backup)."""
        return backup_or_check(self.catalog, self.directory / BACKUP_DIR, force)

    def apply_changes(self, observed: dict[str, FileStat | None]) -> ReconcileResult:
        """Reconcile just these paths (a watcher's batch) and bring the vector store in line.

        Paths outside online folders are left alone (an offline disk is not a deletion). The
        caller holds ``lock``.
        """
        with self.catalog.session() as session:
            folders = list(session.scalars(select(Folder).where(Folder.online.is_(True))).all())
            for folder in folders:
                session.expunge(folder)
        roots = [f.path.rstrip(os.sep) + os.sep for f in folders]
        inside = {path: found for path, found in observed.items()
                  if any(path.startswith(root) for root in roots)}
        changes = reconcile(self.catalog.session, inside, folders)
        self.models.sync_open_stores()
        return changes

    def set_folder_online(self, path: str, online: bool) -> None:
        """Mark a library folder as reachable or not (its photos are kept either way)."""
        with self.catalog.session() as session:
            row = session.scalar(select(Folder).where(Folder.path == path))
            if row is not None:
                row.online = online
                if online:
                    row.last_seen_at = datetime.now()

    def retry_failed(self) -> int:
        """Mark failed photos whose file still exists as pending again, so the next ``index``
        retries them (a failure is otherwise only retried when the file changes). Returns how
        many were reset; files that vanished keep their failure until the next scan drops them.
        """
        with self.catalog.session() as session:
            rows = session.execute(select(Photo.id, Photo.path).where(
                Photo.status == "failed", Photo.present())).all()
            ids = [pid for pid, path in rows if os.path.isfile(path)]
            for start in range(0, len(ids), 900):
                session.execute(update(Photo).where(Photo.id.in_(ids[start:start + 900]))
                                .values(status="ok", error=None))
        return len(ids)

    # --- search --------------------------------------------------------------------------

    def search(self, query: SearchQuery) -> list[SearchResult]:
        """Rank photos for a query; raises ModelMismatch when the library has only other
        models' vectors (run ``index`` to encode with the active model)."""
        self.models.follow_saved()
        active = self.models.active()
        parsed = parse_query_text(query.text)
        negatives = list(parsed.negatives) + list(query.negatives)
        texts = ([parsed.positive] if parsed.positive else []) + negatives
        text_vectors = active.encoder.encode_texts(texts) if texts else None
        positives: list[np.ndarray] = []
        if parsed.positive:
            positives.append(text_vectors[0])  # type: ignore[index]
        exclude: set[int] = set()
        if query.like is not None:
            vector, own_id = self._image_query_vector(query.like, active)
            positives.append(vector)
            if own_id is not None:
                exclude.add(own_id)
        negative_vectors = list(text_vectors[1 if parsed.positive else 0:]) \
            if text_vectors is not None else []
        vector = combine_query(positives, negative_vectors)
        # Re-ranking (photosearch.rerank): text searches only; the top `depth` re-scored.
        reranker = self.reranker if parsed.positive and query.like is None else None
        k = max(query.k, reranker.depth) if reranker else query.k
        results = self._search_in(active, vector, k, query, exclude)
        return reranker.rerank(texts, results)[:query.k] if reranker else results

    @property
    def reranker(self) -> Reranker | None:
        """The model that re-ranks text searches (photosearch.rerank), or None when off."""
        with self._reranker_lock:
            if self._reranker is False:
                from photosearch.rerank import saved_reranker

                self._reranker = saved_reranker(self)
            return self._reranker  # type: ignore[return-value]

    def use_reranker(self, reranker: Reranker | None) -> None:
        """Re-rank with ``reranker`` from now on (None: off), not saved (rerank.save_setting)."""
        with self._reranker_lock:
            if self._reranker and self._reranker is not reranker:
                self._reranker.close()
            self._reranker = reranker

    def search_vector(
        self,
        vector: np.ndarray,
        k: int,
        filters: SearchQuery | None = None,
        exclude: set[int] | None = None,
    ) -> list[SearchResult]:
        """Top-k photos for a ready query vector, honouring the query's filters."""
        return self._search_in(self.models.active(), vector, k, filters, exclude)

    def _search_in(
        self,
        active: OpenSet,
        vector: np.ndarray,
        k: int,
        filters: SearchQuery | None = None,
        exclude: set[int] | None = None,
    ) -> list[SearchResult]:
        store = active.store
        if len(store) == 0:
            self._raise_if_other_models(active)
            return []
        allowed = self._allowed_ids(filters) if filters and filters.has_filters else None
        if exclude:
            allowed = (allowed if allowed is not None else store.live_ids()) - exclude
        hits = store.search(vector, k, allowed)
        return self._results(hits)

    # --- status --------------------------------------------------------------------------

    def status(self, failures_limit: int = 50) -> LibraryStatus:
        with self.catalog.session() as session:
            photos = session.scalar(
                select(func.count()).select_from(Photo).where(Photo.present())) or 0
            failed = session.scalar(
                select(func.count()).select_from(Photo)
                .where(Photo.status == "failed", Photo.present())
            ) or 0
            failures = [
                (p, e or "") for p, e in session.execute(
                    select(Photo.path, Photo.error).where(Photo.status == "failed", Photo.present())
                    .order_by(Photo.path).limit(failures_limit))
            ]
            per_model = {
                identity: int(count) for identity, count in session.execute(
                    select(Model.identity, func.count(Vector.photo_id))
                    .join(Vector, Vector.model_id == Model.id)
                    .join(Photo, Photo.id == Vector.photo_id).where(Photo.present())
                    .group_by(Model.identity))
            }
        identity = self.encoder.identity
        indexed = per_model.pop(identity, 0)
        store = self.store
        catalog_bytes = sum(
            p.stat().st_size for p in self.directory.glob(CATALOG_FILE + "*") if p.is_file()
        )
        return LibraryStatus(
            library=str(self.directory), model=self.model_name, model_identity=identity,
            folders=self.folders(), photos=int(photos), indexed=indexed, failed=int(failed),
            pending=int(photos) - indexed - int(failed), index_bytes=store.size_on_disk(),
            catalog_bytes=catalog_bytes, failures=failures, other_models=per_model,
            target_model=self.target_model, sets=self.models.coverage(),
            skipped=[(p, r) for p, r in json.loads(self.catalog.get_meta(SKIPPED_KEY) or "[]")],
        )

    # --- internals -----------------------------------------------------------------------

    def _reachable(self, folder: Folder) -> bool:
        """False for a missing or unreadable root, and for an empty root that had photos: an
        unmounted disk leaves an empty mount point, and treating that as "everything deleted"
        would drop the user's catalog. (To forget a folder's photos, remove the folder.)"""
        path = folder.path
        if not os.path.isdir(path) or not os.access(path, os.R_OK | os.X_OK):
            return False
        try:
            empty = not any(os.scandir(path))
        except OSError:
            return False
        if not empty:
            return True
        with self.catalog.session() as session:
            known = session.scalar(
                select(func.count()).select_from(Photo).where(Photo.folder_id == folder.id))
        return not known

    def _set_online(self, folders: list[Folder], offline: list[str]) -> None:
        now = datetime.now()
        with self.catalog.session() as session:
            for folder in folders:
                row = session.get(Folder, folder.id)
                if row is None:
                    continue
                row.online = folder.path not in offline
                if row.online:
                    row.last_seen_at = now

    def _folder_info(self, path: str) -> FolderInfo:
        with self.catalog.session() as session:
            folder = session.scalar(select(Folder).where(Folder.path == path))
            if folder is None:
                raise PhotosearchError(f"{path} is not a library folder")
            photos = session.scalar(select(func.count()).select_from(Photo).where(
                Photo.folder_id == folder.id, Photo.present()))
            failed = session.scalar(select(func.count()).select_from(Photo).where(
                Photo.folder_id == folder.id, Photo.status == "failed", Photo.present()))
            return FolderInfo(folder.path, bool(folder.online), int(photos or 0),
                              int(failed or 0))

    def _allowed_ids(self, query: SearchQuery) -> set[int]:
        conditions = [Photo.present()]
        if query.folder is not None:
            prefix = str(query.folder.expanduser().resolve())
            conditions.append(path_is_under(Photo.path, prefix))
        when = func.coalesce(Photo.taken_at, Photo.file_time)
        if query.after is not None:
            conditions.append(when >= query.after)
        if query.before is not None:
            conditions.append(when < query.before)
        if query.camera is not None:
            conditions.append(Photo.camera.ilike(f"%{query.camera}%"))
        with self.catalog.session() as session:
            return set(session.scalars(select(Photo.id).where(and_(*conditions))).all())

    def _image_query_vector(self, path: Path, active: OpenSet) -> tuple[np.ndarray, int | None]:
        resolved = str(path.expanduser().resolve())
        with self.catalog.session() as session:
            own_id = session.scalar(select(Photo.id).where(
                Photo.path.in_([resolved, str(path)]), Photo.present()))
        if own_id is not None and own_id in active.store.live_ids():
            return active.store.get_vectors([own_id])[0], own_id
        decoded = decode_for_model(Path(resolved), active.encoder.config.preprocessing)
        return active.encoder.encode_images(decoded.pixels[None])[0], own_id

    def _raise_if_other_models(self, active: OpenSet) -> None:
        """An empty active set while other models have vectors: say what would fix it."""
        identity = active.encoder.identity
        with self.catalog.session() as session:
            others = session.execute(
                select(Model.identity, func.count(Vector.photo_id))
                .join(Vector, Vector.model_id == Model.id)
                .join(Photo, Photo.id == Vector.photo_id)
                .where(Model.identity != identity, Photo.present()).group_by(Model.identity)
            ).all()
        if not others:
            return
        names = ", ".join(f"{other} ({count} photos)" for other, count in others)
        saved = self.models.saved_name()
        if active.name != saved:  # --model for this command only
            hint = (f"`photosearch models use {active.name}` switches the library to it (searches "
                    f"keep using {saved} until its vectors cover the library), or `photosearch "
                    f"--model {active.name} index` encodes the photos for it now")
        else:
            hint = ("run `photosearch index` to encode the photos with it (searches answer once "
                    "that is done)")
        raise ModelMismatch(
            f"this library was indexed with {names}, not with the model {active.name} "
            f"({identity}); {hint}")

    def _results(self, hits: list[tuple[int, float]]) -> list[SearchResult]:
        """Attach each hit's file facts, reading only the columns a result needs (loading ORM
        rows cost ~0.1 ms each, most of a k=1000 search)."""
        if not hits:
            return []
        ids = [pid for pid, _ in hits]
        columns = (Photo.id, Photo.path, Photo.width, Photo.height, Photo.taken_at, Photo.camera,
                   Photo.file_time)
        rows: dict[int, tuple] = {}
        with self.catalog.session() as session:
            for start in range(0, len(ids), 900):
                for row in session.execute(select(*columns).where(
                        Photo.id.in_(ids[start:start + 900]), Photo.present())):
                    rows[row[0]] = row
        results = []
        for pid, score in hits:
            row = rows.get(pid)
            if row is None:
                continue  # deleted by another process since the graph was loaded
            _, path, width, height, taken_at, camera, file_time = row
            results.append(SearchResult(pid, path, score, width, height, taken_at, camera,
                                        file_time))
        return results
