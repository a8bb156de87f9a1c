"""Opening the catalog: a damage check, engine settings (WAL, foreign keys), read-only opening,
schema upgrades with a backup.

Every open checks the file's header against its size (a few microseconds; catches a truncated,
zeroed or overwritten file) and reads the schema. Damage deeper inside the file is found by
``PRAGMA quick_check`` when a backup is made (see catalog.backup) and by SQLite itself when a
damaged page is read; either way the caller gets CatalogDamaged, which names the repair command.

SQLAlchemy is imported when the first session, write or upgrade needs it, not on open: reads
that a search makes go through ``Catalog.reading`` (SQLite's own module), so a one-shot
``photosearch search`` never pays its ~0.2 s import (issue 18).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from photosearch.errors import PhotosearchError

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlalchemy.orm import Session

# Kept in step with photosearch.catalog.schema (test_catalog checks it), so opening a current
# catalog does not import the migrations, which need SQLAlchemy.
SCHEMA_VERSION = 7

log = logging.getLogger(__name__)
BUSY_TIMEOUT_MS = 30_000


class CatalogTooNew(PhotosearchError):
    """The catalog was written by a newer photosearch; this one must not touch it."""


REPAIR_HINT = "run `photosearch repair` to restore it from a backup or rebuild it"
SQLITE_MAGIC = b"SQLite format 3\x00"


class CatalogDamaged(PhotosearchError):
    """The catalog file is damaged; the message names the repair command."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"the catalog {path} is damaged ({reason}); {REPAIR_HINT}")
        self.path = path
        self.reason = reason


class CatalogReadOnly(PhotosearchError):
    """A write was needed but the catalog was opened read-only (or cannot be written)."""


class Catalog:
    """The SQLite catalog of one library. Use ``session()`` for a unit of work.

    ``expect_data``: the library holds saved vectors, so a missing or empty catalog file is
    damage to report, not a new library to create. ``readonly``: open with ``mode=ro`` and never
    write (commands that only read, and libraries on read-only media).
    """

    def __init__(self, path: Path, *, expect_data: bool = False, readonly: bool = False) -> None:
        self.path = path
        self.readonly = readonly
        check_header(path, expect_data)
        if readonly and not path.exists():
            raise CatalogReadOnly(f"{path} does not exist and cannot be created read-only")
        if not readonly:
            path.parent.mkdir(parents=True, exist_ok=True)
        self._engine: Engine | None = None
        self._sessions = None
        self._engine_lock = threading.Lock()
        self._idle_readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        try:
            self.upgrade()
        except Exception as error:
            self.close()
            damaged = damage_from(error, path)
            if damaged is None:
                raise
            raise damaged from error

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine, made (and SQLAlchemy imported) on first use."""
        with self._engine_lock:
            if self._engine is None:
                from sqlalchemy import create_engine, event
                from sqlalchemy.orm import sessionmaker

                path = self.path
                if self.readonly:  # the URL only picks the pool; creator opens
                    engine = create_engine(
                        f"sqlite:///{path}", creator=lambda: _connect_readonly(path), future=True
                    )
                else:
                    engine = create_engine(f"sqlite:///{path}", future=True)
                event.listen(
                    engine,
                    "connect",
                    _configure_readonly if self.readonly else _configure_connection,
                )
                self._sessions = sessionmaker(engine, expire_on_commit=False)
                self._engine = engine
            return self._engine

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session committed on success and rolled back on any exception. SQLite's
        corruption errors come out as CatalogDamaged."""
        from sqlalchemy import exc

        self.engine  # noqa: B018 - makes the session factory
        try:
            with self._sessions() as session, session.begin():
                yield session
        except exc.DatabaseError as error:
            damaged = damage_from(error, self.path)
            if damaged is None:
                raise
            raise damaged from error

    @contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        """A connection for reads alone (``query_only``), through SQLite's own module: what a
        search reads goes through here, so it needs no SQLAlchemy. Statements use SQLite's
        ``:name`` or ``?`` parameters; each sees every commit made before it started.
        Connections are reused; corruption errors come out as CatalogDamaged."""
        with self._readers_lock:
            connection = self._idle_readers.pop() if self._idle_readers else None
        try:
            if connection is None:
                connection = self._open_reader()
            yield connection
        except sqlite3.DatabaseError as error:
            if connection is not None:
                connection.close()
            damaged = damage_from(error, self.path)
            if damaged is None:
                raise
            raise damaged from error
        except BaseException:
            if connection is not None:
                connection.close()
            raise
        with self._readers_lock:
            self._idle_readers.append(connection)

    def _open_reader(self) -> sqlite3.Connection:
        if self.readonly:
            connection = _connect_readonly(self.path)
        else:
            connection = sqlite3.connect(self.path, check_same_thread=False)
        _configure_readonly(connection, None)
        return connection

    def schema_version(self) -> int:
        with self.reading() as connection:
            exists = connection.execute(
                "SELECT name FROM sqlite_master WHERE type='table' AND name='meta'"
            ).fetchone()
            if not exists:
                return 0
            row = connection.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            return int(row[0]) if row else 0

    def upgrade(self) -> None:
        """Bring the schema to SCHEMA_VERSION, backing the file up first when it holds data."""
        version = self.schema_version()
        if version > SCHEMA_VERSION:
            raise CatalogTooNew(
                f"{self.path} uses catalog schema {version}, newer than this photosearch "
                f"understands ({SCHEMA_VERSION}); upgrade photosearch"
            )
        if version == SCHEMA_VERSION:
            return
        if self.readonly:
            raise CatalogReadOnly(
                f"{self.path} uses catalog schema {version} and must be upgraded to "
                f"{SCHEMA_VERSION}, which needs write access"
            )
        if version > 0:
            backup = self.path.with_name(f"{self.path.name}.v{version}.bak")
            self._backup_to(backup)
            log.info("catalog schema %d -> %d; backup at %s", version, SCHEMA_VERSION, backup)
        from sqlalchemy import text

        from photosearch.catalog.schema import STEPS

        with self.engine.begin() as connection:
            for number in range(version, SCHEMA_VERSION):
                STEPS[number](connection)
            connection.execute(
                text("INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', :v)"),
                {"v": str(SCHEMA_VERSION)},
            )

    def checkpoint(self) -> None:
        """Copy the WAL into the database file and empty it, through a connection this process
        already holds: if the WAL file was deleted under us, that connection still has it open,
        so its committed pages reach the database file and new connections see them."""
        with self.engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")

    def compact(self) -> bool:
        """VACUUM: rewrite the file without the space its deleted and shrunk rows left (SQLite
        reuses that space but never gives it back), as after an older library's vectors moved
        out (schema v6). Skipped (False) when another connection is busy or the disk lacks
        room for the copy VACUUM writes; nothing is lost either way."""
        if self.readonly:
            return False
        from sqlalchemy import exc

        try:
            with self.engine.connect() as connection:
                connection.exec_driver_sql("VACUUM")
                # in WAL mode the rewritten pages sit in the WAL until a checkpoint
                connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        except exc.OperationalError as error:
            log.info("catalog not compacted now (%s)", error)
            return False
        return True

    def get_meta(self, key: str) -> str | None:
        with self.reading() as connection:
            row = connection.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
            return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        from photosearch.catalog.tables import Meta

        with self.session() as session:
            session.merge(Meta(key=key, value=value))

    def close(self) -> None:
        with self._engine_lock:
            if self._engine is not None:
                self._engine.dispose()
        with self._readers_lock:
            readers, self._idle_readers = self._idle_readers, []
        for connection in readers:
            connection.close()

    def _backup_to(self, backup: Path) -> None:
        """A consistent copy through SQLite's backup API (safe even with a WAL in use)."""
        source = sqlite3.connect(self.path)
        try:
            target = sqlite3.connect(backup)
            with target:
                source.backup(target)
            target.close()
        finally:
            source.close()


def open_catalog(path: Path, *, readonly: bool, expect_data: bool) -> Catalog:
    """Open a library's catalog, creating its directory for a new one. ``readonly`` is kept
    only for an existing catalog; a read-only directory makes it read-only, and an older schema
    is upgraded (opened writable) whenever the directory can be written."""
    directory = path.parent
    if path.exists() and not os.access(directory, os.W_OK):
        readonly = True  # read-only media: reading works, writing says why it cannot
    if not (readonly and path.exists()):
        readonly = False
        directory.mkdir(parents=True, exist_ok=True)
    try:
        return Catalog(path, readonly=readonly, expect_data=expect_data)
    except CatalogReadOnly:  # an older schema: upgraded by whoever may write
        if not os.access(directory, os.W_OK):
            raise
        return Catalog(path, expect_data=expect_data)


def check_header(path: Path, expect_data: bool) -> None:
    """Raise CatalogDamaged when the file cannot be a whole SQLite database: wrong magic, a bad
    page size, or shorter than the page count its header records. Reads 100 bytes."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        if expect_data:
            raise CatalogDamaged(path, "the file is missing but saved vectors exist") from None
        return
    if size == 0:
        if expect_data:
            raise CatalogDamaged(path, "the file is empty (0 bytes) but saved vectors exist")
        return
    try:
        with path.open("rb") as handle:
            header = handle.read(100)
    except PermissionError:
        return  # SQLite reports this itself, with the path
    if len(header) < 100 or not header.startswith(SQLITE_MAGIC):
        raise CatalogDamaged(path, "its header is not an SQLite header")
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    if page_size < 512 or page_size & (page_size - 1):
        raise CatalogDamaged(path, f"its header records an impossible page size {page_size}")
    if _wal_has_frames(path):
        return  # a checkpoint may be copying pages in: page 1 can announce a size not yet
        # written, and SQLite reads those pages from the WAL meanwhile
    pages = int.from_bytes(header[28:32], "big")
    counted = header[24:28] == header[92:96]  # the page count is valid only then
    if size % page_size or (counted and pages and size < pages * page_size):
        raise CatalogDamaged(
            path,
            f"the file is {size} bytes, shorter than the {pages} pages of {page_size} "
            f"bytes its header records (truncated?)",
        )


def _wal_has_frames(path: Path) -> bool:
    try:
        return Path(f"{path}-wal").stat().st_size > 32  # more than a WAL header
    except OSError:
        return False


def damage_from(error: BaseException, path: Path) -> CatalogDamaged | None:
    """A CatalogDamaged for SQLite's corruption errors, None for anything else."""
    original = getattr(error, "orig", error)
    message = str(original)
    corrupt = ("malformed", "not a database", "file is encrypted", "corrupt")
    if isinstance(original, sqlite3.DatabaseError) and any(m in message for m in corrupt):
        return CatalogDamaged(path, message)
    return None


def integrity_problem(path: Path, quick: bool = True) -> str | None:
    """None when SQLite's quick_check (or full integrity_check) passes, else the first problem.
    Reads every page: about a second per few hundred MB."""
    try:
        check_header(path, expect_data=True)
        connection = _connect_readonly(path)
        try:
            pragma = "quick_check(1)" if quick else "integrity_check(1)"
            row = connection.execute(f"PRAGMA {pragma}").fetchone()
        finally:
            connection.close()
    except CatalogDamaged as damaged:
        return damaged.reason
    except sqlite3.DatabaseError as error:
        return str(error)
    if row and row[0] == "ok":
        return None
    text = str(row[0]) if row else "no answer"
    return " ".join(text.replace("*** in database main ***", "").split())  # one line


def _connect_readonly(path: Path) -> sqlite3.Connection:
    """``mode=ro``; on read-only media, where SQLite cannot create the WAL's shared-memory file,
    ``immutable=1`` (nothing can change the file there, so skipping its locks is safe)."""
    uri = path.resolve().as_uri()
    try:
        connection = sqlite3.connect(f"{uri}?mode=ro", uri=True, check_same_thread=False)
        connection.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return connection
    except sqlite3.OperationalError:
        if os.access(path.parent, os.W_OK):
            raise
    return sqlite3.connect(f"{uri}?immutable=1", uri=True, check_same_thread=False)


def _configure_connection(dbapi_connection: sqlite3.Connection, _record: object) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _configure_readonly(dbapi_connection: sqlite3.Connection, _record: object) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA query_only=ON")
    cursor.close()


__all__ = [
    "Catalog",
    "CatalogDamaged",
    "CatalogReadOnly",
    "CatalogTooNew",
    "SCHEMA_VERSION",
    "check_header",
    "damage_from",
    "integrity_problem",
]
