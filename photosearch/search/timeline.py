"""The library as a timeline: every readable photo, newest (or oldest) first, no query needed.

A photo without a capture time is placed by its file time, the same date the search filters
use (``coalesce(taken_at, file_time)``), so sorting, filtering and showing agree.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import overload

import numpy as np
from sqlalchemy import Integer, and_, case, cast, func, select

from photosearch.catalog import Catalog, Photo, PhotoStatus, path_is_under
from photosearch.search.places import place_condition, place_label
from photosearch.search.query import SearchResult

EPOCH = datetime(1970, 1, 1)
NO_TIME = -(2**63)  # a missing date in DatedPhotos' columns
BLOCK = 256  # photos whose paths are read together, as a grid's visible cells ask for them
KEPT_BLOCKS = 64  # blocks of paths kept (16k photos: a few screens either way)
ROWS_PER_READ = 65_536  # rows turned into columns at a time while the timeline loads
# the columns a row reads to say where it was taken (see place_label)
PLACE_COLUMNS = (Photo.place_city, Photo.place_region, Photo.place_country)

# id -> (path, camera, place) of those of the ids still in the catalog
Details = Callable[[list[int]], dict[int, tuple[str, str | None, str | None]]]
# path -> id of those of the paths the catalog holds
IdsOfPaths = Callable[[list[str]], dict[str, int]]


class DatedPhotos(Sequence[SearchResult]):
    """The timeline's photos as NumPy columns, each SearchResult made when it is read.

    At 1M photos a SearchResult per photo took ~485 MB in the desktop app and the columns with
    every path in them ~255 MB (benchmarks/bench_app_memory_1m.py). Here a photo costs 32
    bytes (id, width, height, capture and file time); its path, camera and place are read from
    the catalog a block at a time when something asks for it (the grid's visible cells, the
    viewer) and the last KEPT_BLOCKS blocks are kept. A photo deleted from the catalog after
    the timeline was read shows an empty path until the timeline is read again. Naive
    datetimes only (what the catalog stores)."""

    def __init__(
        self,
        ids: np.ndarray,
        sizes: np.ndarray,
        times: np.ndarray,
        details: Details,
        ids_of_paths: IdsOfPaths,
    ) -> None:
        """``sizes``: (n, 2) width, height (-1 unknown); ``times``: (n, 2) taken_at,
        file_time in microseconds since EPOCH (NO_TIME for none)."""
        self.ids = np.asarray(ids, dtype=np.int64)
        self.sizes = np.asarray(sizes, dtype=np.int32).reshape(len(self.ids), 2)
        self.times = np.asarray(times, dtype=np.int64).reshape(len(self.ids), 2)
        self._details = details
        self._ids_of_paths = ids_of_paths
        self._blocks: OrderedDict[int, list[tuple[str, str | None, str | None]]] = OrderedDict()
        self._read_paths: dict[str, int] = {}  # path -> position, for the blocks kept
        self._positions: tuple[np.ndarray, np.ndarray] | None = None  # sorted ids, their order

    @classmethod
    def of(cls, photos: Iterable[SearchResult]) -> DatedPhotos:
        """Columns of ``photos`` as given, their paths held in memory (tests, small lists)."""
        photos = list(photos)
        known = {p.photo_id: (p.path, p.camera, p.place) for p in photos}
        by_path = {p.path: p.photo_id for p in photos}
        return cls(
            np.array([p.photo_id for p in photos], dtype=np.int64),
            np.array(
                [(_or_minus_one(p.width), _or_minus_one(p.height)) for p in photos], np.int32
            ).reshape(-1, 2),
            np.array(
                [(_micros(p.taken_at), _micros(p.file_time)) for p in photos], np.int64
            ).reshape(-1, 2),
            lambda ids: {i: known[i] for i in ids if i in known},
            lambda paths: {p: by_path[p] for p in paths if p in by_path},
        )

    def __len__(self) -> int:
        return len(self.ids)

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

    def shown_times(self) -> np.ndarray:
        """Each photo's date as shown and sorted by (capture time, else file time), in
        microseconds since EPOCH; NO_TIME where it has neither."""
        taken = self.times[:, 0]
        return np.where(taken != NO_TIME, taken, self.times[:, 1])

    def has_capture_time(self) -> np.ndarray:
        return self.times[:, 0] != NO_TIME

    def index_of(self, path: str) -> int | None:
        """The position of ``path`` (looked up in the blocks read, else in the catalog); None
        when it is not in the timeline."""
        if (position := self._read_paths.get(path)) is not None:
            return position
        photo_id = self._ids_of_paths([path]).get(path)
        return None if photo_id is None else self._position_of(photo_id)

    def without(self, paths: Iterable[str]) -> DatedPhotos:
        """These photos less ``paths`` (e.g. just moved to the trash), in the same order."""
        keep = np.ones(len(self), dtype=bool)
        for path in paths:
            position = self.index_of(path)
            if position is not None:
                keep[position] = False
        return DatedPhotos(
            self.ids[keep], self.sizes[keep], self.times[keep], self._details, self._ids_of_paths
        )

    def _position_of(self, photo_id: int) -> int | None:
        if self._positions is None:
            order = np.argsort(self.ids, kind="stable")
            self._positions = (self.ids[order], order)
        ids, order = self._positions
        at = int(np.searchsorted(ids, photo_id))
        return int(order[at]) if at < len(ids) and ids[at] == photo_id else None

    def _row_details(self, i: int) -> tuple[str, str | None, str | None]:
        block = i // BLOCK
        rows = self._blocks.get(block)
        if rows is None:
            ids = self.ids[block * BLOCK : (block + 1) * BLOCK].tolist()
            found = self._details(ids)
            rows = [found.get(pid, ("", None, None)) for pid in ids]
            self._blocks[block] = rows
            for offset, (path, _, _) in enumerate(rows):
                self._read_paths.setdefault(path, block * BLOCK + offset)
            while len(self._blocks) > KEPT_BLOCKS:
                gone, dropped = self._blocks.popitem(last=False)
                for offset, (path, _, _) in enumerate(dropped):
                    if self._read_paths.get(path) == gone * BLOCK + offset:
                        del self._read_paths[path]
        else:
            self._blocks.move_to_end(block)
        return rows[i - block * BLOCK]

    def _make(self, i: int) -> SearchResult:
        width, height = (int(v) for v in self.sizes[i])
        taken, file_time = (int(v) for v in self.times[i])
        path, camera, place = self._row_details(i)
        return SearchResult(
            int(self.ids[i]),
            path,
            0.0,
            None if width < 0 else width,
            None if height < 0 else height,
            _datetime(taken),
            camera,
            _datetime(file_time),
            place,
        )


def _or_minus_one(value: int | None) -> int:
    return -1 if value is None else value


def _micros(when: datetime | None) -> int:
    if when is None:
        return NO_TIME
    return (when.replace(tzinfo=None) - EPOCH) // timedelta(microseconds=1)


def _datetime(micros: int) -> datetime | None:
    return None if micros == NO_TIME else EPOCH + timedelta(microseconds=micros)


def _micros_in_sql(column):  # noqa: ANN001, ANN202 - a SQLAlchemy column expression
    """``column`` (a naive DATETIME, stored by SQLAlchemy as 'YYYY-MM-DD HH:MM:SS.ffffff') as
    microseconds since EPOCH, NO_TIME for NULL: parsing 2M datetimes in Python took ~18 s
    of the timeline's load at 1M photos."""
    seconds = cast(func.strftime("%s", column), Integer)
    fraction = cast(func.substr(column.op("||")(".000000"), 21, 6), Integer)
    return case((column.is_(None), NO_TIME), else_=seconds * 1_000_000 + fraction)


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
        func.coalesce(Photo.width, -1),
        func.coalesce(Photo.height, -1),
        _micros_in_sql(Photo.taken_at),
        _micros_in_sql(Photo.file_time),
    )
    parts = []
    with catalog.session() as session:
        found = session.connection().execute(
            select(*columns).where(and_(*conditions)).order_by(*order)
        )
        # integers only, read straight from the DB-API cursor: no Row object per photo
        while rows := found.cursor.fetchmany(ROWS_PER_READ):
            parts.append(np.array(rows, dtype=np.int64).reshape(-1, 5))
        found.close()
    table = np.concatenate(parts) if parts else np.zeros((0, 5), np.int64)
    return DatedPhotos(
        table[:, 0].copy(),
        table[:, 1:3].astype(np.int32),
        table[:, 3:5].copy(),
        lambda ids: _details(catalog, ids),
        lambda paths: _ids_of_paths(catalog, paths),
    )


def _details(catalog: Catalog, ids: Sequence[int]) -> dict[int, tuple[str, str | None, str | None]]:
    with catalog.session() as session:
        rows = session.execute(
            select(Photo.id, Photo.path, Photo.camera, *PLACE_COLUMNS).where(Photo.id.in_(ids))
        )
        return {pid: (path, cam, place_label(*places)) for pid, path, cam, *places in rows}


def _ids_of_paths(catalog: Catalog, paths: Sequence[str]) -> dict[str, int]:
    with catalog.session() as session:
        rows = session.execute(select(Photo.path, Photo.id).where(Photo.path.in_(paths)))
        return {path: pid for path, pid in rows}
