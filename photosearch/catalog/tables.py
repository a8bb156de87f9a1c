"""SQLAlchemy ORM classes for the current schema (the migrations in schema.py build it)."""

from __future__ import annotations

import os
from datetime import datetime
from enum import StrEnum

from sqlalchemy import ColumnElement, ForeignKey, Index, LargeBinary, String, cast, func, or_
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from photosearch.catalog.file_paths import loaded_path, stored_path


class Base(DeclarativeBase):
    pass


class FilePath(TypeDecorator[str]):
    """A file path exactly as the OS gave it. Names whose bytes are not UTF-8 reach Python as
    str with surrogate escapes, which SQLite text cannot hold: those are stored as their raw
    bytes (a BLOB in the same column) and turned back into the same str when read, so the file
    still opens. Every other path is stored as plain text, as before (no migration needed; a
    given path always maps to the same stored value, so lookups and uniqueness still work)."""

    impl = String
    cache_ok = True

    def process_bind_param(self, value, dialect):  # noqa: ANN001, ANN201
        return stored_path(value) if isinstance(value, str) else value

    def process_result_value(self, value, dialect):  # noqa: ANN001, ANN201
        return loaded_path(value) if value is not None else value


def path_is_under(column: ColumnElement[str], folder: str) -> ColumnElement[bool]:
    """SQL condition: ``column`` (a FilePath) is ``folder`` or a path inside it. Compared as
    bytes, because SQLite's LIKE never matches text that is not valid UTF-8."""
    prefix = os.fsencode(folder.rstrip(os.sep) + os.sep)
    head = func.substr(cast(column, LargeBinary), 1, len(prefix))
    return or_(column == folder, head == cast(prefix, LargeBinary))


class PhotoStatus(StrEnum):
    """Whether a present photo could be read: OK (read, or waiting to be encoded) or FAILED
    (``Photo.error`` says why; retried when the file changes or on request)."""

    OK = "ok"
    FAILED = "failed"


class Meta(Base):
    """Key/value facts about the library: schema version, active model."""

    __tablename__ = "meta"
    key: Mapped[str] = mapped_column(String, primary_key=True)
    value: Mapped[str] = mapped_column(String)


class Folder(Base):
    """A folder the user added; its photos are found by walking it recursively."""

    __tablename__ = "folders"
    id: Mapped[int] = mapped_column(primary_key=True)
    path: Mapped[str] = mapped_column(FilePath, unique=True)
    added_at: Mapped[datetime]
    online: Mapped[bool] = mapped_column(default=True)
    last_seen_at: Mapped[datetime | None]
    photos: Mapped[list[Photo]] = relationship(back_populates="folder", passive_deletes=True)


class Photo(Base):
    """One photo file. ``status`` is a PhotoStatus (FAILED: ``error`` says why).

    Rows with ``missing_since`` set are tombstones of vanished files (see ``Photo.present``).
    """

    __tablename__ = "photos"
    id: Mapped[int] = mapped_column(primary_key=True)
    folder_id: Mapped[int] = mapped_column(ForeignKey("folders.id", ondelete="CASCADE"))
    path: Mapped[str] = mapped_column(FilePath, unique=True)
    size: Mapped[int]
    mtime_ns: Mapped[int]
    content_hash: Mapped[str] = mapped_column(String, index=True)
    width: Mapped[int | None]
    height: Mapped[int | None]
    taken_at: Mapped[datetime | None]
    file_time: Mapped[datetime]
    camera: Mapped[str | None]
    status: Mapped[str] = mapped_column(String, default=PhotoStatus.OK)
    error: Mapped[str | None]
    added_at: Mapped[datetime]
    # set when the file vanished; the row is a tombstone until a file with the same content
    # hash reappears (a move) or it is purged. Tombstones are never shown or searched.
    missing_since: Mapped[datetime | None] = mapped_column(index=True)
    # EXIF GPS position (degrees) and the place names reverse-geocoded from it (schema v4)
    latitude: Mapped[float | None]
    longitude: Mapped[float | None]
    place_city: Mapped[str | None]
    place_region: Mapped[str | None]
    place_country: Mapped[str | None]
    # perceptual hash (hex) of the decoded photo, for near-duplicate grouping (schema v4)
    phash: Mapped[str | None]
    folder: Mapped[Folder] = relationship(back_populates="photos")

    @classmethod
    def present(cls):  # noqa: ANN206 - a SQL expression
        """SQL condition: the file exists as far as the catalog knows (not a tombstone)."""
        return cls.missing_since.is_(None)


class Model(Base):
    """A model bundle identity that has produced vectors in this library."""

    __tablename__ = "models"
    id: Mapped[int] = mapped_column(primary_key=True)
    identity: Mapped[str] = mapped_column(String, unique=True)
    name: Mapped[str]
    embed_dim: Mapped[int]
    created_at: Mapped[datetime]


class Vector(Base):
    """A photo's embedding under one model, so the HNSW graph is rebuildable: ``vector`` is
    the float32 bytes (a vector not yet moved) or a reference into the model's 16-bit slot
    file (schema v6, photosearch.vectors.vector_slots); read it through that module."""

    __tablename__ = "vectors"
    photo_id: Mapped[int] = mapped_column(
        ForeignKey("photos.id", ondelete="CASCADE"), primary_key=True
    )
    model_id: Mapped[int] = mapped_column(
        ForeignKey("models.id", ondelete="CASCADE"), primary_key=True
    )
    vector: Mapped[bytes] = mapped_column(LargeBinary)


Index("ix_vectors_model", Vector.model_id)


class PhotoExtraction(Base):
    """A text extractor (e.g. OCR) has run on this photo's content; ``text`` is what it read.

    Keyed by extractor so several can coexist; ``content_hash`` says which version of the file
    was read, so a changed photo is read again and a finished one never is (resumable runs).
    """

    __tablename__ = "photo_extractions"
    photo_id: Mapped[int] = mapped_column(
        ForeignKey("photos.id", ondelete="CASCADE"), primary_key=True
    )
    extractor: Mapped[str] = mapped_column(String, primary_key=True)
    content_hash: Mapped[str]
    text: Mapped[str] = mapped_column(String, default="")
    finished_at: Mapped[datetime]
