"""`photosearch repair`: put a damaged catalog right without losing vectors that can be trusted.

1. A damaged catalog (header check + full ``integrity_check``) is moved aside, never deleted.
2. The newest backup that passes ``integrity_check`` becomes the catalog; with none, an empty one.
3. What can still be read from the damaged file (row by row, skipping damaged pages) is merged
   in: folders, and photos added since the backup whose file still has the recorded size and
   modification time.
4. Vectors are reused for those photos: first from the saved graphs whose checksum verifies (a
   label is trusted when the damaged catalog's row for it names the same file content as the
   catalog's row), else from the damaged catalog's own vector rows when they are finite and unit
   length. The caller then indexes, which scans the folders and encodes only what is left.

A mark file lives from the first change until the merge commits, so a repair killed midway is
finished by the next one (which salvages the file the first moved aside).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

import numpy as np

from photosearch.catalog import vector_changes
from photosearch.catalog.backup import BACKUP_DIR, copy_database, newest_good_backup
from photosearch.catalog.database import SQLITE_MAGIC, Catalog, integrity_problem
from photosearch.catalog.queries import chunked
from photosearch.library import saved_vectors
from photosearch.vectors import vector_slots
from photosearch.vectors.graph_integrity import holds_saved_vectors
from photosearch.vectors.store import VectorStore

log = logging.getLogger(__name__)
CHUNK_ROWS = 512
SMALLEST_SPLIT = 8  # a failing range this small is skipped whole (bounds the cost of bisecting)
EMPTY_CHUNKS_TO_STOP = 8  # probing a table whose max(rowid) is unreadable
UNFINISHED_MARK = "repair.unfinished"
PHOTO_COLUMNS = (
    "id",
    "folder_id",
    "path",
    "size",
    "mtime_ns",
    "content_hash",
    "width",
    "height",
    "taken_at",
    "file_time",
    "camera",
    "status",
    "error",
    "added_at",
)


@dataclass(frozen=True)
class RepairReport:
    problem: str | None  # what was wrong with the catalog; None when it was sound
    moved_aside: str | None = None
    restored_from: str | None = None
    salvaged_photos: int = 0
    reused_vectors: dict[str, int] = field(default_factory=dict)
    unreadable_rows: int = 0


def catalog_problem(catalog: Path, vectors_dir: Path) -> str | None:
    """None when the catalog is sound (full integrity_check), else what is wrong."""
    if not catalog.exists() or catalog.stat().st_size == 0:
        if holds_saved_vectors(vectors_dir):
            return "the catalog is missing or empty but saved vectors exist"
        return None
    return integrity_problem(catalog, quick=False)


def repair_catalog(directory: Path, vectors_dir: Path, catalog_name: str) -> RepairReport:
    """Repair the catalog in ``directory`` if it is damaged. The caller holds the write lock."""
    catalog = directory / catalog_name
    unfinished = directory / UNFINISHED_MARK
    problem = catalog_problem(catalog, vectors_dir)
    if problem is None and not unfinished.exists():
        return RepairReport(problem=None)
    unfinished.touch()  # until the merge commits: a kill before then is finished next time
    aside = backup = None
    if problem is None:
        problem = "a previous repair was interrupted"
    else:
        aside = _move_aside(catalog)
        backup = newest_good_backup(directory / BACKUP_DIR)
        if backup is not None:
            copy_database(backup, catalog)
    restored = Catalog(catalog)  # creates an empty catalog, or upgrades an old backup
    vector_changes.renew_epoch(restored)  # saved graphs compare every id with it once
    restored.close()
    source = aside or _earlier_damaged(catalog)  # a repair killed midway left it there
    readable = _readable_copy(source) if source is not None else None
    salvage = _Salvage(readable) if readable is not None else None
    try:
        counts = _merge(catalog, salvage, _saved_graphs(vectors_dir))
    finally:
        if salvage is not None:
            salvage.close()
        if readable is not None:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{readable}{suffix}").unlink(missing_ok=True)
    unfinished.unlink()
    return RepairReport(
        problem=problem,
        moved_aside=str(aside) if aside else None,
        restored_from=str(backup) if backup else None,
        salvaged_photos=counts[0],
        reused_vectors=counts[1],
        unreadable_rows=salvage.skipped if salvage else 0,
    )


def _move_aside(catalog: Path) -> Path | None:
    """Rename the damaged catalog (and its WAL, which belongs to it) out of the way; nothing
    is deleted but the WAL's shared-memory index, which SQLite rebuilds."""
    Path(f"{catalog}-shm").unlink(missing_ok=True)
    if not catalog.exists() and not Path(f"{catalog}-wal").exists():
        return None
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S-%f")
    aside = catalog.with_name(f"{catalog.name}.damaged-{stamp}")
    for suffix in ("-wal", ""):
        source = Path(f"{catalog}{suffix}")
        if source.exists():
            os.replace(source, f"{aside}{suffix}")
    return aside if aside.exists() else None


def _earlier_damaged(catalog: Path) -> Path | None:
    """The newest catalog a previous repair moved aside, if any."""
    earlier = sorted(catalog.parent.glob(f"{catalog.name}.damaged-*[0-9]"))
    return earlier[-1] if earlier else None


def _readable_copy(damaged: Path) -> Path:
    """A copy of the damaged file (with its WAL) to read from; when its first 100 bytes are not
    an SQLite header any more, a plain header is written in their place, since the rest of the
    file (the schema on page 1, the tables after it) is often intact."""
    copy = damaged.with_name(f"{damaged.name}.reading")
    shutil.copyfile(damaged, copy)
    if Path(f"{damaged}-wal").exists():
        shutil.copyfile(f"{damaged}-wal", f"{copy}-wal")
    with copy.open("r+b") as handle:
        header = handle.read(100)
        if not header.startswith(SQLITE_MAGIC):
            page_size = _guess_page_size(handle)
            handle.seek(0)
            handle.write(_plain_header(page_size, copy.stat().st_size // page_size))
    return copy


def _guess_page_size(handle: BinaryIO) -> int:
    """The page size whose page 2 starts like a b-tree page (SQLite's default is 4096)."""
    for size in (4096, 1024, 2048, 8192, 16384, 32768, 65536, 512):
        handle.seek(size)
        if handle.read(1) in (b"\x02", b"\x05", b"\x0a", b"\x0d"):
            return size
    return 4096


def _plain_header(page_size: int, pages: int) -> bytes:
    """A 100-byte SQLite header: rollback journal, UTF-8, schema format 4."""
    header = bytearray(100)
    header[0:16] = SQLITE_MAGIC
    header[16:18] = (1 if page_size == 65536 else page_size).to_bytes(2, "big")
    header[18:24] = bytes([1, 1, 0, 64, 32, 32])
    header[24:28] = (1).to_bytes(4, "big")
    header[28:32] = pages.to_bytes(4, "big")
    header[44:48] = (4).to_bytes(4, "big")
    header[56:60] = (1).to_bytes(4, "big")
    header[92:96] = (1).to_bytes(4, "big")
    header[96:100] = (3_040_000).to_bytes(4, "big")  # the SQLite version "that wrote it"
    return bytes(header)


class _Salvage:
    """Rows still readable in a damaged catalog, read in chunks that are split on errors."""

    def __init__(self, path: Path) -> None:
        self.connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        self.skipped = 0
        try:
            # lets SQLite read a file shorter than its header says, page by page, instead of
            # refusing it whole (the connection is read-only: nothing is written)
            self.connection.execute("PRAGMA writable_schema=ON")
            self.tables = {
                row[0]
                for row in self.connection.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table'"
                )
            }
        except sqlite3.DatabaseError:
            self.tables = set()  # the schema itself is gone: nothing can be read

    def close(self) -> None:
        self.connection.close()

    def rows(self, table: str, columns: tuple[str, ...]) -> Iterator[tuple]:
        if table not in self.tables:
            return
        top = self._max_rowid(table)
        empty = 0
        start = 0
        while (top is None and empty < EMPTY_CHUNKS_TO_STOP) or (top is not None and start <= top):
            found = list(
                self._range(
                    table, columns, start, start + CHUNK_ROWS - 1, count_skipped=top is not None
                )
            )
            empty = 0 if found else empty + 1
            yield from found
            start += CHUNK_ROWS

    def _max_rowid(self, table: str) -> int | None:
        try:
            row = self.connection.execute(f"SELECT max(rowid) FROM {table}").fetchone()
            return int(row[0] or 0)
        except sqlite3.DatabaseError:
            return None  # probe chunk by chunk until several in a row hold nothing

    def _range(
        self, table: str, columns: tuple[str, ...], low: int, high: int, count_skipped: bool = True
    ) -> Iterator[tuple]:
        sql = f"SELECT {', '.join(columns)} FROM {table} WHERE rowid BETWEEN ? AND ?"
        try:
            rows = self.connection.execute(sql, (low, high)).fetchall()
        except sqlite3.DatabaseError:
            if high - low < SMALLEST_SPLIT:
                self.skipped += (high - low + 1) if count_skipped else 0
                return
            middle = (low + high) // 2
            yield from self._range(table, columns, low, middle, count_skipped)
            yield from self._range(table, columns, middle + 1, high, count_skipped)
            return
        yield from rows


def _saved_graphs(vectors_dir: Path) -> dict[str, int]:
    """identity -> dimension of every graph saved in ``vectors_dir`` (read from commit points)."""
    found: dict[str, int] = {}
    for meta_path in sorted(vectors_dir.glob("*.json")) if vectors_dir.is_dir() else []:
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            found[str(meta["identity"])] = int(meta["dim"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return found


def _trusted_graph(vectors_dir: Path, identity: str, dim: int) -> VectorStore | None:
    """The saved graph of one model when it loads and its checksum verifies, else None."""
    store = VectorStore(vectors_dir, identity, dim)
    if store.load_problem is not None or not store.meta_path.exists():
        log.warning("graph of %s not trusted: %s", identity, store.load_problem)
        return None
    return store


def _merge(
    catalog: Path, salvage: _Salvage | None, graphs: dict[str, int]
) -> tuple[int, dict[str, int]]:
    """Add salvaged folders and verified photos to ``catalog``, then every trusted vector it
    lacks. Returns (photos salvaged, vectors reused per model identity)."""
    connection = sqlite3.connect(catalog)
    connection.execute("PRAGMA foreign_keys=ON")
    try:
        with connection:
            added = _merge_rows(connection, salvage) if salvage else 0
            reused = _merge_vectors(connection, salvage, catalog.parent / "vectors", graphs)
    finally:
        connection.close()
    return added, reused


def _merge_rows(connection: sqlite3.Connection, salvage: _Salvage) -> int:
    now = datetime.now().isoformat(sep=" ")
    folder_ids = dict(connection.execute("SELECT path, id FROM folders").fetchall())
    old_folders: dict[int, str] = {}
    for fid, path, added_at, online in salvage.rows(
        "folders", ("id", "path", "added_at", "online")
    ):
        old_folders[fid] = path
        if path not in folder_ids:
            cursor = connection.execute(
                "INSERT INTO folders (path, added_at, online) VALUES (?, ?, ?)",
                (path, added_at or now, 1 if online is None else online),
            )
            folder_ids[path] = cursor.lastrowid
    known_ids = {row[0] for row in connection.execute("SELECT id FROM photos")}
    known_paths = {row[0] for row in connection.execute("SELECT path FROM photos")}
    added = 0
    for row in salvage.rows("photos", (*PHOTO_COLUMNS, "missing_since")):
        record = dict(zip((*PHOTO_COLUMNS, "missing_since"), row, strict=True))
        folder = folder_ids.get(old_folders.get(record["folder_id"], ""))
        if (
            record["id"] in known_ids
            or record["path"] in known_paths
            or folder is None
            or record["missing_since"] is not None
            or not _unchanged(record)
        ):
            continue
        record["folder_id"] = folder
        connection.execute(
            f"INSERT INTO photos ({', '.join(PHOTO_COLUMNS)}) "
            f"VALUES ({', '.join('?' * len(PHOTO_COLUMNS))})",
            [record[c] for c in PHOTO_COLUMNS],
        )
        known_ids.add(record["id"])
        known_paths.add(record["path"])
        added += 1
    return added


def _unchanged(record: dict) -> bool:
    """The file a salvaged row names is still there with the recorded size and mtime."""
    try:
        st = os.stat(record["path"])
    except (OSError, TypeError, ValueError):
        return False
    return st.st_size == record["size"] and st.st_mtime_ns == record["mtime_ns"]


def _merge_vectors(
    connection: sqlite3.Connection,
    salvage: _Salvage | None,
    vectors_dir: Path,
    graphs: dict[str, int],
) -> dict[str, int]:
    """Insert a trusted vector for every photo and model that lacks one: from the model's
    verified graph first, else from the damaged catalog's own row if it is a sound vector.
    A label is trusted when the damaged catalog's row for that id names the same content
    (content hash) as the repaired catalog's row. One graph is in memory at a time."""
    hashes = dict(connection.execute("SELECT id, content_hash FROM photos"))
    old_hashes: dict[int, str] = {}
    old_models: dict[int, tuple[str, str, int]] = {}
    if salvage is not None:
        old_hashes = {pid: h for pid, h in salvage.rows("photos", ("id", "content_hash"))}
        old_models = {
            mid: (identity, name, dim)
            for mid, identity, name, dim in salvage.rows(
                "models", ("id", "identity", "name", "embed_dim")
            )
        }
    trusted = [pid for pid, content in hashes.items() if old_hashes.get(pid) == content]
    names = {identity: (name, dim) for identity, name, dim in old_models.values()}
    for identity, dim in graphs.items():
        names.setdefault(identity, (identity.split("@")[0], dim))
    reused: dict[str, int] = {}
    missing: dict[str, tuple[int, int, set[int]]] = {}  # identity -> (model id, dim, photo ids)
    for identity, (name, dim) in names.items():
        connection.execute(
            "INSERT OR IGNORE INTO models (identity, name, embed_dim, created_at) "
            "VALUES (?, ?, ?, ?)",
            (identity, name, dim, datetime.now().isoformat(sep=" ")),
        )
        model_id = connection.execute(
            "SELECT id FROM models WHERE identity = ?", (identity,)
        ).fetchone()[0]
        have = {
            row[0]
            for row in connection.execute(
                "SELECT photo_id FROM vectors WHERE model_id = ?", (model_id,)
            )
        }
        wanted = [pid for pid in trusted if pid not in have]
        store = _trusted_graph(vectors_dir, identity, dim) if identity in graphs else None
        live = store.live_ids() if store is not None else set()
        in_graph = [pid for pid in wanted if pid in live]
        for chunk in chunked(in_graph, 10_000):  # bounded memory, one executemany each
            vectors = store.get_vectors(chunk)  # type: ignore[union-attr]
            connection.executemany(
                "INSERT INTO vectors (photo_id, model_id, vector) VALUES (?, ?, ?)",
                [(pid, model_id, vectors[n].tobytes()) for n, pid in enumerate(chunk)],
            )
        del store
        reused[identity] = len(in_graph)
        missing[identity] = (model_id, dim, set(wanted) - set(in_graph))
    if salvage is not None and any(ids for _, _, ids in missing.values()):
        referenced: dict[str, list[tuple[int, bytes]]] = {}  # read from the slot file after
        for pid, mid, blob in salvage.rows("vectors", ("photo_id", "model_id", "vector")):
            identity = old_models.get(mid, ("",))[0]
            model_id, dim, ids = missing.get(identity, (0, 0, set()))
            if pid in ids and isinstance(blob, bytes) and vector_slots.is_reference(blob):
                referenced.setdefault(identity, []).append((pid, blob))
                continue
            vector = _sound_vector(blob, dim) if pid in ids else None
            if vector is not None:
                _insert_vector(connection, pid, model_id, vector.tobytes())
                ids.discard(pid)
                reused[identity] += 1
        for identity, rows in referenced.items():
            model_id, dim, ids = missing[identity]
            slots = saved_vectors.slots_for(vectors_dir, identity, dim)
            found = vector_slots.decode([blob for _, blob in rows], dim, slots)[0]
            for (pid, blob), ok in zip(rows, found.tolist(), strict=True):
                if ok and pid in ids:  # the reference itself: its slot checked out
                    _insert_vector(connection, pid, model_id, blob)
                    ids.discard(pid)
                    reused[identity] += 1
    return reused


def _insert_vector(connection: sqlite3.Connection, pid: int, model_id: int, value: bytes) -> None:
    connection.execute(
        "INSERT INTO vectors (photo_id, model_id, vector) VALUES (?, ?, ?)", (pid, model_id, value)
    )


def _sound_vector(blob: bytes | None, dim: int) -> np.ndarray | None:
    if blob is None or len(blob) != dim * 4:
        return None
    vector = np.frombuffer(blob, dtype=np.float32)
    if not np.all(np.isfinite(vector)) or abs(float(np.linalg.norm(vector)) - 1.0) > 1e-3:
        return None
    return vector
