"""Opening the catalog: engine settings (WAL, foreign keys), schema upgrades with a backup."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, create_engine, event, select, text
from sqlalchemy.orm import Session, sessionmaker

from photosearch.catalog.schema import SCHEMA_VERSION, STEPS
from photosearch.catalog.tables import Meta
from photosearch.errors import PhotosearchError

log = logging.getLogger(__name__)
BUSY_TIMEOUT_MS = 30_000


class CatalogTooNew(PhotosearchError):
    """The catalog was written by a newer photosearch; this one must not touch it."""


class Catalog:
    """The SQLite catalog of one library. Use ``session()`` for a unit of work."""

    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self.engine: Engine = create_engine(f"sqlite:///{path}", future=True)
        event.listen(self.engine, "connect", _configure_connection)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self.upgrade()

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session committed on success and rolled back on any exception."""
        with self._sessions() as session, session.begin():
            yield session

    def schema_version(self) -> int:
        with self.engine.connect() as connection:
            exists = connection.execute(
                text("SELECT name FROM sqlite_master WHERE type='table' AND name='meta'")
            ).first()
            if not exists:
                return 0
            row = connection.execute(
                text("SELECT value FROM meta WHERE key='schema_version'")
            ).first()
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
        if version > 0:
            backup = self.path.with_name(f"{self.path.name}.v{version}.bak")
            self._backup_to(backup)
            log.info("catalog schema %d -> %d; backup at %s", version, SCHEMA_VERSION, backup)
        with self.engine.begin() as connection:
            for number in range(version, SCHEMA_VERSION):
                STEPS[number](connection)
            connection.execute(
                text("INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', :v)"),
                {"v": str(SCHEMA_VERSION)},
            )

    def get_meta(self, key: str) -> str | None:
        with self.session() as session:
            row = session.scalar(select(Meta).where(Meta.key == key))
            return row.value if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self.session() as session:
            session.merge(Meta(key=key, value=value))

    def close(self) -> None:
        self.engine.dispose()

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


def _configure_connection(dbapi_connection: sqlite3.Connection, _record: object) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


__all__ = ["Catalog", "CatalogTooNew", "SCHEMA_VERSION"]
