"""Filling the word index (catalog.text_index) with what a scan knows: names and places.

Two passes, both idempotent and resumable, so a library indexed before these existed is filled
on its next scan with no migration step:

- ``fill_name_words``: every photo's folder and file names (photosearch.files.name_words) into the
  NAME source: on a full scan for the photos without them (new ones, and moved ones, whose
  words reconcile drops), on a watcher batch for its paths.
- ``fill_places``: the EXIF GPS position of every readable photo whose current content has not
  been read for it (a ``photo_extractions`` row under ``PLACES_EXTRACTOR`` at the photo's content
  hash records that it was), reverse-geocoded into ``photos.place_*`` and the PLACE source. It
  reads only file headers, runs after encoding (photos are searchable by content first) and
  stops between batches when asked.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import Integer, and_, exists, select, text, update

from photosearch.catalog import Folder, Photo
from photosearch.catalog.tables import PhotoExtraction
from photosearch.catalog.text_index import ROWS_PER_PHOTO, TermSource, set_terms
from photosearch.files.name_words import name_words
from photosearch.files.places import places_of, read_position

# bump when photosearch.files.name_words changes what it makes of a name: the next scan rewrites all
NAME_WORDS_VERSION = "1"
NAME_WORDS_KEY = "name_words_version"
PLACES_EXTRACTOR = "exif-gps"  # photo_extractions.extractor of the GPS/place read
PLACES_BATCH = 200
SQL_VARIABLES = 900


@dataclass(frozen=True)
class PlacesReport:
    """What one ``fill_places`` run did."""

    read: int  # photos whose EXIF was read
    located: int  # of those, photos with a GPS position
    named: int  # of those, photos near a known town
    stopped: bool = False


def _stored_names(session, ids: list[int] | None) -> dict[int, str]:  # noqa: ANN001
    source = int(TermSource.NAME)
    if ids is None:
        rows = session.execute(
            text("SELECT rowid, text FROM photo_terms WHERE rowid % :n = :s"),
            {"n": ROWS_PER_PHOTO, "s": source},
        ).all()
        return {rowid // ROWS_PER_PHOTO: words for rowid, words in rows}
    stored: dict[int, str] = {}
    for start in range(0, len(ids), SQL_VARIABLES):
        rowids = [pid * ROWS_PER_PHOTO + source for pid in ids[start : start + SQL_VARIABLES]]
        marks = ", ".join(str(r) for r in rowids)  # integers we computed, not user text
        for rowid, words in session.execute(
            text(f"SELECT rowid, text FROM photo_terms WHERE rowid IN ({marks})")
        ):
            stored[rowid // ROWS_PER_PHOTO] = words
    return stored


def fill_name_words(catalog, paths: Collection[str] | None = None) -> int:  # noqa: ANN001
    """Index the folder and file name words of the photos at ``paths``; with None, of every
    photo that has none yet (new photos, and moved ones: reconcile drops a moved photo's name
    words), or of every photo once after ``NAME_WORDS_VERSION`` changed. Returns how many
    photos' words were written."""
    everything = paths is None and catalog.get_meta(NAME_WORDS_KEY) != NAME_WORDS_VERSION
    columns = select(Photo.id, Photo.path, Folder.path).join(Folder, Folder.id == Photo.folder_id)
    with catalog.session() as session:
        if everything:
            rows = session.execute(columns.where(Photo.present())).all()
        elif paths is None:
            rows = session.execute(
                columns.where(
                    Photo.present(),
                    Photo.id.not_in(
                        text(
                            f"SELECT rowid / {ROWS_PER_PHOTO} FROM photo_terms WHERE rowid % "
                            f"{ROWS_PER_PHOTO} = {int(TermSource.NAME)}"
                        ).columns(id=Integer)
                    ),
                )
            ).all()
        else:
            wanted = list(paths)
            rows = []
            for start in range(0, len(wanted), SQL_VARIABLES):
                rows += session.execute(
                    columns.where(
                        Photo.present(), Photo.path.in_(wanted[start : start + SQL_VARIABLES])
                    )
                ).all()
        if everything:
            stored = _stored_names(session, None)
        elif paths is not None:
            stored = _stored_names(session, [row[0] for row in rows])
        else:
            stored = {}  # these photos have no words yet
        written = 0
        folder_cache: dict[str, list[str]] = {}
        fresh: list[dict[str, object]] = []  # photos without a row: one bulk insert
        for photo_id, path, root in rows:
            words = name_words(path, root, folder_cache)
            if photo_id not in stored:
                if words:
                    fresh.append(
                        {"r": photo_id * ROWS_PER_PHOTO + int(TermSource.NAME), "t": words}
                    )
            elif stored[photo_id] != words:
                set_terms(session, photo_id, TermSource.NAME, words)
                written += 1
        if fresh:
            session.execute(text("INSERT INTO photo_terms (rowid, text) VALUES (:r, :t)"), fresh)
            written += len(fresh)
    if everything:
        catalog.set_meta(NAME_WORDS_KEY, NAME_WORDS_VERSION)
    return written


def _unread_batch(session, limit: int, after: int = 0) -> list[tuple[int, str, str]]:  # noqa: ANN001
    """The next ``limit`` unread photos with ids above ``after`` (a run goes on from its last
    batch: from the start, each batch skipped every photo read so far, ~0.3 s a batch of 200
    once 200k were read at 1M photos)."""
    done = exists().where(
        and_(
            PhotoExtraction.photo_id == Photo.id,
            PhotoExtraction.extractor == PLACES_EXTRACTOR,
            PhotoExtraction.content_hash == Photo.content_hash,
        )
    )
    return [
        tuple(row)
        for row in session.execute(
            select(Photo.id, Photo.path, Photo.content_hash)
            .where(
                Photo.id > after,
                Photo.status == "ok",
                Photo.present(),
                Photo.content_hash != "",
                ~done,
            )
            .order_by(Photo.id)
            .limit(limit)
        ).all()
    ]


def unread_places(catalog) -> int:  # noqa: ANN001
    """How many photos still wait for their GPS to be read."""
    with catalog.session() as session:
        return len(_unread_batch(session, 10**9))


def fill_places(
    catalog,  # noqa: ANN001
    should_stop: Callable[[], bool] | None = None,
    batch_size: int = PLACES_BATCH,
) -> PlacesReport:
    """Read the GPS position of every photo not read yet, name its place and index the names;
    one transaction per batch, so a stopped run keeps what it did."""
    read = located = named = 0
    after = 0  # the last id read by this run
    while True:
        if should_stop is not None and should_stop():
            return PlacesReport(read, located, named, stopped=True)
        with catalog.session() as session:
            batch = _unread_batch(session, batch_size, after)
        if not batch:
            return PlacesReport(read, located, named)
        after = batch[-1][0]
        positions = [read_position(Path(path)) for _, path, _ in batch]
        found = [p for p in positions if p is not None]
        names = iter(places_of(found))
        now = datetime.now()
        with catalog.session() as session:
            for (photo_id, _, digest), position in zip(batch, positions, strict=True):
                place = next(names) if position is not None else None
                session.execute(
                    update(Photo)
                    .where(Photo.id == photo_id)
                    .values(
                        latitude=position.latitude if position else None,
                        longitude=position.longitude if position else None,
                        place_city=place.city if place else None,
                        place_region=place.region if place else None,
                        place_country=place.country if place else None,
                    )
                )
                set_terms(session, photo_id, TermSource.PLACE, place.words if place else "")
                session.merge(
                    PhotoExtraction(
                        photo_id=photo_id,
                        extractor=PLACES_EXTRACTOR,
                        content_hash=digest,
                        text=place.words if place else "",
                        finished_at=now,
                    )
                )
                located += position is not None
                named += place is not None
        read += len(batch)
