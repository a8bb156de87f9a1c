"""Dates typed in a search ("dog in the snow 2019", "last christmas", "summer 2021").

A date phrase is found, removed from the text the model sees (an image model has no idea what
"2019" looks like) and turned into a ``DateFilter`` on the date photos are sorted and shown by
(capture time, else file time; see photosearch.search.timeline). One phrase per query, the first.

What counts as a date, and what does not:
- a year 1900..next year ("2019", "in 2019"), a decade ("1990s"); a bare year is a date even in
  "1984 poster" (quote it, "\\"1984\\" poster", or remove the chip to search the words);
- a holiday that names a day ("new year's eve", "christmas eve", "valentine's day"): every one;
- a month, season or holiday with a year ("march 2019", "summer of 2021", "christmas 2019"),
  or with "last"/"this" ("last christmas", "this summer"); a month or holiday also after
  "in/during/on/at/over" ("in march": every March). Alone it is a word, not a date: "may
  flowers", "winter landscape", "christmas tree", "fall colours" describe what a photo shows,
  and so does a season after a preposition ("kids in the winter", "two people in winter
  clothing": measured on Flickr captions, bench_hybrid's plain visual queries, where "in the
  fall" filtered out the very photo it describes);
- relative days: today, yesterday, last night, this/last/past week, weekend, month, year,
  "3 weeks ago", "two days ago", "last friday";
- an explicit day: "2019-04-12", "12 april 2019", "april 12th, 2019".
Quoted text and excluded terms ("-summer") are never dates. Numbers that are not years ("4
dogs", "two kids") are left alone.

Seasons are the northern hemisphere's meteorological ones (spring = March to May, summer =
June to August, autumn/fall = September to November, winter = December to February; "winter
2019" is December 2019 to February 2020). Holidays: Christmas (24-26 December; eve and day on
their own), New Year's Eve / New Year (31 December - 1 January), New Year's Day, Valentine's
Day, Halloween, Easter (Good Friday to Easter Monday, Western date from dateutil) and
Thanksgiving (US: fourth Thursday of November to the Sunday). "last X" is the latest one that
is over; "this X" the one of the current year (or under way).

``dateparser`` reads the explicit days and the "N units ago"/"last friday" phrases (many written
forms, number words, ordinals), relative to an injected ``today``. It is not used to find
phrases: its ``search_dates`` takes "may" in "may flowers" for May, "on a sunday" for
29 January and swallows "at the" in "today at the park", and it returns instants, not spans.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from dateutil.easter import easter
from dateutil.relativedelta import relativedelta

MONTHS = [m.lower() for m in calendar.month_name[1:]]
_MONTH_ABBR = {m.lower(): i for i, m in enumerate(calendar.month_abbr) if m} | {"sept": 9}
SEASONS = {"spring": 3, "summer": 6, "autumn": 9, "fall": 9, "winter": 12}  # first month
_FIXED_HOLIDAYS: dict[str, tuple[tuple[int, int], int]] = {
    # name: ((month, day) of the first day, days long)
    "christmas eve": ((12, 24), 1),
    "christmas day": ((12, 25), 1),
    "christmas": ((12, 24), 3),
    "new year's eve": ((12, 31), 2),
    "new year": ((12, 31), 2),
    "new year's day": ((1, 1), 1),
    "valentine's day": ((2, 14), 1),
    "halloween": ((10, 31), 1),
}
_HOLIDAY_NAMES = {
    "christmas eve": "christmas eve",
    "xmas eve": "christmas eve",
    "christmas day": "christmas day",
    "xmas day": "christmas day",
    "christmas": "christmas",
    "xmas": "christmas",
    "new year's eve": "new year's eve",
    "new years eve": "new year's eve",
    "new year eve": "new year's eve",
    "nye": "new year's eve",
    "new year's day": "new year's day",
    "new years day": "new year's day",
    "new year's": "new year",
    "new years": "new year",
    "new year": "new year",
    "valentine's day": "valentine's day",
    "valentines day": "valentine's day",
    "valentine's": "valentine's day",
    "valentines": "valentine's day",
    "halloween": "halloween",
    "easter": "easter",
    "thanksgiving": "thanksgiving",
}
# holiday names that name a day, so are dates even alone; "christmas", "easter", "halloween"
# alone describe what a photo shows (a tree, eggs, costumes) and need a year, last/this or "at"
_DAY_NAMES = frozenset(
    {"christmas eve", "christmas day", "new year's eve", "new year's day", "valentine's day"}
)
FIRST_YEAR = 1900  # years before this are numbers, not dates
MOVABLE_SINCE = 1950  # "every Easter" lists the Easters from this year on
_WORD_NUMBERS = {
    "a": 1,
    "an": 1,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
}


@dataclass(frozen=True)
class DateRange:
    """Whole days, both ends included."""

    first: date
    last: date


@dataclass(frozen=True)
class DateFilter:
    """The dates a query asks for: absolute ranges and/or month-day spans of every year."""

    phrase: str  # the words as typed, e.g. "summer 2019"
    label: str  # what it means, e.g. "2019-06-01 – 2019-08-31" or "every March"
    ranges: tuple[DateRange, ...] = ()
    every_year: tuple[tuple[str, str], ...] = ()  # ("06-01", "08-31"), may wrap the new year

    def contains(self, when: datetime | date) -> bool:
        day = when.date() if isinstance(when, datetime) else when
        if any(r.first <= day <= r.last for r in self.ranges):
            return True
        md = day.strftime("%m-%d")
        return any((a <= md <= b) if a <= b else (md >= a or md <= b) for a, b in self.every_year)

    def condition(self, when: Any) -> Any:
        """An SQL condition on the datetime expression ``when``."""
        from sqlalchemy import and_, false, func, or_  # a filter's cost, not every search's

        parts = [
            and_(
                when >= datetime.combine(r.first, time()),
                when < datetime.combine(r.last + timedelta(days=1), time()),
            )
            for r in self.ranges
        ]
        md = func.strftime("%m-%d", when)
        for a, b in self.every_year:
            parts.append(md.between(a, b) if a <= b else or_(md >= a, md <= b))
        return or_(*parts) if parts else false()

    def years(self) -> list[int]:
        """The calendar years the absolute ranges touch (none for every-year filters, or when
        they span more than a decade)."""
        if not self.ranges:
            return []
        years = sorted({y for r in self.ranges for y in range(r.first.year, r.last.year + 1)})
        return years if len(years) <= 10 else []

    def describe(self) -> str:
        """'2019-06-01 – 2019-08-31 (from 'summer 2019')', as the CLI echoes it."""
        return f"{self.label} (from '{self.phrase}')"


@dataclass(frozen=True)
class DatedText:
    """A query's text without its date phrase, and the filter the phrase stands for."""

    text: str
    dates: DateFilter | None


def _title(name: str) -> str:
    return " ".join(word[:1].upper() + word[1:] for word in name.split())


def _span_label(first: date, last: date) -> str:
    return first.isoformat() if first == last else f"{first.isoformat()} – {last.isoformat()}"


def _absolute(phrase: str, first: date, last: date) -> DateFilter:
    return DateFilter(phrase, _span_label(first, last), ranges=(DateRange(first, last),))


def _month_end(year: int, month: int) -> date:
    return date(year, month, calendar.monthrange(year, month)[1])


# --- occurrences of a named period in a given year --------------------------------------------


def _season(name: str, year: int) -> tuple[date, date]:
    start = SEASONS[name]
    end_month, end_year = (start + 2 - 1) % 12 + 1, year + (start + 2 > 12)
    return date(year, start, 1), _month_end(end_year, end_month)


def _holiday(name: str, year: int) -> tuple[date, date]:
    if name == "easter":
        sunday = easter(year)
        return sunday - timedelta(days=2), sunday + timedelta(days=1)
    if name == "thanksgiving":
        first = date(year, 11, 1)
        thursday = first + timedelta(days=(3 - first.weekday()) % 7 + 21)
        return thursday, thursday + timedelta(days=3)
    (month, day), days = _FIXED_HOLIDAYS[name]
    if name == "new year":
        year -= 1  # New Year 2020 is the night of 31 December 2019
    first = date(year, month, day)
    return first, first + timedelta(days=days - 1)


def _month(name: str, year: int) -> tuple[date, date]:
    month = MONTHS.index(name) + 1 if name in MONTHS else _MONTH_ABBR[name]
    return date(year, month, 1), _month_end(year, month)


def _last(occurrence, name: str, today: date) -> tuple[date, date]:  # noqa: ANN001
    """The latest occurrence that is over."""
    for year in range(today.year + 1, today.year - 3, -1):
        first, last = occurrence(name, year)
        if last < today:
            return first, last
    raise AssertionError("every named period recurs within a year")


def _this(occurrence, name: str, today: date) -> tuple[date, date]:  # noqa: ANN001
    """The occurrence under way, else the current year's."""
    for year in (today.year - 1, today.year):
        first, last = occurrence(name, year)
        if first <= today <= last:
            return first, last
    return occurrence(name, today.year)


def _every_year(phrase: str, occurrence, name: str, title: str, today: date) -> DateFilter:  # noqa: ANN001
    if name in ("easter", "thanksgiving"):  # movable: one range per year
        ranges = tuple(
            DateRange(*occurrence(name, y)) for y in range(MOVABLE_SINCE, today.year + 1)
        )
        return DateFilter(phrase, f"every {title}", ranges=ranges)
    first, last = occurrence(name, 2001)  # a year without 29 February
    if name == "winter" or (first.month, last.month) == (2, 2):
        last = date(2004, 2, 29)  # winters and Februaries include a leap day
    return DateFilter(
        phrase, f"every {title}", every_year=((first.strftime("%m-%d"), last.strftime("%m-%d")),)
    )


# --- phrase patterns ---------------------------------------------------------------------------

_YEAR = r"(?P<year>(?:19|20)\d\d)"
_PREP = r"(?:(?P<prep>in|during|on|at|over|from|of)\s+)?(?:the\s+)?"
_QUAL = r"(?:(?P<qual>last|this|past)\s+)?"
_B = r"(?<![\w'-])"  # a phrase starts at a word start (not after '-', which excludes a term)
_E = r"(?![\w'])"
_MONTH_WORDS = "|".join(MONTHS)
_ABBR = "|".join(sorted(_MONTH_ABBR, key=len, reverse=True))
_HOLIDAY_WORDS = "|".join(
    re.escape(n).replace("'", "'?") for n in sorted(_HOLIDAY_NAMES, key=len, reverse=True)
)
_DAY = (
    rf"(?P<day>{_YEAR}-\d\d-\d\d|\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?"
    rf"(?:{_MONTH_WORDS}|{_ABBR})\.?,?\s+(?:19|20)\d\d|(?:{_MONTH_WORDS}|{_ABBR})\.?\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+"
    r"(?:19|20)\d\d)"
).replace("(?P<year>", "(?:")
_NUMBER = "|".join(["\\d{1,3}", *_WORD_NUMBERS])
PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("day", re.compile(rf"{_B}(?:on\s+)?{_DAY}{_E}")),
    (
        "holiday",
        re.compile(rf"{_B}{_PREP}{_QUAL}(?P<name>{_HOLIDAY_WORDS})(?:\s+(?:of\s+)?{_YEAR})?{_E}"),
    ),
    (
        "season",
        re.compile(
            rf"{_B}{_PREP}{_QUAL}(?P<name>spring|summer|autumn|fall|winter)"
            rf"(?:\s+(?:of\s+)?{_YEAR})?{_E}"
        ),
    ),
    (
        "month",
        re.compile(
            rf"{_B}{_PREP}{_QUAL}(?:(?P<name>{_MONTH_WORDS})|(?P<abbr>{_ABBR})\.?(?=\s+(?:19|20)\d\d))"
            rf"(?:\s+(?:of\s+)?{_YEAR})?{_E}"
        ),
    ),
    ("ago", re.compile(rf"{_B}(?P<n>{_NUMBER})\s+(?P<unit>day|week|month|year)s?\s+ago{_E}")),
    (
        "weekday",
        re.compile(
            rf"{_B}(?:on\s+)?last\s+(?P<weekday>monday|tuesday|wednesday|thursday|friday|saturday|"
            rf"sunday){_E}"
        ),
    ),
    (
        "relative",
        re.compile(
            rf"{_B}(?:(?:from|on|in|during|over)\s+)?"
            rf"(?:(?P<word>today|yesterday|tonight|last night|"
            rf"(?:the\s+)?day before yesterday)|(?P<qual>last|this|past)\s+"
            rf"(?P<unit>week|weekend|month|year)){_E}"
        ),
    ),
    ("decade", re.compile(rf"{_B}{_PREP}(?P<decade>(?:19|20)\d0)'?s{_E}")),
    ("year", re.compile(rf"{_B}{_PREP}(?:year\s+)?{_YEAR}{_E}")),
]


def _protected(text: str) -> str:
    """``text`` with quoted parts and excluded terms blanked, so no phrase is found in them."""

    def blank(match: re.Match[str]) -> str:
        return "\0" * len(match.group(0))

    text = re.sub(r'"[^"]*"?', blank, text)
    return re.sub(r"(?:^|(?<=\s))-\S+", blank, text)


def _read_day(phrase: str, today: date, **settings: object) -> date | None:
    import dateparser  # ~0.1 s to import, and its English data on first use: only when needed

    parsed = dateparser.parse(
        phrase,
        languages=["en"],
        settings={
            "RELATIVE_BASE": datetime.combine(today, time()),
            "PREFER_DATES_FROM": "past",
            "STRICT_PARSING": False,
            **settings,
        },
    )
    return parsed.date() if parsed else None


def _interpret(kind: str, match: re.Match[str], phrase: str, today: date) -> DateFilter | None:
    groups = match.groupdict()
    year = int(groups["year"]) if groups.get("year") else None
    if year is not None and not FIRST_YEAR <= year <= today.year + 1:
        return None
    qual, prep = groups.get("qual"), groups.get("prep")
    if kind == "day":
        day = _read_day(groups["day"], today)
        return _absolute(phrase, day, day) if day else None
    if kind in ("holiday", "season", "month"):
        if kind == "holiday":
            name, occurrence = (
                _HOLIDAY_NAMES[
                    groups["name"].replace("'", "")
                    if groups["name"] not in _HOLIDAY_NAMES
                    else groups["name"]
                ],
                _holiday,
            )
        elif kind == "season":
            name, occurrence = groups["name"], _season
        else:
            name, occurrence = groups["name"] or groups["abbr"], _month
        if year is not None:
            if qual:
                return None  # "last march 2019": let the year stand alone
            return _absolute(phrase, *occurrence(name, year))
        if qual == "last":
            return _absolute(phrase, *_last(occurrence, name, today))
        if qual == "this":
            return _absolute(phrase, *_this(occurrence, name, today))
        if prep and prep != "of" and not qual and kind != "season":
            return _every_year(phrase, occurrence, name, _title(name), today)
        if kind == "holiday" and name in _DAY_NAMES:  # "new year's eve" names a day
            return _every_year(phrase, occurrence, name, _title(name), today)
        return None  # a bare word: "may flowers", "winter landscape", "christmas tree"
    if kind == "ago":
        count = groups["n"]
        number = int(count) if count.isdigit() else _WORD_NUMBERS[count]
        unit = groups["unit"]
        day = today - relativedelta(**{f"{unit}s": number})
        return _unit_around(phrase, unit, day)
    if kind == "weekday":
        day = _read_day(f"last {groups['weekday']}", today)
        return _absolute(phrase, day, day) if day else None
    if kind == "relative":
        return _relative(phrase, groups, today)
    if kind == "decade":
        start = int(groups["decade"])
        if not FIRST_YEAR <= start <= today.year:
            return None
        return _absolute(phrase, date(start, 1, 1), date(start + 9, 12, 31))
    if kind == "year":
        return _absolute(phrase, date(year, 1, 1), date(year, 12, 31))  # type: ignore[arg-type]
    return None


def _unit_around(phrase: str, unit: str, day: date) -> DateFilter:
    """The calendar day, week (Monday to Sunday), month or year containing ``day``."""
    if unit == "day":
        return _absolute(phrase, day, day)
    if unit == "week":
        monday = day - timedelta(days=day.weekday())
        return _absolute(phrase, monday, monday + timedelta(days=6))
    if unit == "month":
        return _absolute(phrase, day.replace(day=1), _month_end(day.year, day.month))
    return _absolute(phrase, date(day.year, 1, 1), date(day.year, 12, 31))


def _relative(phrase: str, groups: dict[str, str | None], today: date) -> DateFilter:
    word = (groups.get("word") or "").replace("the ", "")
    yesterday = today - timedelta(days=1)
    if word in ("today", "tonight"):
        return _absolute(phrase, today, today)
    if word == "yesterday":
        return _absolute(phrase, yesterday, yesterday)
    if word == "last night":
        return _absolute(phrase, yesterday, today)
    if word == "day before yesterday":
        return _absolute(phrase, today - timedelta(days=2), today - timedelta(days=2))
    qual, unit = groups["qual"], groups["unit"]
    if qual == "past":  # the last 7 days / month / year up to today
        back = {
            "week": relativedelta(days=6),
            "weekend": relativedelta(days=6),
            "month": relativedelta(months=1),
            "year": relativedelta(years=1),
        }[unit or "week"]
        return _absolute(phrase, today - back, today)
    if unit == "weekend":
        saturday = today - timedelta(days=(today.weekday() - 5) % 7)
        if qual == "last" and saturday >= today - timedelta(days=1):
            saturday -= timedelta(days=7)  # on a weekend, "last weekend" is the one before
        return _absolute(phrase, saturday, saturday + timedelta(days=1))
    step = {
        "week": relativedelta(weeks=1),
        "month": relativedelta(months=1),
        "year": relativedelta(years=1),
    }[unit or "week"]
    filtered = _unit_around(phrase, unit or "week", today - step if qual == "last" else today)
    if qual == "this":  # up to today, not into the future
        first = filtered.ranges[0].first
        return _absolute(phrase, first, today)
    return filtered


def find_dates(text: str, today: date | None = None) -> DatedText:
    """Find the first date phrase in ``text``; return the text without it and its filter
    (``dates`` None and the text unchanged when there is none)."""
    today = today or date.today()
    lowered = "".join(c.lower() if len(c.lower()) == 1 else c for c in text)  # same offsets
    lowered = lowered.replace("\u2019", "'")  # a phone keyboard's apostrophe
    searchable = _protected(lowered)
    found: list[tuple[int, int, DateFilter]] = []
    for kind, pattern in PATTERNS:
        for match in pattern.finditer(searchable):
            phrase = text[match.start() : match.end()].strip()
            dates = _interpret(kind, match, phrase, today)
            if dates is not None:
                found.append((match.start(), -(match.end() - match.start()), dates))
                break
    if not found:
        return DatedText(text, None)
    start, negative_length, dates = min(found, key=lambda f: (f[0], f[1]))
    rest = text[:start] + " " + text[start - negative_length :]
    rest = re.sub(r"\s+([,.;:!?])", r"\1", " ".join(rest.split()))
    rest = re.sub(r"([,;:])(?:\s*[,;:])+", r"\1", rest).strip(" ,;:")
    return DatedText(rest, dates)


def dates_json(dates: DateFilter) -> dict[str, object]:
    """The filter as plain data for ``--json``."""
    return {
        "phrase": dates.phrase,
        "label": dates.label,
        "ranges": [[r.first.isoformat(), r.last.isoformat()] for r in dates.ranges],
        "every_year": [list(span) for span in dates.every_year],
    }


def photo_date_condition(dates: DateFilter) -> Any:
    """SQL condition on ``photos``: taken in ``dates``. A photo with a capture time is judged by
    it; one without (a scan, a copy from a messenger) by a year in its folder or file name when
    it has one there ("2019 Paris trip/IMG_0412.jpg" is from 2019 whatever its file time says),
    else by its file time."""
    from sqlalchemy import Integer, and_, func, or_, text

    from photosearch.catalog import Photo
    from photosearch.catalog.text_index import ROWS_PER_PHOTO, TermSource

    captured = dates.condition(func.coalesce(Photo.taken_at, Photo.file_time))
    years = dates.years()
    if not years:
        return captured
    name_rows = (
        f"SELECT rowid / {ROWS_PER_PHOTO} AS id FROM photo_terms WHERE photo_terms "
        f"MATCH :{{}} AND rowid % {ROWS_PER_PHOTO} = {int(TermSource.NAME)}"
    )
    named_in = (
        text(name_rows.format("years_in"))
        .bindparams(years_in=" OR ".join(f'"{y}"' for y in years))
        .columns(id=Integer)
    )
    any_year = " OR ".join(f'"{y}"' for y in range(FIRST_YEAR, date.today().year + 2))
    named_any = text(name_rows.format("any_year")).bindparams(any_year=any_year).columns(id=Integer)
    undated = Photo.taken_at.is_(None)
    return or_(
        and_(Photo.taken_at.is_not(None), captured),
        and_(undated, Photo.id.in_(named_in)),
        and_(undated, Photo.id.not_in(named_any), captured),
    )
