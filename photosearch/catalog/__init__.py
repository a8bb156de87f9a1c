"""The catalog: SQLite (through SQLAlchemy) holding folders, photos, models and vectors."""

from photosearch.catalog.database import SCHEMA_VERSION, Catalog
from photosearch.catalog.tables import Folder, Model, Photo, PhotoStatus, Vector, path_is_under

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
