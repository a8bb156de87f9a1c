"""The words in a photo's folder and file names, for search by name ("2019 Paris trip").

People name folders and files the way they would search for them, but in forms a word index
cannot match: ``ParisTrip2019``, ``2019-04-12_beach``, ``IMG_20190412_153012``. Here names are
split at separators, camel case and letter/digit boundaries; dates become a year and a month
name; camera file prefixes (IMG, DSC, PXL, ...) and their frame counters are dropped, since
they say nothing about the photo.
"""

from __future__ import annotations

import calendar
import functools
import os
import re
from pathlib import PurePath

# File name prefixes cameras and phones write before a frame counter or a timestamp.
CAMERA_PREFIXES = frozenset(
    {
        "img",
        "dsc",
        "dscn",
        "dscf",
        "dscg",
        "pxl",
        "mvimg",
        "dji",
        "gopr",
        "gp",
        "sam",
        "wp",
        "imag",
        "pict",
        "vid",
        "mov",
        "cimg",
        "sdc",
        "_dsc",
        "photo",
    }
)
MONTHS = tuple(name.lower() for name in calendar.month_name[1:])
_SEPARATORS = re.compile(r"[\W_]+", re.UNICODE)
# a date inside a name: 20190412, 2019-04-12, 2019_04_12, 2019.04.12 (not followed by a digit,
# so a 14-digit timestamp 20190412153012 still gives its date)
_DATE = re.compile(r"(?<!\d)((?:19|20)\d\d)([-_. ]?)(0[1-9]|1[0-2])\2(0[1-9]|[12]\d|3[01])")
_YEAR_MONTH = re.compile(r"(?<!\d)((?:19|20)\d\d)[-_.](0[1-9]|1[0-2])(?![\d])")


# camel case and letter/digit boundaries: "ParisTrip2019" -> Paris Trip 2019, "HDRPhoto" -> HDR
# Photo
@functools.cache
def _pieces():  # noqa: ANN202 - a regex.Pattern; `regex` (50 ms to import) when first needed
    import regex

    return regex.compile(r"\p{Lu}+(?=\p{Lu}\p{Ll})|\p{Lu}?\p{Ll}+|\p{Lu}+|\d+|[^\W\d_]+")


def _is_year(token: str) -> bool:
    return len(token) == 4 and token.isdigit() and 1900 <= int(token) <= 2099


def _date_words(match: re.Match[str]) -> str:
    return f" {match.group(1)} {MONTHS[int(match.group(3)) - 1]} "


def _year_month_words(match: re.Match[str]) -> str:
    return f" {match.group(1)} {MONTHS[int(match.group(2)) - 1]} "


def words_of_name(name: str, *, is_file: bool = False) -> list[str]:
    """The words of one folder or file name (a file's extension is not a word)."""
    if is_file:
        name = os.path.splitext(name)[0]
    name = _YEAR_MONTH.sub(_year_month_words, _DATE.sub(_date_words, name))
    words: list[str] = []
    chunks = [chunk for chunk in _SEPARATORS.split(name) if chunk]
    counters_follow = False
    for index, chunk in enumerate(chunks):
        pieces = _pieces().findall(chunk)
        for piece in pieces:
            word = piece.lower()
            if is_file and index == 0 and word in CAMERA_PREFIXES and piece is pieces[0]:
                counters_follow = True
                continue
            if word.isdigit():
                # frame counters and times (0412, 153012) say nothing; a year and a short number
                # ("Route 66", "Party 2") may
                if (counters_follow and not _is_year(word)) or (
                    len(word) > 3 and not _is_year(word)
                ):
                    continue
            elif len(word) == 1:
                continue
            words.append(word)
    return words


def folder_words(folder: str, root: str) -> list[str]:
    """The words of the watched folder ``root``'s own name and of ``folder``'s path below it."""
    root_path = PurePath(root)
    try:
        below = PurePath(folder).relative_to(root_path).parts
    except ValueError:
        below = ()
    words: list[str] = []
    for name in (root_path.name, *below):
        words += words_of_name(name)
    return words


def name_words(path: str, root: str, folder_cache: dict[str, list[str]] | None = None) -> str:
    """The words of ``path``'s folders below the watched folder ``root``, of ``root``'s own name
    and of the file name, each once, in path order, space-separated. ``folder_cache`` keeps the
    words of folders already seen (most photos share their folder with many others)."""
    folder, _, name = path.rpartition(os.sep)
    cache = folder_cache if folder_cache is not None else {}
    words = cache.get(folder)
    if words is None:
        words = cache[folder] = folder_words(folder, root)
    return " ".join(dict.fromkeys(words + words_of_name(name, is_file=True)))
