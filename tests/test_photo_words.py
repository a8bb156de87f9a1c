"""Names and places in the word index (issue 20 items 2 and 4): real files, real EXIF, a real
library scan, the real offline geocoder."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PIL import Image
from PIL.TiffImagePlugin import IFDRational
from sqlalchemy import select, text

from photosearch.catalog import Photo
from photosearch.catalog.tables import PhotoExtraction
from photosearch.catalog.text_index import TermSource, match_terms, words_of
from photosearch.files.name_words import name_words, words_of_name
from photosearch.files.places import Position, places_of, position_from_gps, read_position
from photosearch.indexing.words import PLACES_EXTRACTOR, fill_places, unread_places
from photosearch.search.places import place_counts
from tests.conftest import make_photo

LISBON = (38.7223, -9.1393)
SYDNEY = (-33.8688, 151.2093)


def _rational(value: float) -> tuple[IFDRational, IFDRational, IFDRational]:
    degrees = int(value)
    minutes = int((value - degrees) * 60)
    seconds = round(((value - degrees) * 60 - minutes) * 60 * 100)
    return IFDRational(degrees, 1), IFDRational(minutes, 1), IFDRational(seconds, 100)


def gps_photo(path: Path, latitude: float, longitude: float, colour: str = "red") -> Path:
    """A photo whose EXIF says where it was taken (refs N/S/E/W, DMS rationals)."""
    exif = Image.Exif()
    exif[0x8825] = {
        1: "N" if latitude >= 0 else "S",
        2: _rational(abs(latitude)),
        3: "E" if longitude >= 0 else "W",
        4: _rational(abs(longitude)),
    }
    make_photo(path, colour, exif=exif)
    return path


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("IMG_0412.jpg", []),
        ("IMG_20190412_153012.jpg", ["2019", "april"]),
        ("PXL_20230105_101010123.jpg", ["2023", "january"]),
        ("DSC01234.ARW", []),
        ("ParisTrip2019.JPG", ["paris", "trip", "2019"]),
        ("2019-04-12 beach.png", ["2019", "april", "beach"]),
        ("my_dogRex.jpg", ["my", "dog", "rex"]),
        ("HDRPhoto final-v2.jpg", ["hdr", "photo", "final", "2"]),
        ("Route 66.jpg", ["route", "66"]),
        ("Café de Flore.heic", ["café", "de", "flore"]),
    ],
)
def test_file_names_split_into_words(name, words):
    assert words_of_name(name, is_file=True) == words


def test_folder_words_start_at_the_watched_folder_and_include_its_name():
    root = "/home/ana/Pictures"
    assert (
        name_words(f"{root}/2019_08 Paris trip/Day 2/IMG_0412.jpg", root)
        == "pictures 2019 august paris trip day 2"
    )
    assert name_words(f"{root}/x.jpg", root) == "pictures"


def test_gps_parsing_takes_refs_and_refuses_malformed_values():
    dms = (IFDRational(38, 1), IFDRational(43, 1), IFDRational(2028, 100))
    assert position_from_gps({1: "N", 2: dms, 3: "W", 4: dms}) == Position(38.72230, -38.7223)
    assert position_from_gps({1: b"S\x00", 2: dms, 3: "E", 4: (IFDRational(9, 1),)}) == Position(
        -38.7223, 9.0
    )
    broken = (IFDRational(38, 0), IFDRational(43, 1), IFDRational(0, 1))  # zero denominator
    assert position_from_gps({1: "N", 2: broken, 3: "W", 4: dms}) is None
    assert position_from_gps({1: "N", 2: "garbage", 3: "W", 4: dms}) is None
    assert position_from_gps({1: "N", 2: (200, 0, 0), 3: "W", 4: dms}) is None  # out of range
    assert position_from_gps({1: "N", 2: (0, 0, 0), 3: "E", 4: (0, 0, 0)}) is None  # no fix
    assert position_from_gps({}) is None
    assert position_from_gps({1: "N", 2: dms}) is None  # no longitude


def test_positions_are_read_from_jpeg_png_and_heic_headers(tmp_path):
    jpeg = gps_photo(tmp_path / "a.jpg", *LISBON)
    assert read_position(jpeg) == pytest.approx(Position(*LISBON), abs=1e-4)
    image = Image.open(jpeg)
    exif = image.getexif()
    png = tmp_path / "b.png"
    image.save(png, exif=exif)
    assert read_position(png) == read_position(jpeg)
    heic = tmp_path / "c.heic"
    try:
        image.save(heic, exif=exif)
    except (KeyError, ValueError):
        pytest.skip("pillow-heif is not installed")
    assert read_position(heic) == read_position(jpeg)
    assert read_position(make_photo(tmp_path / "plain.jpg")) is None
    (tmp_path / "junk.jpg").write_bytes(b"not a photo")
    assert read_position(tmp_path / "junk.jpg") is None


def test_places_are_named_offline_and_nothing_is_named_at_sea():
    lisbon, sydney, atlantic = places_of(
        [Position(*LISBON), Position(*SYDNEY), Position(30.0, -40.0)]
    )
    assert (lisbon.city, lisbon.country) == ("Lisbon", "Portugal")
    assert lisbon.label == "Lisbon, Portugal"
    assert (sydney.city, sydney.region, sydney.country) == (
        "Sydney",
        "New South Wales",
        "Australia",
    )
    assert atlantic is None


def test_a_scan_indexes_names_and_places_and_fills_an_existing_library(library, tmp_path):
    root = tmp_path / "Pictures"
    gps_photo(root / "2019 Portugal trip" / "IMG_20190412_101010.jpg", *LISBON)
    gps_photo(root / "Holidays" / "SydneyHarbour.jpg", *SYDNEY, colour="blue")
    make_photo(root / "Holidays" / "no_gps.jpg", "green")
    library.add_folder(root)
    library.index()
    with library.catalog.session() as session:
        ids = dict(session.execute(select(Photo.path, Photo.id)).all())
        lisbon = ids[str(root / "2019 Portugal trip" / "IMG_20190412_101010.jpg")]
        plain = ids[str(root / "Holidays" / "no_gps.jpg")]
        assert words_of(lisbon, TermSource.NAME, session) == "pictures 2019 portugal trip april"
        row = session.get(Photo, lisbon)
        assert (row.place_city, row.place_country) == ("Lisbon", "Portugal")
        assert row.latitude == pytest.approx(LISBON[0], abs=1e-4)
        assert {m.photo_id for m in match_terms(session, "lisbon")} == {lisbon}
        assert {m.photo_id for m in match_terms(session, "sydney", sources=[TermSource.PLACE])} == {
            ids[str(root / "Holidays" / "SydneyHarbour.jpg")]
        }
        assert session.get(Photo, plain).latitude is None
        assert [(p.name, p.label, p.photos) for p in place_counts(session)] == [
            ("Australia", "Australia", 1),
            ("Sydney", "Sydney, Australia", 1),
            ("Portugal", "Portugal", 1),
            ("Lisbon", "Lisbon, Portugal", 1),
        ]
    assert unread_places(library.catalog) == 0
    assert fill_places(library.catalog).read == 0  # nothing is read twice

    # a library indexed before names and places existed: words and markers gone
    with library.catalog.session() as session:
        session.execute(PhotoExtraction.__table__.delete())
        session.execute(
            Photo.__table__.update().values(
                latitude=None, longitude=None, place_city=None, place_country=None
            )
        )
        session.execute(text("DELETE FROM photo_terms"))
    assert unread_places(library.catalog) == 3
    library.index()  # the next scan fills them
    with library.catalog.session() as session:
        assert session.get(Photo, lisbon).place_country == "Portugal"
        assert words_of(lisbon, TermSource.NAME, session).startswith("pictures 2019")
        markers = session.scalars(select(PhotoExtraction.extractor)).all()
        assert markers == [PLACES_EXTRACTOR] * 3

    # a move renames the photo's words; a changed file is read again
    moved = root / "Lisbon 2019" / "beach.jpg"
    moved.parent.mkdir()
    shutil.move(root / "2019 Portugal trip" / "IMG_20190412_101010.jpg", moved)
    gps_photo(root / "Holidays" / "no_gps.jpg", *SYDNEY, colour="green")
    library.index()
    with library.catalog.session() as session:
        assert words_of(lisbon, TermSource.NAME, session) == "pictures lisbon 2019 beach"
        assert session.get(Photo, plain).place_city == "Sydney"


def test_stopping_keeps_what_was_read(library, tmp_path):
    for index in range(5):
        gps_photo(tmp_path / "p" / f"{index}.jpg", *LISBON)
    library.add_folder(tmp_path / "p")
    library.scan()
    report = fill_places(library.catalog, should_stop=iter([False, True]).__next__, batch_size=2)
    assert (report.read, report.stopped) == (2, True)
    assert unread_places(library.catalog) == 3
    assert fill_places(library.catalog).read == 3


def _dated(path: Path, when: str, colour: str, position: tuple[float, float] | None = None) -> Path:
    """A photo with an EXIF capture time (and a GPS position when given)."""
    exif = Image.Exif()
    exif[0x8769] = {36867: when}
    if position is not None:
        latitude, longitude = position
        exif[0x8825] = {
            1: "N" if latitude >= 0 else "S",
            2: _rational(abs(latitude)),
            3: "E" if longitude >= 0 else "W",
            4: _rational(abs(longitude)),
        }
    return make_photo(path, colour, exif=exif)


def test_cli_filters_by_place_and_by_a_date_typed_in_the_query(tmp_path, capsys):
    import json

    from photosearch.cli.main import main
    from tests.support.tiny_bundle import build_tiny_bundle

    models = tmp_path / "models"
    build_tiny_bundle(models / "tiny")
    common = ["--library", str(tmp_path / "lib"), "--models-dir", str(models), "--model", "tiny"]
    photos = tmp_path / "photos"
    _dated(photos / "lisbon_summer.jpg", "2019:07:14 12:00:00", "red", LISBON)
    _dated(photos / "sydney_xmas.jpg", "2020:12:25 09:30:00", "red", SYDNEY)
    _dated(photos / "home_summer.jpg", "2019:08:02 18:00:00", "red")

    def run(*argv: str) -> tuple[int, str, str]:
        code = main([*common, *argv])
        out, err = capsys.readouterr()
        return code, out, err

    assert run("folders", "add", str(photos))[0] == 0
    assert run("index")[0] == 0
    code, out, err = run("search", "red summer 2019", "--json")
    assert code == 0
    assert "dates: 2019-06-01 – 2019-08-31 (from 'summer 2019')" in err
    results = json.loads(out)
    assert {Path(r["path"]).name for r in results} == {"lisbon_summer.jpg", "home_summer.jpg"}
    assert results[0]["dates"]["ranges"] == [["2019-06-01", "2019-08-31"]]
    places = {Path(r["path"]).name: r["place"] for r in results}
    assert places == {"lisbon_summer.jpg": "Lisbon, Portugal", "home_summer.jpg": None}

    code, out, err = run("search", "red", "--place", "australia", "--json")
    assert [Path(r["path"]).name for r in json.loads(out)] == ["sydney_xmas.jpg"]
    assert "dates:" not in err
    code, out, _ = run("search", "red at christmas")
    assert [Path(line.split()[-1]).name for line in out.splitlines()] == ["sydney_xmas.jpg"]
    code, out, _ = run("search", "christmas 2020", "--place", "portugal")
    assert code == 0 and "no matches" in out
    code, out, err = run("search", "red 2019", "--no-dates", "-k", "3")
    assert "dates:" not in err and len(out.splitlines()) == 3


def test_a_watcher_batch_names_its_new_and_moved_photos(library, tmp_path):
    from photosearch.files.scanning import stat_photo

    root = tmp_path / "Pictures"
    make_photo(root / "a.jpg")
    library.add_folder(root)
    library.index()
    new = make_photo(root / "Grandma 2018" / "CakeTime.jpg", "blue")
    moved = root / "Beach Day" / "a.jpg"
    moved.parent.mkdir()
    shutil.move(root / "a.jpg", moved)
    library.apply_changes(
        {
            str(new): stat_photo(str(new)),
            str(moved): stat_photo(str(moved)),
            str(root / "a.jpg"): None,
        }
    )
    with library.catalog.session() as session:
        ids = dict(session.execute(select(Photo.path, Photo.id).where(Photo.present())).all())
        assert (
            words_of(ids[str(new)], TermSource.NAME, session) == "pictures grandma 2018 cake time"
        )
        assert words_of(ids[str(moved)], TermSource.NAME, session) == "pictures beach day"
