"""Library: the one facade the CLI and the GUI use (folders, index, search, status).

A library is a directory holding everything the app writes: ``catalog.sqlite``, ``vectors/``
(one HNSW graph per model) and ``write.lock``. Model bundles live in a models directory shared
by libraries. Photo folders are only ever read.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from photosearch.catalog import Catalog, Folder, Model, Photo, Vector
from photosearch.errors import ModelMismatch, PhotosearchError
from photosearch.imaging import decode_for_model
from photosearch.indexing import BATCH_SIZE, IndexResult, ProgressCallback, encode_pending
from photosearch.locking import WriteLock
from photosearch.models.providers import ModelRegistry
from photosearch.models.runtime import AUTO_PROVIDER, Encoder, local_providers, providers_for
from photosearch.reconcile import (
    TOMBSTONE_TTL,
    ReconcileResult,
    purge_tombstones,
    reconcile,
)
from photosearch.rerank import Reranker
from photosearch.scanning import FileStat, IgnoreRules, walk_photos
from photosearch.search import SearchQuery, SearchResult, combine_query, parse_query_text
from photosearch.vectors import VectorStore

log = logging.getLogger(__name__)
CATALOG_FILE = "catalog.sqlite"
VECTORS_DIR = "vectors"
ACTIVE_MODEL_KEY = "active_model"
PROVIDER_KEY = "execution_provider"
IGNORE_PATTERNS_KEY = "ignore_patterns"


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
    encoding: IndexResult


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
    ):
        self.directory = directory.expanduser().resolve()
        self.directory.mkdir(parents=True, exist_ok=True)
        self.catalog = Catalog(self.directory / CATALOG_FILE)
        self.registry = registry or ModelRegistry(models_dir or default_models_dir())
        self.threads = threads
        self.model_progress = model_progress or (lambda message: log.info("%s", message))
        self._model_name = model
        self._provider = provider
        self._encoder: Encoder | None = None
        self._store: VectorStore | None = None
        self._model_id: int | None = None
        self._reranker: Reranker | None | bool = False  # False: saved setting not read yet
        # The GUI searches from one thread while another indexes: the lazily opened encoder,
        # model row and store must be created once, not once per thread.
        self._open_lock = threading.RLock()
        self.lock = WriteLock(self.directory / "write.lock")

    def __enter__(self) -> Library:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._reranker:
            self._reranker.close()
        self.lock.release()
        self.catalog.close()

    # --- model ---------------------------------------------------------------------------

    @property
    def model_name(self) -> str:
        """The model this library searches with: explicit, else saved, else the default."""
        if self._model_name is None:
            saved = self.catalog.get_meta(ACTIVE_MODEL_KEY)
            self._model_name = saved or self.registry.default_model_name()
        return self._model_name

    def use_model(self, name: str) -> None:
        """Switch the active model (vectors of other models are kept for switching back)."""
        self.registry.ensure(name)
        with self._open_lock:
            self.catalog.set_meta(ACTIVE_MODEL_KEY, name)
            self._model_name = name
            self._encoder = self._store = None
            self._model_id = None

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
        with self._open_lock:
            self.catalog.set_meta(PROVIDER_KEY, name)
            self._provider = name
            self._encoder = None

    @property
    def encoder(self) -> Encoder:
        with self._open_lock:
            if self._encoder is None:
                path = self.registry.ensure(self.model_name, progress=self.model_progress)
                self._encoder = Encoder(path, threads=self.threads,
                                        providers=providers_for(self.provider))
            return self._encoder

    @property
    def model_id(self) -> int:
        with self._open_lock:
            if self._model_id is None:
                encoder = self.encoder
                with self.catalog.session() as session:
                    # another process (the CLI beside the app) may register it at the same time
                    session.execute(sqlite_insert(Model).values(
                        identity=encoder.identity, name=encoder.config.name,
                        embed_dim=encoder.embed_dim, created_at=datetime.now(),
                    ).on_conflict_do_nothing(index_elements=["identity"]))
                    self._model_id = session.scalar(
                        select(Model.id).where(Model.identity == encoder.identity))
            assert self._model_id is not None
            return self._model_id

    @property
    def store(self) -> VectorStore:
        """The active model's HNSW store, checked against the catalog when first opened."""
        with self._open_lock:
            if self._store is None:
                store = VectorStore(self.directory / VECTORS_DIR, self.encoder.identity,
                                    self.encoder.embed_dim)
                report = store.sync(self._vector_ids(), self._fetch_vectors)
                if report.added or report.removed or report.rebuilt:
                    log.info("vector store repaired from the catalog: %s", report)
                self._store = store
            return self._store

    # --- folders -------------------------------------------------------------------------

    def add_folder(self, path: Path) -> FolderInfo:
        """Add a folder to the library (not indexed until ``index``)."""
        resolved = path.expanduser().resolve()
        if not resolved.is_dir():
            raise PhotosearchError(f"{path} is not a folder")
        text = str(resolved)
        if text == str(self.directory) or text.startswith(str(self.directory) + os.sep):
            raise PhotosearchError(f"{path} is inside the library's own directory")
        with self.catalog.session() as session:
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
        with self.catalog.session() as session:
            folder = session.scalar(select(Folder).where(Folder.path.in_([text, str(path)])))
            if folder is None:
                raise PhotosearchError(f"{path} is not a library folder")
            count = session.scalar(select(func.count()).select_from(Photo).where(
                Photo.folder_id == folder.id, Photo.present())) or 0
            session.delete(folder)
        if self._store is not None:
            self._sync_store()
            self._store.save()
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
            for found in walk_photos(Path(folder.path), rules,
                                     on_error=lambda p, r: unreadable.append((p, r))):
                observed[found.path] = found
        self._set_online(folders, offline)
        with self.catalog.session() as session:
            known = session.scalars(select(Photo.path).where(Photo.folder_id.in_(online_ids)))
            for path in known:
                observed.setdefault(path, None)
        online = [f for f in folders if f.path not in offline]
        changes = reconcile(self.catalog.session, observed, online)
        if changes.any and self._store is not None:
            self._sync_store()
        seconds = (datetime.now() - started).total_seconds()
        return ScanReport(changes, offline, unreadable, seconds)

    def index(
        self,
        progress: ProgressCallback | None = None,
        should_stop: Callable[[], bool] | None = None,
        lock_wait_s: float = 0.0,
        on_lock_wait: Callable[[int | None], None] | None = None,
        batch_size: int | None = None,
    ) -> IndexReport:
        """Scan, then encode everything pending. Holds the library's write lock throughout."""
        self.lock.acquire(lock_wait_s, on_lock_wait)
        try:
            store = self.store
            scan = self.scan()
            self._sync_store()
            encoding = encode_pending(
                self.catalog, store, self.encoder, self.model_id,
                progress=progress, should_stop=should_stop, batch_size=batch_size or BATCH_SIZE,
            )
            if store.dirty:
                store.save()
            return IndexReport(scan, encoding)
        finally:
            self.lock.release()

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
        self._sync_store()
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
        parsed = parse_query_text(query.text)
        negatives = list(parsed.negatives) + list(query.negatives)
        texts = ([parsed.positive] if parsed.positive else []) + negatives
        text_vectors = self.encoder.encode_texts(texts) if texts else None
        positives: list[np.ndarray] = []
        if parsed.positive:
            positives.append(text_vectors[0])  # type: ignore[index]
        exclude: set[int] = set()
        if query.like is not None:
            vector, own_id = self._image_query_vector(query.like)
            positives.append(vector)
            if own_id is not None:
                exclude.add(own_id)
        negative_vectors = list(text_vectors[1 if parsed.positive else 0:]) \
            if text_vectors is not None else []
        vector = combine_query(positives, negative_vectors)
        # Re-ranking (photosearch.rerank): text searches only; the top `depth` re-scored.
        reranker = self.reranker if parsed.positive and query.like is None else None
        k = max(query.k, reranker.depth) if reranker else query.k
        results = self.search_vector(vector, k, query, exclude)
        return reranker.rerank(texts, results)[:query.k] if reranker else results

    @property
    def reranker(self) -> Reranker | None:
        """The model that re-ranks text searches (photosearch.rerank), or None when off."""
        with self._open_lock:
            if self._reranker is False:
                from photosearch.rerank import saved_reranker

                self._reranker = saved_reranker(self)
            return self._reranker  # type: ignore[return-value]

    def use_reranker(self, reranker: Reranker | None) -> None:
        """Re-rank with ``reranker`` from now on (None: off), not saved (rerank.save_setting)."""
        with self._open_lock:
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
        store = self.store
        if len(store) == 0:
            self._raise_if_other_models()
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
        )

    # --- internals -----------------------------------------------------------------------

    def _vector_ids(self) -> set[int]:
        with self.catalog.session() as session:
            return set(session.scalars(
                select(Vector.photo_id).join(Photo, Photo.id == Vector.photo_id)
                .where(Vector.model_id == self.model_id, Photo.present())).all())

    def _fetch_vectors(self, ids: list[int]) -> tuple[np.ndarray, np.ndarray]:
        found_ids: list[int] = []
        blobs: list[bytes] = []
        with self.catalog.session() as session:
            for start in range(0, len(ids), 900):
                rows = session.execute(
                    select(Vector.photo_id, Vector.vector).where(
                        Vector.model_id == self.model_id,
                        Vector.photo_id.in_(ids[start:start + 900])))
                for pid, blob in rows:
                    found_ids.append(int(pid))
                    blobs.append(blob)
        dim = self.encoder.embed_dim
        vectors = (np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(-1, dim)
                   if blobs else np.zeros((0, dim), dtype=np.float32))
        return np.asarray(found_ids, dtype=np.int64), vectors

    def _sync_store(self) -> None:
        assert self._store is not None
        self._store.sync(self._vector_ids(), self._fetch_vectors)

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
            conditions.append(or_(Photo.path == prefix,
                                  Photo.path.startswith(prefix.rstrip(os.sep) + os.sep,
                                                        autoescape=True)))
        when = func.coalesce(Photo.taken_at, Photo.file_time)
        if query.after is not None:
            conditions.append(when >= query.after)
        if query.before is not None:
            conditions.append(when < query.before)
        if query.camera is not None:
            conditions.append(Photo.camera.ilike(f"%{query.camera}%"))
        with self.catalog.session() as session:
            return set(session.scalars(select(Photo.id).where(and_(*conditions))).all())

    def _image_query_vector(self, path: Path) -> tuple[np.ndarray, int | None]:
        resolved = str(path.expanduser().resolve())
        with self.catalog.session() as session:
            own_id = session.scalar(select(Photo.id).where(
                Photo.path.in_([resolved, str(path)]), Photo.present()))
        if own_id is not None and own_id in self.store.live_ids():
            return self.store.get_vectors([own_id])[0], own_id
        decoded = decode_for_model(Path(resolved), self.encoder.config.preprocessing)
        return self.encoder.encode_images(decoded.pixels[None])[0], own_id

    def _raise_if_other_models(self) -> None:
        with self.catalog.session() as session:
            others = session.execute(
                select(Model.identity, func.count(Vector.photo_id))
                .join(Vector, Vector.model_id == Model.id)
                .where(Model.identity != self.encoder.identity).group_by(Model.identity)
            ).all()
        if others:
            names = ", ".join(f"{identity} ({count} photos)" for identity, count in others)
            raise ModelMismatch(
                f"this library was indexed with {names}, not with the active model "
                f"{self.encoder.identity}; run `photosearch index` to encode it with the active "
                f"model, or switch back with --model"
            )

    def _results(self, hits: list[tuple[int, float]]) -> list[SearchResult]:
        """Attach each hit's file facts, reading only the columns a result needs (loading ORM
        rows cost ~0.1 ms each, most of a k=1000 search)."""
        if not hits:
            return []
        ids = [pid for pid, _ in hits]
        columns = (Photo.id, Photo.path, Photo.width, Photo.height, Photo.taken_at, Photo.camera)
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
            _, path, width, height, taken_at, camera = row
            results.append(SearchResult(pid, path, score, width, height, taken_at, camera))
        return results
