"""Model switching as catalog facts: the pending target model, each vector set's coverage,
and dropping a set.

A library keeps one vector set per bundle identity (rows in ``vectors`` plus an HNSW graph in
``vectors/``). Choosing another model records it as the *target* (a ``meta`` key, so no schema
change); searches keep using the *active* model until the target's set covers every photo that
can be encoded now, then the library switches over. Resuming needs no bookkeeping of its own:
what is left is "photos without a vector for the target identity", which the catalog answers.
Nothing here drops a set implicitly; ``drop_vector_set`` is only called on explicit request.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import delete, func, select

from photosearch.catalog import Catalog, Model, Photo, PhotoStatus, Vector
from photosearch.catalog.tables import Meta
from photosearch.errors import PhotosearchError
from photosearch.indexing.encode import IndexResult
from photosearch.library.active_model import ACTIVE_MODEL_KEY, TARGET_MODEL_KEY
from photosearch.vectors.store import store_stem


class ModelSetInUse(PhotosearchError):
    """The vector set asked to be dropped is the one searches use, or the switch's target."""


@dataclass(frozen=True)
class SwitchState:
    """What choosing a model did. ``covered``/``pending``: photos the chosen model's set has a
    vector for, and readable photos in online folders still to encode for it."""

    active: str
    target: str | None
    covered: int
    pending: int
    switched: bool = False
    cancelled: str | None = None


@dataclass(frozen=True)
class ReembedReport:
    """One run of encoding for the pending target; ``remaining`` is what is left after it."""

    model: str
    identity: str
    encoding: IndexResult
    remaining: int
    switched: bool


@dataclass(frozen=True)
class VectorSetInfo:
    """One model's vector set: ``vectors`` of the ``photos`` (present, readable) it covers."""

    name: str
    identity: str
    vectors: int
    photos: int
    active: bool
    target: bool
    disk_bytes: int  # every file of the set in vectors/ (slots, graph, matrix)


@dataclass(frozen=True)
class DroppedSet:
    name: str
    identity: str
    vectors: int
    files: list[str]


def record_target(catalog: Catalog, name: str | None) -> None:
    """Set (or with None clear) the model the library is switching to."""
    with catalog.session() as session:
        if name is None:
            session.execute(delete(Meta).where(Meta.key == TARGET_MODEL_KEY))
        else:
            session.merge(Meta(key=TARGET_MODEL_KEY, value=name))


def record_switch(catalog: Catalog, name: str, only_if_target: bool = False) -> bool:
    """Make ``name`` the active model and clear any target, in one transaction.

    With ``only_if_target``, do so only while ``name`` is still the recorded target: a
    re-encode that finishes after the user chose yet another model (or cancelled, maybe from
    another process) must not override that choice. Returns whether it switched.
    """
    with catalog.session() as session:
        if only_if_target:
            target = session.scalar(select(Meta.value).where(Meta.key == TARGET_MODEL_KEY))
            if target != name:
                return False
        session.merge(Meta(key=ACTIVE_MODEL_KEY, value=name))
        session.execute(delete(Meta).where(Meta.key == TARGET_MODEL_KEY))
    return True


def covered_count(catalog: Catalog, model_id: int) -> int:
    """Present photos that have a vector for ``model_id``."""
    with catalog.session() as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(Vector)
                .join(Photo, Photo.id == Vector.photo_id)
                .where(Vector.model_id == model_id, Photo.present())
            )
            or 0
        )


def vector_sets(catalog: Catalog) -> list[tuple[str, str, int]]:
    """(identity, name, vectors of present photos) for every model the catalog knows."""
    with catalog.session() as session:
        counts = dict(
            session.execute(
                select(Vector.model_id, func.count())
                .join(Photo, Photo.id == Vector.photo_id)
                .where(Photo.present())
                .group_by(Vector.model_id)
            ).all()
        )
        rows = session.execute(
            select(Model.id, Model.identity, Model.name).order_by(Model.id)
        ).all()
    return [(identity, name, int(counts.get(model_id, 0))) for model_id, identity, name in rows]


def readable_photo_count(catalog: Catalog) -> int:
    """Present photos that decoded (or have not been tried yet): what a complete set covers."""
    with catalog.session() as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(Photo)
                .where(Photo.present(), Photo.status == PhotoStatus.OK)
            )
            or 0
        )


def find_vector_sets(catalog: Catalog, key: str) -> list[tuple[str, str]]:
    """(identity, name) of the sets ``key`` names: an exact identity, else a model name."""
    with catalog.session() as session:
        rows = session.execute(
            select(Model.identity, Model.name).where(Model.identity == key)
        ).all()
        if not rows:
            rows = session.execute(
                select(Model.identity, Model.name).where(Model.name == key).order_by(Model.id)
            ).all()
    return [(str(identity), str(name)) for identity, name in rows]


def vector_store_files(directory: Path, identity: str) -> list[Path]:
    """Every file of one identity's HNSW store (commit point, graphs, leftovers of a save)."""
    if not directory.is_dir():
        return []
    prefix = store_stem(identity) + "."
    return sorted(
        directory / name
        for name in os.listdir(directory)
        if name.startswith(prefix) and "@" not in name[len(prefix) :]
    )


def drop_vector_set(catalog: Catalog, vectors_dir: Path, identity: str) -> DroppedSet:
    """Delete one set's catalog vectors and model row, then its graph files. The caller checks
    that the set is not in use and holds the write lock. A crash in between leaves orphan
    files that nothing loads (a store for that identity would be repaired from the catalog)."""
    with catalog.session() as session:
        row = session.execute(
            select(Model.id, Model.name).where(Model.identity == identity)
        ).first()
        if row is None:
            raise PhotosearchError(f"no vector set {identity!r} in this library")
        model_id, name = row
        vectors = int(
            session.scalar(
                select(func.count()).select_from(Vector).where(Vector.model_id == model_id)
            )
            or 0
        )
        session.execute(delete(Vector).where(Vector.model_id == model_id))
        session.execute(delete(Model).where(Model.id == model_id))
    files = vector_store_files(vectors_dir, identity)
    for path in files:
        path.unlink(missing_ok=True)
    return DroppedSet(str(name), identity, vectors, [str(p) for p in files])
