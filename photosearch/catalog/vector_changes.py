"""The catalog's log of changed vectors (schema v5), read so a vector store catches up in
O(changes) instead of comparing every id with the catalog on each open.

Triggers append a row (model, photo) whenever a vector is added, replaced or removed, and when a
photo with vectors vanishes or comes back. A store records the ``Position`` it reflects (the
catalog's epoch and the last sequence number); catching up re-reads the current state of just
the photos logged after it, so replaying a row twice is harmless. The writer that saves a store
prunes the rows that store no longer needs and records how far it pruned, so a store behind
that point knows to compare every id instead.

Reads go through ``Catalog.reading`` (no SQLAlchemy: a one-shot search opens a store with
them); the writers' two edits through a session.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple

from photosearch.catalog import Catalog

EPOCH_KEY = "vector_changes_epoch"
PRUNED_KEY = "vector_changes_pruned:{model_id}"
IDS_PER_QUERY = 900


class Position(NamedTuple):
    """Where a store stands in one catalog's change log."""

    epoch: str
    seq: int


class Changes(NamedTuple):
    """The photos whose vectors for one model changed after a position (``ids``), up to
    ``through``; ``complete`` is False when rows in between were pruned (compare every id)."""

    through: Position
    ids: list[int]
    complete: bool


def _value(connection: Any, sql: str, parameters: dict | None = None) -> Any:
    row = connection.execute(sql, parameters or {}).fetchone()
    return row[0] if row else None


def current_position(catalog: Catalog) -> Position:
    """The catalog's epoch and last change number (two indexed lookups)."""
    with catalog.reading() as connection:
        epoch = _value(connection, "SELECT value FROM meta WHERE key = :key", {"key": EPOCH_KEY})
        seq = _value(connection, "SELECT max(seq) FROM vector_log")
    return Position(epoch or "", int(seq or 0))


def changes_since(catalog: Catalog, model_id: int, after: Position) -> Changes:
    """Photos logged for ``model_id`` after ``after``; incomplete when ``after`` belongs to
    another catalog file, lies in its future (a restored backup) or before its pruned rows."""
    through = current_position(catalog)
    if after.epoch != through.epoch or after.seq > through.seq:
        return Changes(through, [], False)
    with catalog.reading() as connection:
        ids = [
            row[0]
            for row in connection.execute(
                "SELECT DISTINCT photo FROM vector_log "
                "WHERE model = :model AND seq > :after AND seq <= :through",
                {"model": model_id, "after": after.seq, "through": through.seq},
            )
        ]
        # read after the rows: a prune committed meanwhile may have removed some of them
        pruned = _value(
            connection,
            "SELECT value FROM meta WHERE key = :key",
            {"key": PRUNED_KEY.format(model_id=model_id)},
        )
    return Changes(through, [int(i) for i in ids], int(pruned or 0) <= after.seq)


def prune(catalog: Catalog, model_id: int, through: Position) -> None:
    """Drop the rows of ``model_id`` up to ``through`` (a saved store reflects them)."""
    if catalog.readonly:
        return
    from sqlalchemy import text  # a writer's edit: SQLAlchemy is loaded there

    with catalog.session() as session:
        epoch = session.execute(
            text("SELECT value FROM meta WHERE key = :key"), {"key": EPOCH_KEY}
        ).scalar()
        if epoch != through.epoch:
            return
        session.execute(
            text(  # the newest row stays: seq is a rowid and must never go back
                "DELETE FROM vector_log WHERE model = :model AND seq <= :through "
                "AND seq < (SELECT max(seq) FROM vector_log)"
            ),
            {"model": model_id, "through": through.seq},
        )
        session.execute(
            text(
                "INSERT INTO meta (key, value) VALUES (:key, :value) "
                "ON CONFLICT(key) DO UPDATE SET value = max(CAST(value AS INTEGER), :value)"
            ),
            {"key": PRUNED_KEY.format(model_id=model_id), "value": through.seq},
        )


def renew_epoch(catalog: Catalog) -> None:
    """Give the catalog a new epoch (after it was restored from a backup): every saved store
    then compares all its ids once."""
    from sqlalchemy import text

    with catalog.session() as session:
        session.execute(
            text("INSERT OR REPLACE INTO meta (key, value) VALUES (:key, hex(randomblob(16)))"),
            {"key": EPOCH_KEY},
        )
        session.execute(text("DELETE FROM vector_log"))
        session.execute(text("DELETE FROM meta WHERE key LIKE 'vector_changes_pruned:%'"))


def present_ids(catalog: Catalog, model_id: int) -> set[int]:
    """Every photo with a vector for ``model_id`` whose file is present (the full comparison)."""
    with catalog.reading() as connection:
        return {
            row[0]
            for row in connection.execute(
                "SELECT v.photo_id FROM vectors v JOIN photos p ON p.id = v.photo_id "
                "WHERE v.model_id = :model AND p.missing_since IS NULL",
                {"model": model_id},
            )
        }


def present_vector_values(
    catalog: Catalog, model_id: int, ids: Iterable[int]
) -> tuple[list[int], list[bytes]]:
    """(ids, stored values) of those of ``ids`` that have a vector and a present file (values
    as in reads.vector_values: the caller decodes them)."""
    wanted = list(ids)
    found: list[int] = []
    blobs: list[bytes] = []
    with catalog.reading() as connection:
        for start in range(0, len(wanted), IDS_PER_QUERY):
            part = wanted[start : start + IDS_PER_QUERY]
            marks = ",".join(str(int(i)) for i in part)
            rows = connection.execute(
                "SELECT v.photo_id, v.vector FROM vectors v JOIN photos p ON p.id = v.photo_id "
                "WHERE v.model_id = :model AND p.missing_since IS NULL "
                f"AND v.photo_id IN ({marks})",
                {"model": model_id},
            )
            for pid, blob in rows:
                found.append(int(pid))
                blobs.append(blob)
    return found, blobs
