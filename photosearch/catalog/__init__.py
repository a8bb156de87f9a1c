"""The catalog: SQLite (through SQLAlchemy) holding folders, photos, models and vectors.

The ORM classes are imported on first use (PEP 562), so code that only opens a catalog and
reads through ``Catalog.reading`` (a one-shot search) never imports SQLAlchemy.
"""

from typing import TYPE_CHECKING, Any

from photosearch.catalog.database import SCHEMA_VERSION, Catalog

if TYPE_CHECKING:
    from photosearch.catalog.tables import Folder, Model, Photo, PhotoStatus, Vector, path_is_under

_TABLE_NAMES = frozenset({"Folder", "Model", "Photo", "PhotoStatus", "Vector", "path_is_under"})

__all__ = [
    "Catalog",
    "SCHEMA_VERSION",
    "Folder",
    "Model",
    "Photo",
    "PhotoStatus",
    "Vector",
    "path_is_under",
]


def __getattr__(name: str) -> Any:
    if name in _TABLE_NAMES:
        from photosearch.catalog import tables

        return getattr(tables, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
