"""Applying what is on disk to the catalog: new, changed, touched, moved and deleted photos.

The same routine serves a full rescan and a watcher's batch of events: the caller passes the
paths it observed, each with its FileStat or None when it is gone. A vanished photo becomes a
tombstone (``missing_since`` set; hidden from search) rather than being deleted, and a new file
whose content hash matches a tombstone is a move: the row keeps its id and its vectors, even when
the watcher saw the delete and the create in different batches, or the create first (then the
match is a photo whose file is gone from an online folder). Old tombstones are purged by
``purge_tombstones``.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from photosearch.catalog import Folder, Photo, Vector
from photosearch.errors import NotAPhotoFile
from photosearch.photo_files import printable
from photosearch.scanning import FileStat, content_hash

TOMBSTONE_TTL = timedelta(hours=1)  # how long a vanished photo waits for a matching reappearance
# A failed photo is hashed again on every scan only when the failure may pass by itself (its
# permissions fixed); a file refused for what it is waits until its size or mtime changes.
RETRIED_READ_ERRORS = ("permission denied", "could not read the file")
COMMIT_EVERY = 500  # new files per transaction, so an interrupted first scan keeps its progress


@dataclass
class ReconcileResult:
    """What changed; ids refer to photos.id."""

    added: list[int] = field(default_factory=list)
    changed: list[int] = field(default_factory=list)
    touched: int = 0
    moved: int = 0
    removed: int = 0
    duplicates: int = 0
    errors: list[tuple[str, str]] = field(default_factory=list)  # (path, why it was not read)

    @property
    def any(self) -> bool:
        return bool(self.added or self.changed or self.moved or self.removed or self.duplicates)


def folder_for(path: str, folders: list[Folder]) -> Folder | None:
    """The deepest library folder containing ``path``."""
    best: Folder | None = None
    for folder in folders:
        inside = path == folder.path or path.startswith(folder.path.rstrip(os.sep) + os.sep)
        if inside and (best is None or len(folder.path) > len(best.path)):
            best = folder
    return best


def reconcile(
    session_factory: Callable[[], object],
    observed: dict[str, FileStat | None],
    folders: list[Folder],
    *,
    hash_workers: int = 2,
) -> ReconcileResult:
    """Bring catalog rows for the observed paths in line with disk.

    ``session_factory`` is ``Catalog.session`` (a context manager committing on success).
    Paths outside every folder are ignored. Photos of offline folders must not be passed in.
    """
    result = ReconcileResult()
    with session_factory() as session:  # type: ignore[attr-defined]
        known = _known_photos(session, list(observed))
    gone = {
        path: photo for path, photo in known.items()
        if observed.get(path) is None and photo.missing_since is None
    }
    to_hash: list[FileStat] = []
    for path, found in observed.items():
        if found is None:
            continue
        photo = known.get(path)
        if (photo is None or photo.missing_since is not None or photo.size != found.size
                or photo.mtime_ns != found.mtime_ns):
            to_hash.append(found)
        elif (photo.status == "failed" and not photo.content_hash
              and (photo.error or "").startswith(RETRIED_READ_ERRORS)):
            to_hash.append(found)  # earlier read failed (e.g. permissions): try again

    gone_by_hash: dict[str, list[Photo]] = {}
    for photo in gone.values():
        if photo.content_hash:
            gone_by_hash.setdefault(photo.content_hash, []).append(photo)

    with ThreadPoolExecutor(max_workers=hash_workers, thread_name_prefix="hash") as pool:
        for start in range(0, len(to_hash), COMMIT_EVERY):
            chunk = to_hash[start : start + COMMIT_EVERY]
            hashes = list(pool.map(_safe_hash, (f.path for f in chunk)))
            with session_factory() as session:  # type: ignore[attr-defined]
                for found, (digest, error) in zip(chunk, hashes, strict=True):
                    _apply_one(session, found, digest, error, known, gone, gone_by_hash,
                               folders, result)

    if gone:
        now = datetime.now()
        with session_factory() as session:  # type: ignore[attr-defined]
            ids = [photo.id for photo in gone.values()]
            for start in range(0, len(ids), 900):
                session.execute(
                    update(Photo).where(Photo.id.in_(ids[start : start + 900]))
                    .values(missing_since=now))
            result.removed += len(ids)
    return result


def purge_tombstones(session_factory: Callable[[], object], older_than: timedelta) -> int:
    """Delete tombstones (and so their vectors) that have waited longer than ``older_than``."""
    cutoff = datetime.now() - older_than
    with session_factory() as session:  # type: ignore[attr-defined]
        result = session.execute(delete(Photo).where(Photo.missing_since < cutoff))
        return int(result.rowcount or 0)


def _apply_one(
    session: Session,
    found: FileStat,
    digest: str | None,
    error: str | None,
    known: dict[str, Photo],
    gone: dict[str, Photo],
    gone_by_hash: dict[str, list[Photo]],
    folders: list[Folder],
    result: ReconcileResult,
) -> None:
    if error == "gone":
        photo = known.get(found.path)
        if photo is not None:
            gone[found.path] = photo
        return
    folder = folder_for(found.path, folders)
    if folder is None:
        return
    if error is not None:
        result.errors.append((found.path, error))
    photo = known.get(found.path)
    if photo is not None:
        photo = session.merge(photo)
        photo.missing_since = None  # a tombstone whose path is back
        if digest is not None and digest == photo.content_hash and photo.status == "ok":
            photo.size, photo.mtime_ns = found.size, found.mtime_ns  # touched, same content
            result.touched += 1
            return
        _refresh(photo, found, digest, error)
        session.execute(delete(Vector).where(Vector.photo_id == photo.id))
        result.changed.append(photo.id)
        return
    moved = None
    if digest is not None and gone_by_hash.get(digest):
        moved = gone_by_hash[digest].pop()
        gone.pop(moved.path, None)
        moved = session.merge(moved)
    elif digest is not None:
        moved = session.scalar(
            select(Photo).where(Photo.content_hash == digest, Photo.missing_since.is_not(None))
            .order_by(Photo.missing_since.desc()).limit(1))
        if moved is None:
            moved = _vanished_twin(session, digest, folders)
    if moved is not None:
        moved.missing_since = None
        moved.path, moved.folder_id = found.path, folder.id
        moved.size, moved.mtime_ns = found.size, found.mtime_ns
        moved.file_time = _file_time(found)
        result.moved += 1
        return
    photo = Photo(
        folder_id=folder.id, path=found.path, size=found.size, mtime_ns=found.mtime_ns,
        content_hash=digest or "", file_time=_file_time(found), status="ok",
        added_at=datetime.now(),
    )
    if error is not None:
        photo.status, photo.error = "failed", error
    session.add(photo)
    session.flush()
    result.added.append(photo.id)
    if digest is not None:
        _copy_vectors_of_twin(session, photo, digest, result)


def _vanished_twin(session: Session, digest: str, folders: list[Folder]) -> Photo | None:
    """A catalogued photo with this content whose file is no longer on disk, in a folder that
    is: the other half of a move whose delete the watcher has not reported yet (a renamed
    directory's events can arrive create-first). Offline folders never give up their rows."""
    candidates = session.scalars(
        select(Photo).where(Photo.content_hash == digest, Photo.present())).all()
    if not candidates:
        return None  # the common case, a new photo: no folder needs checking
    roots = {folder.id: folder.path for folder in folders}
    for candidate in candidates:
        root = roots.get(candidate.folder_id)
        if root and os.path.isdir(root) and not os.path.lexists(candidate.path):
            return candidate
    return None


def _copy_vectors_of_twin(
    session: Session, photo: Photo, digest: str, result: ReconcileResult
) -> None:
    """A byte-identical copy of an indexed photo reuses its vectors instead of re-encoding."""
    twin = session.scalar(
        select(Photo).where(
            Photo.content_hash == digest, Photo.id != photo.id, Photo.status == "ok",
            Photo.width.is_not(None), Photo.present(),
        )
    )
    if twin is None:
        return
    photo.width, photo.height = twin.width, twin.height
    photo.taken_at, photo.camera = twin.taken_at, twin.camera
    for vector in session.scalars(select(Vector).where(Vector.photo_id == twin.id)).all():
        session.add(Vector(photo_id=photo.id, model_id=vector.model_id, vector=vector.vector))
    result.duplicates += 1


def _refresh(photo: Photo, found: FileStat, digest: str | None, error: str | None) -> None:
    photo.size, photo.mtime_ns = found.size, found.mtime_ns
    photo.file_time = _file_time(found)
    photo.content_hash = digest or ""
    photo.width = photo.height = None
    photo.taken_at = photo.camera = None
    photo.status, photo.error = ("failed", error) if error else ("ok", None)


def _known_photos(session: Session, paths: list[str]) -> dict[str, Photo]:
    known: dict[str, Photo] = {}
    for start in range(0, len(paths), 900):
        rows = session.scalars(select(Photo).where(Photo.path.in_(paths[start : start + 900])))
        for photo in rows:
            session.expunge(photo)
            known[photo.path] = photo
    return known


def _safe_hash(path: str) -> tuple[str | None, str | None]:
    try:
        return content_hash(path), None
    except NotAPhotoFile as exc:  # a FIFO, a device, a 20 GB file: refused, not read
        return None, printable(str(exc))
    except FileNotFoundError:
        return None, "gone"
    except PermissionError:
        return None, "permission denied: the file is not readable"
    except IsADirectoryError:
        return None, "gone"
    except OSError as exc:
        if exc.errno == errno.ENAMETOOLONG:
            return None, f"path too long to open ({len(path):,} characters)"
        return None, f"could not read the file: {printable(exc.strerror or str(exc))}"


def _file_time(found: FileStat) -> datetime:
    return datetime.fromtimestamp(found.mtime_ns / 1e9)
