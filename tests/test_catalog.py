"""The SQLite catalog: WAL, schema upgrades with a backup, refusing newer schemas."""

from __future__ import annotations

import sqlite3
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import select, text

from photosearch.catalog import SCHEMA_VERSION, Catalog, Folder, Photo
from photosearch.catalog.database import CatalogTooNew
from photosearch.catalog.schema import SCHEMA_V1


def test_wal_mode_and_foreign_keys(tmp_path: Path):
    catalog = Catalog(tmp_path / "catalog.sqlite")
    try:
        with catalog.engine.connect() as connection:
            assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert catalog.schema_version() == SCHEMA_VERSION
    finally:
        catalog.close()


def test_meta_round_trip_and_reopen(tmp_path: Path):
    path = tmp_path / "catalog.sqlite"
    catalog = Catalog(path)
    catalog.set_meta("active_model", "tiny")
    catalog.set_meta("active_model", "tiny2")
    catalog.close()
    again = Catalog(path)
    try:
        assert again.get_meta("active_model") == "tiny2"
        assert again.get_meta("missing") is None
        assert not list(tmp_path.glob("*.bak"))  # no upgrade, no backup
    finally:
        again.close()


def test_deleting_a_folder_cascades_to_photos(tmp_path: Path):
    catalog = Catalog(tmp_path / "catalog.sqlite")
    try:
        now = datetime.now()
        with catalog.session() as session:
            folder = Folder(path="/photos", added_at=now)
            session.add(folder)
            session.flush()
            session.add(
                Photo(
                    folder_id=folder.id,
                    path="/photos/a.jpg",
                    size=1,
                    mtime_ns=1,
                    content_hash="h",
                    file_time=now,
                    added_at=now,
                )
            )
        with catalog.session() as session:
            session.delete(session.scalar(select(Folder)))
        with catalog.session() as session:
            assert session.scalars(select(Photo)).all() == []
    finally:
        catalog.close()


def _make_v1(path: Path) -> None:
    connection = sqlite3.connect(path)
    with connection:
        for statement in SCHEMA_V1:
            connection.execute(statement)
        connection.execute("INSERT INTO meta VALUES ('schema_version', '1')")
        connection.execute("INSERT INTO meta VALUES ('active_model', 'tiny')")
        connection.execute(
            "INSERT INTO folders (id, path, added_at) VALUES (1, '/old/photos', "
            "'2020-01-01 00:00:00')"
        )
        connection.execute(
            "INSERT INTO photos (id, folder_id, path, size, mtime_ns, content_hash, width, "
            "height, file_time, status, added_at) VALUES (7, 1, '/old/photos/cat.jpg', 123, 456,"
            " 'abc', 640, 480, '2020-01-01 00:00:00', 'ok', '2020-01-01 00:00:00')"
        )
    connection.close()


def test_upgrade_from_v1_keeps_data_and_backs_up(tmp_path: Path):
    path = tmp_path / "catalog.sqlite"
    _make_v1(path)
    catalog = Catalog(path)
    try:
        assert catalog.schema_version() == SCHEMA_VERSION
        assert catalog.get_meta("active_model") == "tiny"
        with catalog.session() as session:
            folder = session.scalar(select(Folder))
            assert folder.path == "/old/photos"
            assert folder.online is True  # new column, default applied
            assert folder.last_seen_at is None
            photo = session.get(Photo, 7)
            assert (photo.path, photo.width, photo.content_hash) == (
                "/old/photos/cat.jpg",
                640,
                "abc",
            )
        with catalog.engine.connect() as connection:
            indexes = {row[1] for row in connection.execute(text("PRAGMA index_list(vectors)"))}
        assert "ix_vectors_model" in indexes
    finally:
        catalog.close()
    backup = tmp_path / "catalog.sqlite.v1.bak"
    assert backup.is_file()
    old = sqlite3.connect(backup)
    try:
        assert old.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone() == ("1",)
        assert old.execute("SELECT path FROM photos").fetchall() == [("/old/photos/cat.jpg",)]
    finally:
        old.close()


def test_newer_schema_is_refused(tmp_path: Path):
    path = tmp_path / "catalog.sqlite"
    Catalog(path).close()
    connection = sqlite3.connect(path)
    with connection:
        connection.execute(
            "UPDATE meta SET value=? WHERE key='schema_version'", (str(SCHEMA_VERSION + 1),)
        )
    connection.close()
    with pytest.raises(CatalogTooNew, match="newer"):
        Catalog(path)


def test_the_version_a_catalog_is_opened_at_is_the_number_of_schema_steps():
    """database.SCHEMA_VERSION is written out so opening needs no migrations (nor SQLAlchemy);
    it must be the version the steps build."""
    from photosearch.catalog import database, schema

    assert database.SCHEMA_VERSION == schema.SCHEMA_VERSION == len(schema.STEPS)


def test_reads_see_what_a_session_committed_and_never_write(tmp_path: Path):
    """Catalog.reading: SQLite's own connections, reused, seeing each commit, refusing writes."""
    catalog = Catalog(tmp_path / "c.sqlite")
    catalog.set_meta("k", "one")
    assert catalog.get_meta("k") == "one"
    catalog.set_meta("k", "two")  # committed by a session after the reader was made
    assert catalog.get_meta("k") == "two"
    with pytest.raises(sqlite3.OperationalError), catalog.reading() as connection:
        connection.execute("DELETE FROM meta")
    assert catalog.get_meta("k") == "two"
    catalog.close()
