"""The library as a timeline: every readable photo, newest (or oldest) first, no query needed.

A photo without a capture time is placed by its file time, the same date the search filters
use (``coalesce(taken_at, file_time)``), so sorting, filtering and showing agree.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import overload

import numpy as np
from sqlalchemy import and_, func, select

from photosearch.catalog import Catalog, Photo, PhotoStatus, path_is_under
from photosearch.search.places import PLACE_COLUMNS, place_condition, place_label
from photosearch.search.query import SearchResult

EPOCH = datetime(1970, 1, 1)
NO_TIME = -(2**63)  # a missing date in DatedPhotos' columns


class DatedPhotos(Sequence[SearchResult]):
    """The timeline's photos as columns, each SearchResult made when it is read.

    A list of 100k SearchResults took 67 MB in the desktop app with the grid's own tables, and
    ~485 MB at 1M (benchmarks/bench_app_memory.py): an object, a float, an int and one or two
    datetimes per photo. Here a photo costs its path's bytes and ~50 bytes of arrays (no object
    per photo, so nothing is left behind in a fragmented heap either); camera and place names
    are shared between the photos that have them. Naive datetimes only (what the catalog
    stores)."""

    def __init__(self) -> None:
        self._ids = array("q")
        self._path_bytes = bytearray()  # every path, UTF-8 (surrogateescape), end to end
        self._path_ends = array("q")
        self._hashes: tuple[np.ndarray, np.ndarray] | None = None  # for index_of
        self._sizes = array("l")  # width, height per photo; -1 for unknown
        self._times = array("q")  # taken_at, file_time per photo, microseconds since EPOCH
        self._cameras: list[str | None] = []
        self._places: list[str | None] = []
        self._names: dict[str, str] = {}

    def append(self, photo: SearchResult) -> None:
        self._ids.append(photo.photo_id)
        self._path_bytes += photo.path.encode("utf-8", "surrogateescape")
        self._path_ends.append(len(self._path_bytes))
        self._hashes = None
        self._sizes.extend((_or_minus_one(photo.width), _or_minus_one(photo.height)))
        self._times.extend((_micros(photo.taken_at), _micros(photo.file_time)))
        self._cameras.append(self._shared(photo.camera))
        self._places.append(self._shared(photo.place))

    def __len__(self) -> int:
        return len(self._ids)

    @overload
    def __getitem__(self, index: int) -> SearchResult: ...

    @overload
    def __getitem__(self, index: slice) -> list[SearchResult]: ...

    def __getitem__(self, index: int | slice) -> SearchResult | list[SearchResult]:
        if isinstance(index, slice):
            return [self._make(i) for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError("photo index out of range")
        return self._make(index)

    def __iter__(self) -> Iterator[SearchResult]:
        return (self._make(i) for i in range(len(self)))

    def index_of(self, path: str) -> int | None:
        """The position of ``path`` (the first, were it listed twice); None when absent."""
        if self._hashes is None:
            hashes = np.fromiter((hash(self._path(i)) for i in range(len(self))), np.int64)
            order = np.argsort(hashes, kind="stable")
            self._hashes = (hashes[order], order)
        hashes, order = self._hashes
        wanted = hash(path)
        at = int(np.searchsorted(hashes, wanted))
        while at < len(hashes) and hashes[at] == wanted:
            if self._path(int(order[at])) == path:
                return int(order[at])
            at += 1
        return None

    def _path(self, i: int) -> str:
        start = self._path_ends[i - 1] if i else 0
        raw = bytes(self._path_bytes[start : self._path_ends[i]])
        return raw.decode("utf-8", "surrogateescape")

    def _make(self, i: int) -> SearchResult:
        width, height = self._sizes[2 * i], self._sizes[2 * i + 1]
        return SearchResult(
            self._ids[i],
            self._path(i),
            0.0,
            None if width < 0 else width,
            None if height < 0 else height,
            _datetime(self._times[2 * i]),
            self._cameras[i],
            _datetime(self._times[2 * i + 1]),
            self._places[i],
        )

    def _shared(self, name: str | None) -> str | None:
        return None if name is None else self._names.setdefault(name, name)


def _or_minus_one(value: int | None) -> int:
    return -1 if value is None else value


def _micros(when: datetime | None) -> int:
    if when is None:
        return NO_TIME
    return (when.replace(tzinfo=None) - EPOCH) // timedelta(microseconds=1)


def _datetime(micros: int) -> datetime | None:
    return None if micros == NO_TIME else EPOCH + timedelta(microseconds=micros)


def photos_by_date(
    catalog: Catalog,
    *,
    folder: Path | None = None,
    after: datetime | None = None,
    before: datetime | None = None,
    camera: str | None = None,
    newest_first: bool = True,
    place: str | None = None,
) -> DatedPhotos:
    """Present, readable photos ordered by date (score 0.0), honouring the same filters as a
    search: ``after`` inclusive, ``before`` exclusive, ``camera`` a case-insensitive part."""
    when = func.coalesce(Photo.taken_at, Photo.file_time)
    conditions = [Photo.present(), Photo.status == PhotoStatus.OK]
    if folder is not None:
        conditions.append(path_is_under(Photo.path, str(folder.expanduser().resolve())))
    if after is not None:
        conditions.append(when >= after)
    if before is not None:
        conditions.append(when < before)
    if camera:
        conditions.append(Photo.camera.ilike(f"%{camera}%"))
    if place:  # issue 20: the Places filter
        conditions.append(place_condition(place))
    order = (when.desc(), Photo.path.desc()) if newest_first else (when.asc(), Photo.path.asc())
    columns = (
        Photo.id,
        Photo.path,
        Photo.width,
        Photo.height,
        Photo.taken_at,
        Photo.camera,
        Photo.file_time,
        *PLACE_COLUMNS,
    )
    photos = DatedPhotos()
    with catalog.session() as session:
        found = session.execute(select(*columns).where(and_(*conditions)).order_by(*order))
        for pid, path, width, height, taken_at, camera_name, file_time, *place_names in found:
            photos.append(
                SearchResult(
                    pid,
                    path,
                    0.0,
                    width,
                    height,
                    taken_at,
                    camera_name,
                    file_time,
                    place_label(*place_names),
                )
            )
    return photos
