"""Catalog reads and edits that take and return plain values (paths, ids, counts).

The facade, the search and the watcher ask the catalog through these functions instead of
writing SQL themselves, so each statement exists once. Every function opens its own session
(SQLite in WAL mode: safe from several threads) and commits on success.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, and_, case, func, select, text, update

from photosearch.catalog.database import Catalog
from photosearch.catalog.reads import chunked
from photosearch.catalog.tables import Folder, Model, Photo, PhotoStatus, Vector, path_is_under
from photosearch.errors import PhotosearchError
from photosearch.paths import is_under

# --- folders --------------------------------------------------------------------------------


@dataclass(frozen=True)
class FolderInfo:
    """A library folder as the front ends show it."""

    path: str
    online: bool
    photos: int
    failed: int


def folder_rows(catalog: Catalog, *, online_only: bool = False) -> list[Folder]:
    """The library's folders as detached rows (for reconcile, which matches paths to them)."""
    query = select(Folder)
    if online_only:
        query = query.where(Folder.online.is_(True))
    with catalog.session() as session:
        folders = list(session.scalars(query).all())
        for folder in folders:
            session.expunge(folder)
    return folders


def folder_infos(catalog: Catalog, path: str | None = None) -> list[FolderInfo]:
    """Every folder (or just ``path``) with its present and failed photo counts, by path."""
    photos = func.count(Photo.id)
    failed = func.count(case((Photo.status == PhotoStatus.FAILED, 1)))
    query = (
        select(Folder.path, Folder.online, photos, failed)
        .outerjoin(Photo, and_(Photo.folder_id == Folder.id, Photo.present()))
        .group_by(Folder.id)
        .order_by(Folder.path)
    )
    if path is not None:
        query = query.where(Folder.path == path)
    with catalog.session() as session:
        return [
            FolderInfo(p, bool(online), int(n), int(f))
            for p, online, n, f in session.execute(query)
        ]


def add_folder(catalog: Catalog, path: str) -> None:
    """Record ``path`` as a library folder; a parent of existing folders absorbs them.
    Raises PhotosearchError when it is already covered by a folder."""
    with catalog.session() as session:
        folders = session.scalars(select(Folder)).all()
        for folder in folders:
            if is_under(path, folder.path):
                raise PhotosearchError(f"{path} is already in the library (via {folder.path})")
        added = Folder(path=path, added_at=datetime.now(), online=True)
        session.add(added)
        session.flush()
        for folder in folders:
            if folder.path != path and is_under(folder.path, path):
                for photo in folder.photos:
                    photo.folder_id = added.id
                session.flush()
                session.delete(folder)


def remove_folder(catalog: Catalog, paths: list[str]) -> int | None:
    """Delete the folder stored under one of ``paths`` with its photos and vectors; returns
    how many present photos it had, or None when no such folder exists."""
    with catalog.session() as session:
        folder = session.scalar(select(Folder).where(Folder.path.in_(paths)))
        if folder is None:
            return None
        count = (
            session.scalar(
                select(func.count())
                .select_from(Photo)
                .where(Photo.folder_id == folder.id, Photo.present())
            )
            or 0
        )
        session.delete(folder)
    return int(count)


def folder_has_photos(catalog: Catalog, folder_id: int) -> bool:
    """Whether the catalog knows any photo (tombstones included) in the folder."""
    with catalog.session() as session:
        return bool(
            session.scalar(
                select(func.count()).select_from(Photo).where(Photo.folder_id == folder_id)
            )
        )


def set_folder_online(catalog: Catalog, path: str, online: bool) -> None:
    """Mark one folder reachable or not (its photos are kept either way)."""
    set_folders_online(catalog, {path: online})


def set_folders_online(catalog: Catalog, states: dict[str, bool]) -> None:
    """Record each folder's reachability; a reachable folder is stamped as seen now."""
    now = datetime.now()
    with catalog.session() as session:
        for folder in session.scalars(select(Folder)):
            if folder.path not in states:
                continue
            folder.online = states[folder.path]
            if folder.online:
                folder.last_seen_at = now


# --- photos ---------------------------------------------------------------------------------


def reset_failed(catalog: Catalog, still_there: Callable[[str], bool]) -> int:
    """Mark failed photos for which ``still_there(path)`` holds as pending again; returns how
    many."""
    with catalog.session() as session:
        rows = session.execute(
            select(Photo.id, Photo.path).where(Photo.status == PhotoStatus.FAILED, Photo.present())
        ).all()
        ids = [pid for pid, path in rows if still_there(path)]
        for part in chunked(ids):
            session.execute(
                update(Photo).where(Photo.id.in_(part)).values(status=PhotoStatus.OK, error=None)
            )
    return len(ids)


def photo_paths_under(catalog: Catalog, directory: str) -> list[str]:
    """Paths of the catalogued photos inside ``directory`` (tombstones included)."""
    with catalog.session() as session:
        return [
            path
            for path in session.scalars(
                select(Photo.path).where(path_is_under(Photo.path, directory))
            ).all()
            if path != directory
        ]


def filtered_photo_ids(
    catalog: Catalog,
    *,
    folder: str | None = None,
    after: datetime | None = None,
    before: datetime | None = None,
    camera: str | None = None,
    conditions: Sequence[ColumnElement[bool]] = (),
) -> set[int]:
    """Ids of present photos inside ``folder``, shown-dated in [after, before), whose camera
    contains ``camera`` (case-insensitive), meeting every extra condition (the search layer's
    date-in-query and place filters). The shown date is capture time, else file time."""
    conditions = [Photo.present(), *conditions]
    if folder is not None:
        conditions.append(path_is_under(Photo.path, folder))
    when = func.coalesce(Photo.taken_at, Photo.file_time)
    if after is not None:
        conditions.append(when >= after)
    if before is not None:
        conditions.append(when < before)
    if camera is not None:
        conditions.append(Photo.camera.ilike(f"%{camera}%"))
    with catalog.session() as session:
        return set(session.scalars(select(Photo.id).where(and_(*conditions))).all())


@dataclass(frozen=True)
class PhotoCounts:
    photos: int  # present photos
    failed: int  # of those, the ones that could not be read
    failures: list[tuple[str, str]]  # (path, why), the first by path


def photo_counts(catalog: Catalog, failures_limit: int) -> PhotoCounts:
    """Present and failed photo counts, with the first ``failures_limit`` failures."""
    with catalog.session() as session:
        photos = session.scalar(select(func.count()).select_from(Photo).where(Photo.present())) or 0
        failed = (
            session.scalar(
                select(func.count())
                .select_from(Photo)
                .where(Photo.status == PhotoStatus.FAILED, Photo.present())
            )
            or 0
        )
        failures = [
            (p, e or "")
            for p, e in session.execute(
                select(Photo.path, Photo.error)
                .where(Photo.status == PhotoStatus.FAILED, Photo.present())
                .order_by(Photo.path)
                .limit(failures_limit)
            )
        ]
    return PhotoCounts(int(photos), int(failed), failures)


# --- vectors --------------------------------------------------------------------------------


def vectors_per_model(catalog: Catalog, *, except_identity: str | None = None) -> dict[str, int]:
    """Present photos with a vector, per model identity (optionally leaving one out)."""
    query = (
        select(Model.identity, func.count(Vector.photo_id))
        .join(Vector, Vector.model_id == Model.id)
        .join(Photo, Photo.id == Vector.photo_id)
        .where(Photo.present())
    )
    if except_identity is not None:
        query = query.where(Model.identity != except_identity)
    with catalog.session() as session:
        return {
            identity: int(count)
            for identity, count in session.execute(query.group_by(Model.identity))
        }


def vector_ids(catalog: Catalog, model_id: int) -> set[int]:
    """Ids of the present photos that have a vector for ``model_id``."""
    with catalog.session() as session:
        return set(
            session.scalars(
                select(Vector.photo_id)
                .join(Photo, Photo.id == Vector.photo_id)
                .where(Vector.model_id == model_id, Photo.present())
            ).all()
        )


def inline_vectors(
    catalog: Catalog, model_id: int, after: int, limit: int
) -> list[tuple[int, int, bytes]]:
    """(row id, photo id, value) of up to ``limit`` vectors of ``model_id`` still stored
    inline (not a 17-byte reference), by row id after ``after``: an index range (schema v6
    keys the model index by it), not a scan."""
    with catalog.session() as session:
        rows = session.execute(
            text(
                "SELECT rowid, photo_id, vector FROM vectors INDEXED BY ix_vectors_model "
                "WHERE model_id = :model AND (length(vector) != 17) = 1 AND rowid > :after "
                "ORDER BY rowid LIMIT :limit"
            ),
            {"model": model_id, "after": after, "limit": limit},
        )
        return [(int(rowid), int(pid), blob) for rowid, pid, blob in rows]


def replace_vector_values(
    catalog: Catalog, model_id: int, changes: Sequence[tuple[int, bytes, bytes | None]]
) -> int:
    """Replace each (photo id, old value, new value) where the row still holds the old value
    (a vector changed meanwhile is left alone); a new value of None deletes the row (the
    photo becomes pending). One transaction; returns how many rows changed."""
    updates = [
        {"model": model_id, "photo": pid, "old": old, "new": new}
        for pid, old, new in changes
        if new is not None
    ]
    deletes = [
        {"model": model_id, "photo": pid, "old": old} for pid, old, new in changes if new is None
    ]
    changed = 0
    with catalog.session() as session:
        if updates:
            changed += session.execute(
                text(
                    "UPDATE vectors SET vector = :new WHERE model_id = :model "
                    "AND photo_id = :photo AND vector = :old"
                ),
                updates,
            ).rowcount
        if deletes:
            changed += session.execute(
                text(
                    "DELETE FROM vectors WHERE model_id = :model AND photo_id = :photo "
                    "AND vector = :old"
                ),
                deletes,
            ).rowcount
    return changed


def catalog_bytes(catalog: Catalog) -> int:
    """Bytes the catalog takes on disk, its WAL and shared-memory files included (not the
    copies beside it: an upgrade's ``.v5.bak``, a repair's ``.damaged-*``)."""
    path = catalog.path
    files = [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")]
    return sum(p.stat().st_size for p in files if p.is_file())
