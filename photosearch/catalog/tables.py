"""SQLAlchemy ORM classes for the current schema (the migrations in schema.py build it)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, LargeBinary, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    pass


class Meta(Base):
    """Key/value facts about the library: schema version, active model."""

    __tablename__ = "meta"
    key: Mapped[str] = mapped_column(String, primary_key=True)
    value: Mapped[str] = mapped_column(String)


class Folder(Base):
    """A folder the user added; its photos are found by walking it recursively."""

    __tablename__ = "folders"
    id: Mapped[int] = mapped_column(primary_key=True)
    path: Mapped[str] = mapped_column(String, unique=True)
    added_at: Mapped[datetime]
    online: Mapped[bool] = mapped_column(default=True)
    last_seen_at: Mapped[datetime | None]
    photos: Mapped[list[Photo]] = relationship(back_populates="folder", passive_deletes=True)


class Photo(Base):
    """One photo file. ``status`` is 'ok' or 'failed' (then ``error`` says why).

    Rows with ``missing_since`` set are tombstones of vanished files (see ``Photo.present``).
    """

    __tablename__ = "photos"
    id: Mapped[int] = mapped_column(primary_key=True)
    folder_id: Mapped[int] = mapped_column(ForeignKey("folders.id", ondelete="CASCADE"))
    path: Mapped[str] = mapped_column(String, unique=True)
    size: Mapped[int]
    mtime_ns: Mapped[int]
    content_hash: Mapped[str] = mapped_column(String, index=True)
    width: Mapped[int | None]
    height: Mapped[int | None]
    taken_at: Mapped[datetime | None]
    file_time: Mapped[datetime]
    camera: Mapped[str | None]
    status: Mapped[str] = mapped_column(String, default="ok")
    error: Mapped[str | None]
    added_at: Mapped[datetime]
    # set when the file vanished; the row is a tombstone until a file with the same content
    # hash reappears (a move) or it is purged. Tombstones are never shown or searched.
    missing_since: Mapped[datetime | None] = mapped_column(index=True)
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
    """A photo's embedding under one model (float32 bytes), so the HNSW graph is rebuildable."""

    __tablename__ = "vectors"
    photo_id: Mapped[int] = mapped_column(
        ForeignKey("photos.id", ondelete="CASCADE"), primary_key=True
    )
    model_id: Mapped[int] = mapped_column(
        ForeignKey("models.id", ondelete="CASCADE"), primary_key=True
    )
    vector: Mapped[bytes] = mapped_column(LargeBinary)


Index("ix_vectors_model", Vector.model_id)
