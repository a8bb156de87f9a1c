"""Applying what is on disk to the catalog: new, changed, touched, moved and deleted photos.

The same routine serves a full rescan and a watcher's batch of events: the caller passes the
paths it observed, each with its FileStat or None when it is gone. A vanished photo becomes a
tombstone (``missing_since`` set; hidden from search) rather than being deleted, and a new file
whose content hash matches a tombstone is a move: the row keeps its id and its vectors, even when
the watcher saw the delete and the create in different batches, or the create first (then the
match is a photo whose file is gone from an online folder). Old tombstones are purged by
``purge_tombstones``. ``apply_observed`` is the step a library runs: the observed paths inside
online folders reconciled, then their names put in the word index.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import NamedTuple

from sqlalchemy import and_, case, delete, func, insert, literal, select, update
from sqlalchemy.orm import Session

from photosearch.catalog import Catalog, Folder, Photo, PhotoStatus, Vector
from photosearch.catalog.queries import chunked, folder_rows
from photosearch.catalog.text_index import TermSource, drop_terms
from photosearch.errors import NotAPhotoFile
from photosearch.files.photo_files import printable
from photosearch.files.scanning import FileStat, content_hash, gc_paused
from photosearch.indexing.words import fill_name_words
from photosearch.paths import is_under

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
        if is_under(path, folder.path) and (best is None or len(folder.path) > len(best.path)):
            best = folder
    return best


def reconcile(
    session_factory: Callable[[], object],
    observed: dict[str, FileStat | None],
    folders: list[Folder],
    *,
    hash_workers: int = 2,
    complete_in: Collection[int] = (),
) -> ReconcileResult:
    """Bring catalog rows for the observed paths in line with disk.

    ``session_factory`` is ``Catalog.session`` (a context manager committing on success).
    Paths outside every folder are ignored. Photos of offline folders must not be passed in.
    ``complete_in``: ids of folders that were walked whole, so their catalogued photos missing
    from ``observed`` are gone (a full scan); saves the caller reading every path.
    """
    result = ReconcileResult()
    with session_factory() as session, gc_paused():  # type: ignore[attr-defined]
        observed, stamps = _stamps(session, observed, set(complete_in))
    to_hash: list[FileStat] = []
    wanted: list[int] = []  # ids of photos needing their full row: gone, or to hash
    for path, found in observed.items():
        stamp = stamps.get(path)
        if found is None:
            if stamp is not None and not stamp[_TOMBSTONE]:
                wanted.append(stamp[_ID])
            continue
        if (
            stamp is None
            or stamp[_TOMBSTONE]
            or stamp[_SIZE] != found.size
            or stamp[_MTIME] != found.mtime_ns
        ):
            to_hash.append(found)
        elif (stamp[_UNREAD_ERROR] or "").startswith(RETRIED_READ_ERRORS):
            to_hash.append(found)  # earlier read failed (e.g. permissions): try again
    wanted += [stamps[f.path][_ID] for f in to_hash if f.path in stamps]
    with session_factory() as session:  # type: ignore[attr-defined]
        known = _known_photos(session, wanted)
    gone = {
        path: photo
        for path, photo in known.items()
        if observed.get(path) is None and photo.missing_since is None
    }

    gone_by_hash: dict[str, list[KnownPhoto]] = {}
    for photo in gone.values():
        if photo.content_hash:
            gone_by_hash.setdefault(photo.content_hash, []).append(photo)

    with ThreadPoolExecutor(max_workers=hash_workers, thread_name_prefix="hash") as pool:
        for start in range(0, len(to_hash), COMMIT_EVERY):
            chunk = to_hash[start : start + COMMIT_EVERY]
            hashes = list(pool.map(_safe_hash, (f.path for f in chunk)))
            with session_factory() as session:  # type: ignore[attr-defined]
                _apply_chunk(
                    session,
                    list(zip(chunk, hashes, strict=True)),
                    known,
                    gone,
                    gone_by_hash,
                    folders,
                    result,
                )

    if gone:
        now = datetime.now()
        with session_factory() as session:  # type: ignore[attr-defined]
            ids = [photo.id for photo in gone.values()]
            for part in chunked(ids):
                session.execute(update(Photo).where(Photo.id.in_(part)).values(missing_since=now))
            result.removed += len(ids)
    return result


def apply_observed(
    catalog: Catalog,
    observed: dict[str, FileStat | None],
    complete_in: Collection[int] | None = None,
) -> ReconcileResult:
    """What was observed on disk (a file's stat, or None for a vanished path) into the catalog
    and its word index: the step a full scan and a watcher batch share.

    Paths outside online folders are left alone (an offline disk is not a deletion).
    ``complete_in``: ids of folders observed whole (a full scan), whose other photos are gone.
    """
    folders = folder_rows(catalog, online_only=True)
    inside = {
        path: found
        for path, found in observed.items()
        if any(is_under(path, f.path) for f in folders)
    }
    changes = reconcile(catalog.session, inside, folders, complete_in=complete_in or ())
    # folder and file names into the word index: every photo lacking them after a full scan,
    # the observed ones after a watcher batch
    fill_name_words(catalog, None if complete_in else list(inside))
    return changes


def purge_tombstones(session_factory: Callable[[], object], older_than: timedelta) -> int:
    """Delete tombstones (and so their vectors) that have waited longer than ``older_than``."""
    cutoff = datetime.now() - older_than
    with session_factory() as session:  # type: ignore[attr-defined]
        result = session.execute(delete(Photo).where(Photo.missing_since < cutoff))
        return int(result.rowcount or 0)


class KnownPhoto(NamedTuple):
    """The columns of a catalogued photo that reconciling needs: read as plain tuples, because
    building ORM objects for every photo of a large library costs more than walking its disk."""

    id: int
    path: str
    size: int
    mtime_ns: int
    content_hash: str
    status: str
    error: str | None
    missing_since: datetime | None


class _HashMatch(NamedTuple):
    """A catalogued photo with the content hash of a new file: a tombstone to revive, a photo
    whose file vanished, or a twin whose vectors a byte-identical copy reuses."""

    id: int
    path: str
    folder_id: int
    content_hash: str
    status: str
    width: int | None
    height: int | None
    taken_at: datetime | None
    camera: str | None
    missing_since: datetime | None


_KNOWN_COLUMNS = (
    Photo.id,
    Photo.path,
    Photo.size,
    Photo.mtime_ns,
    Photo.content_hash,
    Photo.status,
    Photo.error,
    Photo.missing_since,
)
_MATCH_COLUMNS = (
    Photo.id,
    Photo.path,
    Photo.folder_id,
    Photo.content_hash,
    Photo.status,
    Photo.width,
    Photo.height,
    Photo.taken_at,
    Photo.camera,
    Photo.missing_since,
)


def _apply_chunk(
    session: Session,
    items: list[tuple[FileStat, Hashed]],
    known: dict[str, KnownPhoto],
    gone: dict[str, KnownPhoto],
    gone_by_hash: dict[str, list[KnownPhoto]],
    folders: list[Folder],
    result: ReconcileResult,
) -> None:
    """Apply one chunk of hashed files: changes to catalogued paths first (so the lookups for
    new files see them), then the new files with one lookup of their hashes and one insert."""
    touched: list[dict[str, object]] = []
    changed: list[dict[str, object]] = []
    new: list[tuple[FileStat, str | None, str | None, Folder]] = []
    for found, (digest, error, vanished) in items:
        if vanished:
            photo = known.get(found.path)
            if photo is not None:
                gone[found.path] = photo
            continue
        folder = folder_for(found.path, folders)
        if folder is None:
            continue
        if error is not None:
            result.errors.append((found.path, error))
        photo = known.get(found.path)
        if photo is None:
            new.append((found, digest, error, folder))
        elif digest is not None and digest == photo.content_hash and photo.status == PhotoStatus.OK:
            touched.append(
                {
                    "id": photo.id,
                    "missing_since": None,  # a tombstone's path is back
                    "size": found.size,
                    "mtime_ns": found.mtime_ns,
                }
            )
            result.touched += 1
        else:
            changed.append(
                {"id": photo.id, "missing_since": None, **_refreshed(found, digest, error)}
            )
            result.changed.append(photo.id)
    for rows in (touched, changed):
        if rows:
            session.execute(update(Photo), rows)
    ids = [row["id"] for row in changed]
    for part in chunked(ids):
        session.execute(delete(Vector).where(Vector.photo_id.in_(part)))
    if new:
        _add_new(session, new, gone, gone_by_hash, folders, result)


def _add_new(
    session: Session,
    new: list[tuple[FileStat, str | None, str | None, Folder]],
    gone: dict[str, KnownPhoto],
    gone_by_hash: dict[str, list[KnownPhoto]],
    folders: list[Folder],
    result: ReconcileResult,
) -> None:
    """Files at paths the catalog does not know: moves (by content hash) or new photos."""
    matches = _photos_with_hashes(session, {digest for _, digest, _, _ in new if digest})
    roots = {folder.id: folder.path for folder in folders}
    claimed: set[int] = set()  # rows this chunk already moved onto a new path
    moves: list[dict[str, object]] = []
    rows: list[dict[str, object]] = []
    twins: list[int | None] = []
    now = datetime.now()
    for found, digest, error, folder in new:
        candidates = matches.get(digest, []) if digest else []
        moved_id = None
        if digest is not None and gone_by_hash.get(digest):
            moved = gone_by_hash[digest].pop()
            gone.pop(moved.path, None)
            moved_id = moved.id
        elif candidates:
            moved_id = _tombstone_or_vanished(candidates, claimed, roots, gone)
        if moved_id is not None:
            claimed.add(moved_id)
            moves.append(
                {
                    "id": moved_id,
                    "missing_since": None,
                    "path": found.path,
                    "folder_id": folder.id,
                    "size": found.size,
                    "mtime_ns": found.mtime_ns,
                    "file_time": _file_time(found),
                }
            )
            result.moved += 1
            continue
        twin = _indexed_twin(candidates, claimed)
        rows.append(
            {
                "folder_id": folder.id,
                "path": found.path,
                "size": found.size,
                "mtime_ns": found.mtime_ns,
                "content_hash": digest or "",
                "file_time": _file_time(found),
                "status": PhotoStatus.FAILED if error else PhotoStatus.OK,
                "error": error,
                "added_at": now,
                "width": twin.width if twin else None,
                "height": twin.height if twin else None,
                "taken_at": twin.taken_at if twin else None,
                "camera": twin.camera if twin else None,
            }
        )
        twins.append(twin.id if twin else None)
    if moves:
        session.execute(update(Photo), moves)
        # a moved photo's name words are made again from its new path (photo_words)
        drop_terms(session, [move["id"] for move in moves], TermSource.NAME)
    if not rows:
        return
    added = list(
        session.scalars(insert(Photo).returning(Photo.id, sort_by_parameter_order=True), rows)
    )
    result.added.extend(added)
    for photo_id, twin_id in zip(added, twins, strict=True):
        if twin_id is not None:
            _copy_vectors(session, photo_id, twin_id)
            result.duplicates += 1


def _photos_with_hashes(session: Session, digests: set[str]) -> dict[str, list[_HashMatch]]:
    """Catalogued photos by content hash: tombstones first (newest first), then the rest."""
    matches: dict[str, list[_HashMatch]] = {}
    ordered = sorted(digests)
    for part in chunked(ordered):
        for row in session.execute(select(*_MATCH_COLUMNS).where(Photo.content_hash.in_(part))):
            matches.setdefault(row.content_hash, []).append(_HashMatch(*row))
    for rows in matches.values():
        rows.sort(key=lambda r: r.id)
        rows.sort(key=lambda r: r.missing_since or datetime.min, reverse=True)  # stable
    return matches


def _tombstone_or_vanished(
    candidates: list[_HashMatch],
    claimed: set[int],
    roots: dict[int, str],
    gone: dict[str, KnownPhoto],
) -> int | None:
    """The most recent tombstone with this content; else a catalogued photo with it whose file
    is no longer on disk, in a folder that is: the other half of a move whose delete the watcher
    has not reported yet (a renamed directory's events can arrive create-first). Offline folders
    never give up their rows."""
    for candidate in candidates:
        if candidate.missing_since is not None and candidate.id not in claimed:
            return candidate.id
    for candidate in candidates:
        if candidate.missing_since is not None or candidate.id in claimed:
            continue
        root = roots.get(candidate.folder_id)
        if root and os.path.isdir(root) and not os.path.lexists(candidate.path):
            gone.pop(candidate.path, None)  # it moves, so it is not tombstoned at the end
            return candidate.id
    return None


def _indexed_twin(candidates: list[_HashMatch], claimed: set[int]) -> _HashMatch | None:
    """A byte-identical photo that was read (it has a size): its copy reuses its vectors.
    Tombstones count only when this chunk moved them back onto disk."""
    for candidate in sorted(candidates, key=lambda r: r.id):  # the first, as before
        if candidate.missing_since is not None and candidate.id not in claimed:
            continue
        if candidate.status == PhotoStatus.OK and candidate.width is not None:
            return candidate
    return None


def _copy_vectors(session: Session, photo_id: int, twin_id: int) -> None:
    """A byte-identical copy of an indexed photo reuses its vectors instead of re-encoding."""
    session.execute(
        insert(Vector).from_select(
            ["photo_id", "model_id", "vector"],
            select(literal(photo_id), Vector.model_id, Vector.vector).where(
                Vector.photo_id == twin_id
            ),
        )
    )


def _refreshed(found: FileStat, digest: str | None, error: str | None) -> dict[str, object]:
    """A changed file's new column values: read again from scratch."""
    return {
        "size": found.size,
        "mtime_ns": found.mtime_ns,
        "file_time": _file_time(found),
        "content_hash": digest or "",
        "width": None,
        "height": None,
        "taken_at": None,
        "camera": None,
        "status": PhotoStatus.FAILED if error else PhotoStatus.OK,
        "error": error,
    }


# A stamp tells an unchanged file from a changed one; one is read for every observed path, as a
# plain row (building a named row, let alone an ORM object, for every photo of a large library
# costs more than walking its disk): path, id, size, mtime_ns, whether it is a tombstone, why it
# failed before it could even be hashed, folder id.
_ID, _SIZE, _MTIME, _TOMBSTONE, _UNREAD_ERROR, _FOLDER = range(1, 7)
_STAMP_SQL = (
    "SELECT path, id, size, mtime_ns, missing_since IS NOT NULL,"
    " CASE WHEN status = 'failed' AND content_hash = '' THEN error END, folder_id FROM photos"
)


def _stamps(
    session: Session, observed: dict[str, FileStat | None], complete_in: set[int]
) -> tuple[dict[str, FileStat | None], dict[str, tuple]]:
    """The stamps of the observed paths, and ``observed`` with the photos of ``complete_in``
    folders that were not seen added as gone. A full scan asks for most of the catalog: then
    one read of the whole table is cheaper than thousands of bound paths."""
    total = session.scalar(select(func.count()).select_from(Photo)) or 0
    if complete_in or len(observed) * 2 >= total:
        raw = session.connection().connection.dbapi_connection
        stamps = {row[0]: row for row in raw.execute(_STAMP_SQL).fetchall()}
        for stored in [path for path in stamps if path.__class__ is bytes]:
            stamps[os.fsdecode(stored)] = stamps.pop(stored)  # a name that is not UTF-8
        observed = dict(observed)
        for path in [path for path in stamps if path not in observed]:
            if stamps[path][_FOLDER] in complete_in:
                observed[path] = None
            else:
                del stamps[path]
        return observed, stamps
    table = Photo.__table__
    paths = list(observed)
    stamps = {}
    for part in chunked(paths):
        query = select(
            table.c.path,
            table.c.id,
            table.c.size,
            table.c.mtime_ns,
            table.c.missing_since.is_not(None),
            case(
                (
                    and_(table.c.status == PhotoStatus.FAILED, table.c.content_hash == ""),
                    table.c.error,
                )
            ),
            table.c.folder_id,
        ).where(table.c.path.in_(part))
        stamps.update((row[0], tuple(row)) for row in session.execute(query).all())
    return observed, stamps


def _known_photos(session: Session, ids: list[int]) -> dict[str, KnownPhoto]:
    """Full rows of the photos that need more than their stamp (to hash, or gone)."""
    table = Photo.__table__
    columns = [table.c[column.key] for column in _KNOWN_COLUMNS]
    known: dict[str, KnownPhoto] = {}
    for part in chunked(ids):
        for row in session.execute(select(*columns).where(table.c.id.in_(part))).all():
            known[row[1]] = KnownPhoto(*row)
    return known


class Hashed(NamedTuple):
    """A file's content hash, or why it has none; ``gone``: it vanished (or became a folder)
    between the walk and the read, so it is treated as deleted, not as a failure."""

    digest: str | None
    error: str | None = None
    gone: bool = False


def _safe_hash(path: str) -> Hashed:
    try:
        return Hashed(content_hash(path))
    except NotAPhotoFile as exc:  # a FIFO, a device, a 20 GB file: refused, not read
        return Hashed(None, printable(str(exc)))
    except (FileNotFoundError, IsADirectoryError):
        return Hashed(None, gone=True)
    except PermissionError:
        return Hashed(None, "permission denied: the file is not readable")
    except OSError as exc:
        if exc.errno == errno.ENAMETOOLONG:
            return Hashed(None, f"path too long to open ({len(path):,} characters)")
        return Hashed(None, f"could not read the file: {printable(exc.strerror or str(exc))}")


def _file_time(found: FileStat) -> datetime:
    return datetime.fromtimestamp(found.mtime_ns / 1e9)
