"""Catalogs as older photosearch versions left them, for upgrade tests."""

from __future__ import annotations

import sqlite3

from photosearch.catalog import schema


def undo_version_7(connection: sqlite3.Connection) -> None:
    """Turn a v7 catalog into what schema v6 left: the v3-v5 index and triggers under their
    old names and no hash generation (step 7 renamed them and added it)."""
    for trigger in ("va", "vr", "pu", "pd", "pi"):
        connection.execute(f"DROP TRIGGER {trigger}")
    connection.execute("DROP INDEX gone")
    connection.execute(schema.SCHEMA_V3[1])  # ix_photos_missing_since
    connection.execute(schema.SCHEMA_V4[-1])  # photo_terms_follow_photos
    for statement in schema.SCHEMA_V5[1:4]:  # vector_added, vector_removed, photo_presence
        connection.execute(statement)
    connection.execute("DELETE FROM meta WHERE key = 'h'")
    connection.execute("UPDATE meta SET value = '6' WHERE key = 'schema_version'")
