"""The library as a timeline: every readable photo, newest (or oldest) first, no query needed.

A photo without a capture time is placed by its file time, the same date the search filters
use (``coalesce(taken_at, file_time)``), so sorting, filtering and showing agree.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from sqlalchemy import and_, func, select

from photosearch.catalog import Catalog, Photo, PhotoStatus, path_is_under
from photosearch.search.places import PLACE_COLUMNS, place_condition, place_label
from photosearch.search.query import SearchResult


def photos_by_date(
    catalog: Catalog,
    *,
    folder: Path | None = None,
    after: datetime | None = None,
    before: datetime | None = None,
    camera: str | None = None,
    newest_first: bool = True,
    place: str | None = None,
) -> list[SearchResult]:
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
    with catalog.session() as session:
        rows = session.execute(select(*columns).where(and_(*conditions)).order_by(*order)).all()
    return [
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
        for pid, path, width, height, taken_at, camera_name, file_time, *place_names in rows
    ]
