"""The Places filter: photos taken in a named place, and the places a library has.

A place name matches a photo whose place words (its town, neighbourhood, county, region,
country and the country's other names, see photosearch.files.places) contain it as a phrase, case
and accents ignored: "lisbon", "Portugal", "new york", "usa".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from photosearch.catalog.text_index import ROWS_PER_PHOTO, TermSource
from photosearch.files.place_label import place_label

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

__all__ = [
    "PlaceCount",
    "catalog_places",
    "place_condition",
    "place_counts",
    "place_label",
]

_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True)
class PlaceCount:
    """One entry of the Places list: ``name`` is what the filter matches, ``label`` what is
    shown ("Lisbon, Portugal"), ``photos`` how many photos were taken there."""

    name: str
    label: str
    photos: int


def place_condition(name: str) -> Any:
    """SQL condition on ``photos``: taken in the place called ``name`` (never true for a name
    with no letters or digits)."""
    from sqlalchemy import Integer, text  # a filter's cost, not every search's

    from photosearch.catalog import Photo

    words = _WORD.findall(name.lower())
    phrase = '"' + " ".join(words) + '"' if words else '""'
    rows = (
        text(
            f"SELECT rowid / {ROWS_PER_PHOTO} AS id FROM photo_terms "
            f"WHERE photo_terms MATCH :place AND rowid % {ROWS_PER_PHOTO} = {int(TermSource.PLACE)}"
        )
        .bindparams(place=phrase)
        .columns(id=Integer)
    )
    return Photo.id.in_(rows) if words else Photo.id.is_(None)


def place_counts(session: Session) -> list[PlaceCount]:
    """Countries and towns with photos, most photos first (countries before their towns)."""
    from sqlalchemy import func, select

    from photosearch.catalog import Photo

    present = Photo.present()
    countries = session.execute(
        select(Photo.place_country, func.count())
        .where(present, Photo.place_country.is_not(None))
        .group_by(Photo.place_country)
    ).all()
    towns = session.execute(
        select(Photo.place_city, Photo.place_country, func.count())
        .where(present, Photo.place_city.is_not(None))
        .group_by(Photo.place_city, Photo.place_country)
    ).all()
    by_country: dict[str, list[PlaceCount]] = {}
    for city, country, count in towns:
        label = f"{city}, {country}" if country else city
        by_country.setdefault(country or "", []).append(PlaceCount(city, label, count))
    entries: list[PlaceCount] = []
    for country, count in sorted(countries, key=lambda row: (-row[1], row[0])):
        entries.append(PlaceCount(country, country, count))
        entries += sorted(by_country.pop(country, []), key=lambda p: (-p.photos, p.label))
    for rest in by_country.values():
        entries += rest
    return entries


def catalog_places(catalog) -> list[PlaceCount]:  # noqa: ANN001 - a Catalog
    """``place_counts`` in a session of its own (for the app's Places list)."""
    with catalog.session() as session:
        return place_counts(session)
