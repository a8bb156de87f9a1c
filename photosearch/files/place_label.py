"""How a place is written for people: one short function, apart from photosearch.files.places
(which reads GPS positions with Pillow) so that showing search results imports no image code."""

from __future__ import annotations


def place_label(city: str | None, region: str | None, country: str | None) -> str | None:
    """'Sydney, New South Wales, Australia': the names a person reads, most specific first,
    without repeats ('Lisbon, Portugal', not 'Lisbon, Lisbon, Portugal'); None without any."""
    return ", ".join(dict.fromkeys(n for n in (city, region, country) if n)) or None
