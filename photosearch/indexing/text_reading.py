"""Reading text in photos: the stage that runs the text extractors after the embeddings.

It reads only photos that already have a vector (so every photo it opens has passed the decode
pool's time and memory limits once) and that no extractor of the current version has read at
their current content: ``photo_extractions`` keeps one row per photo and extractor with the
``content_hash`` read, so a finished photo is never read again, a changed one is, and an
interrupted run resumes where it stopped; a byte-identical copy of a photo already read takes
its text without being read. The words go into the catalog's FTS5 index
(``text_index.set_terms(..., TEXT_IN_PHOTO)``). A photo that cannot be read costs one log line
and an empty row (it is retried when the file changes), never the run.

Whether the stage runs is a library setting (``READ_TEXT_KEY``, on unless turned off; the
environment variable PHOTOSEARCH_READ_TEXT=off turns it off for one process, e.g. on battery or
in the test suite) and needs an installed extractor plugin (entry-point group
``photosearch.extractors``).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import and_, delete, exists, func, select
from sqlalchemy.orm import Session

from photosearch.catalog import Catalog, Folder, Photo, Vector
from photosearch.catalog.tables import PhotoExtraction
from photosearch.catalog.text_index import TermSource, set_terms
from photosearch.errors import UnsupportedImage
from photosearch.files.imaging import load_image
from photosearch.indexing.encode import IndexProgress
from photosearch.indexing.extractors import TextExtractor, extractor_key

log = logging.getLogger(__name__)
READ_TEXT_KEY = "read_text_in_photos"  # catalog meta: "off" turns the stage off
READ_TEXT_ENV = "PHOTOSEARCH_READ_TEXT"  # "off": not in this process, whatever the setting
# Photos are decoded with both sides kept at least this large (JPEG draft mode may shrink a
# 12 MP photo to about 2000x1500): enough for the text a person can read in the photo.
DECODE_MIN_SIDE = 1500
COMMIT_EVERY = 16  # photos per transaction (a run stopped mid-way loses at most these)

ProgressCallback = Callable[[IndexProgress], None]


@dataclass(frozen=True)
class ReadReport:
    """One run of the stage: photos read, how many showed text, failures, what is left
    (``remaining`` None: some are, not counted because the caller did not ask)."""

    read: int
    with_text: int
    failed: int
    remaining: int | None
    seconds: float
    stopped: bool


@dataclass(frozen=True)
class ReadingStatus:
    """For ``status``: photos read by the current extractors, and how many had text."""

    enabled: bool
    extractors: tuple[str, ...]  # name@version of each extractor in use
    read: int
    with_text: int
    pending: int
    unavailable: tuple[str, ...] = ()  # why a registered extractor cannot run


def reading_enabled(catalog: Catalog) -> bool:
    """The library's setting (on unless the user turned it off), unless PHOTOSEARCH_READ_TEXT=off
    turns it off for this process."""
    if os.environ.get(READ_TEXT_ENV, "").strip().lower() == "off":
        return False
    return (catalog.get_meta(READ_TEXT_KEY) or "on") != "off"


def set_reading_enabled(catalog: Catalog, enabled: bool) -> None:
    catalog.set_meta(READ_TEXT_KEY, "on" if enabled else "off")


def pending_reads(
    catalog: Catalog, extractor: TextExtractor, limit: int | None = None
) -> list[tuple[int, str, str]]:
    """(id, path, content_hash) of the first ``limit`` (or all) photos ``extractor`` has yet
    to read, in id order."""
    query = _pending(
        select(Photo.id, Photo.path, Photo.content_hash), extractor_key(extractor)
    ).order_by(Photo.id)
    if limit is not None:
        query = query.limit(limit)
    with catalog.session() as session:
        return [(int(i), str(p), str(h)) for i, p, h in session.execute(query)]


def pending_count(catalog: Catalog, extractor: TextExtractor) -> int:
    """How many photos ``extractor`` has yet to read."""
    with catalog.session() as session:
        query = _pending(select(func.count(Photo.id)), extractor_key(extractor))
        return int(session.scalar(query) or 0)


def _pending(query, key: str):  # noqa: ANN001, ANN202 - SQLAlchemy Select in, Select out
    encoded = exists().where(Vector.photo_id == Photo.id)
    read = exists().where(
        PhotoExtraction.photo_id == Photo.id,
        PhotoExtraction.extractor == key,
        PhotoExtraction.content_hash == Photo.content_hash,
    )
    return (
        query.select_from(Photo)
        .join(Folder, Folder.id == Photo.folder_id)
        .where(Photo.status == "ok", Photo.present(), Folder.online.is_(True), encoded, ~read)
    )


def read_text_in_photos(
    catalog: Catalog,
    extractors: Sequence[TextExtractor],
    *,
    progress: ProgressCallback | None = None,
    should_stop: Callable[[], bool] | None = None,
    limit: int | None = None,
    count_left: bool = True,
) -> ReadReport:
    """Run each extractor on the photos it has not read yet (at most ``limit`` photos per
    extractor). Stops between photos when ``should_stop()`` turns True; what was read so far is
    committed. The caller holds the library's write lock. Only the batch is read from the
    catalog, and what is left beyond it counted only with ``count_left`` (a watch reading a
    few photos a step through a 1M-photo library read all 1M rows at every step)."""
    started = time.monotonic()
    read = with_text = failed = remaining = 0
    uncounted = stopped = False
    for extractor in extractors:
        batch = pending_reads(catalog, extractor, None if limit is None else limit + 1)
        if limit is not None and len(batch) > limit:
            batch = batch[:limit]
            if count_left:
                remaining += pending_count(catalog, extractor) - len(batch)
            else:
                uncounted = True
        results: list[tuple[int, str, str]] = []
        known: dict[str, str] = {}  # content hash -> text read in this run
        done = 0
        for done, (photo_id, path, content_hash) in enumerate(batch, 1):
            text = known.get(content_hash)
            if text is None:
                text = _read_before(catalog, extractor, content_hash)
            if text is None:  # not a copy of a photo already read: read it
                text = _read_one(extractor, path)
                if text is None:
                    failed += 1
                    text = ""
            known[content_hash] = text
            with_text += bool(text.strip())
            results.append((photo_id, content_hash, text))
            if len(results) >= COMMIT_EVERY:
                _commit(catalog, extractor, results)
                results = []
            if progress:
                progress(IndexProgress(done, len(batch), failed, time.monotonic() - started))
            if should_stop and should_stop():
                stopped = True
                break
        _commit(catalog, extractor, results)
        read += done
        if stopped:
            remaining += len(batch) - done
            break
    left = None if uncounted else remaining
    return ReadReport(read, with_text, failed, left, time.monotonic() - started, stopped)


def _read_before(catalog: Catalog, extractor: TextExtractor, content_hash: str) -> str | None:
    """The text this extractor read in another photo with the same content (a copy), if any."""
    with catalog.session() as session:
        return session.scalar(
            select(PhotoExtraction.text)
            .where(
                PhotoExtraction.extractor == extractor_key(extractor),
                PhotoExtraction.content_hash == content_hash,
            )
            .limit(1)
        )


def _read_one(extractor: TextExtractor, path: str) -> str | None:
    """The photo's text, or None when it could not be read (logged in one line)."""
    try:
        image, _ = load_image(Path(path), min_size=DECODE_MIN_SIDE)
        return extractor.read_text(image)
    except UnsupportedImage as exc:
        log.warning("text in photo not read: %s: %s", path, exc)
    except Exception as exc:  # an extractor's failure on one photo must not stop the run
        log.warning(
            "text in photo not read: %s: %s: %s",
            path,
            extractor.name,
            f"{type(exc).__name__}: {exc}"[:300],
        )
    return None


def _commit(
    catalog: Catalog, extractor: TextExtractor, results: list[tuple[int, str, str]]
) -> None:
    """Record what was read and refresh each photo's TEXT_IN_PHOTO words, in one transaction.
    A photo deleted meanwhile is skipped."""
    if not results:
        return
    key = extractor_key(extractor)
    now = datetime.now()
    with catalog.session() as session:
        live = set(
            session.scalars(
                select(Photo.id).where(Photo.id.in_([pid for pid, _, _ in results]))
            ).all()
        )
        for photo_id, content_hash, text in results:
            if photo_id not in live:
                continue
            session.execute(
                delete(PhotoExtraction).where(  # older versions of this extractor
                    PhotoExtraction.photo_id == photo_id,
                    PhotoExtraction.extractor.like(f"{extractor.name}@%"),
                )
            )
            session.add(
                PhotoExtraction(
                    photo_id=photo_id,
                    extractor=key,
                    content_hash=content_hash,
                    text=text,
                    finished_at=now,
                )
            )
            session.flush()
            set_terms(session, photo_id, TermSource.TEXT_IN_PHOTO, _all_text(session, photo_id))


def _all_text(session: Session, photo_id: int) -> str:
    """Every text extractor's text for the photo, as one document for the word index. Only
    rows keyed ``name@version`` (``extractor_key``) are text read in the photo: other passes
    keep their own rows in the table (the GPS pass's place names go to the PLACE words)."""
    texts = session.scalars(
        select(PhotoExtraction.text)
        .where(PhotoExtraction.photo_id == photo_id, PhotoExtraction.extractor.like("%@%"))
        .order_by(PhotoExtraction.extractor)
    ).all()
    return "\n".join(t for t in texts if t)


def reading_status(
    catalog: Catalog, extractors: Sequence[TextExtractor], unavailable: Sequence[str] = ()
) -> ReadingStatus:
    """How far the current extractors have got (cheap: a few counts)."""
    keys = [extractor_key(e) for e in extractors]
    read = with_text = pending = 0
    with catalog.session() as session:
        for extractor, key in zip(extractors, keys, strict=True):
            current = and_(
                PhotoExtraction.extractor == key,
                PhotoExtraction.content_hash == Photo.content_hash,
                PhotoExtraction.photo_id == Photo.id,
                Photo.present(),
            )
            read += (
                session.scalar(
                    select(func.count()).select_from(PhotoExtraction).join(Photo, current)
                )
                or 0
            )
            with_text += (
                session.scalar(
                    select(func.count())
                    .select_from(PhotoExtraction)
                    .join(Photo, current)
                    .where(PhotoExtraction.text != "")
                )
                or 0
            )
            pending += pending_count(catalog, extractor)
    return ReadingStatus(
        reading_enabled(catalog),
        tuple(keys),
        int(read),
        int(with_text),
        int(pending),
        tuple(unavailable),
    )
