"""The catalog reads on a search's path, in plain SQL through ``Catalog.reading``.

A one-shot ``photosearch search`` makes only these (and the vector-change and word reads of
their own modules), so it never imports SQLAlchemy, which is ~0.2 s of a 0.7 s search at 1k
photos (issue 18). Paths come back as the ORM returns them (catalog.file_paths) and dates as
``datetime``; tombstones (``missing_since`` set) are never returned.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, TypeVar

from photosearch.catalog.file_paths import loaded_path, stored_path

if TYPE_CHECKING:
    from photosearch.catalog.database import Catalog

SQL_VARIABLES = 900  # bound values per IN (...), under SQLite's oldest limit of 999
_T = TypeVar("_T")


def chunked(items: Sequence[_T], size: int = SQL_VARIABLES) -> Iterator[Sequence[_T]]:
    """``items`` in slices of at most ``size`` (for ``IN (...)`` lists)."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _marks(count: int) -> str:
    return ",".join("?" * count)


def _when(value: str | None) -> datetime | None:
    """A date as SQLAlchemy stores it in SQLite ("YYYY-MM-DD HH:MM:SS.ffffff")."""
    return datetime.fromisoformat(value) if value is not None else None


def result_rows(catalog: Catalog, ids: Sequence[int]) -> dict[int, tuple]:
    """(id, path, width, height, taken_at, camera, file_time, place city, region, country)
    of the present photos among ``ids``, by id: the columns a search result shows."""
    rows: dict[int, tuple] = {}
    with catalog.reading() as connection:
        for part in chunked(list(ids)):
            for pid, path, width, height, taken, camera, file_time, *place in connection.execute(
                "SELECT id, path, width, height, taken_at, camera, file_time, place_city, "
                "place_region, place_country FROM photos "
                f"WHERE id IN ({_marks(len(part))}) AND missing_since IS NULL",
                tuple(part),
            ):
                rows[pid] = (
                    pid,
                    loaded_path(path),
                    width,
                    height,
                    _when(taken),
                    camera,
                    _when(file_time),
                    *place,
                )
    return rows


def present_paths(catalog: Catalog, ids: Sequence[int]) -> dict[int, str]:
    """The paths of the present photos among ``ids``, by id."""
    found: dict[int, str] = {}
    with catalog.reading() as connection:
        for part in chunked(list(ids)):
            found.update(
                (pid, loaded_path(path))
                for pid, path in connection.execute(
                    f"SELECT id, path FROM photos WHERE id IN ({_marks(len(part))}) "
                    "AND missing_since IS NULL",
                    tuple(part),
                )
            )
    return found


def present_photo_id(catalog: Catalog, paths: list[str]) -> int | None:
    """The id of the present photo stored under one of ``paths``, if any."""
    with catalog.reading() as connection:
        row = connection.execute(
            f"SELECT id FROM photos WHERE path IN ({_marks(len(paths))}) "
            "AND missing_since IS NULL LIMIT 1",
            tuple(stored_path(p) for p in paths),
        ).fetchone()
    return None if row is None else int(row[0])


def only_model_name(catalog: Catalog) -> str | None:
    """The name of the one model registered here (every model that made vectors is, and so
    is a switch's target); None for none or several."""
    with catalog.reading() as connection:
        rows = connection.execute("SELECT DISTINCT name FROM models LIMIT 2").fetchall()
    return rows[0][0] if len(rows) == 1 else None


def model_id_of(catalog: Catalog, identity: str) -> int | None:
    """The catalog id of a model identity, or None when it never made vectors here."""
    with catalog.reading() as connection:
        row = connection.execute("SELECT id FROM models WHERE identity = ?", (identity,)).fetchone()
    return None if row is None else int(row[0])


def vector_values(
    catalog: Catalog, model_id: int, ids: Sequence[int]
) -> tuple[list[int], list[bytes]]:
    """(ids, stored values) for those of ``ids`` that have a vector for ``model_id``: an
    inline float32 vector or a reference into the model's slot file (vectors.vector_slots),
    which the caller decodes; what a VectorStore rebuilds and re-scores from."""
    found_ids: list[int] = []
    blobs: list[bytes] = []
    with catalog.reading() as connection:
        for part in chunked(list(ids)):
            for pid, blob in connection.execute(
                "SELECT photo_id, vector FROM vectors "
                f"WHERE model_id = ? AND photo_id IN ({_marks(len(part))})",
                (model_id, *part),
            ):
                found_ids.append(int(pid))
                blobs.append(blob)
    return found_ids, blobs
