"""Search bar parts for issue 20: the chip of a date typed in the query, and the Places filter.

The date chip shows what a date phrase in the search text was understood as ("summer 2019 ✕",
its tooltip the days); clicking it searches the whole text as words instead, until the text is
edited. The Places box lists the countries and towns the library's photos were taken in, with
how many photos each, read when it opens (so newly geocoded photos appear).
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QToolButton, QWidget

from photosearch.search.places import PlaceCount
from photosearch.search.query import SearchQuery, with_dates

ACTIVE_STYLE = "QComboBox { font-weight: bold; }"


class DateChip(QToolButton):
    """'summer 2019 ✕': the date filter taken from the query text; click to drop it."""

    removed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._off_for: str | None = None  # the text whose date the user removed
        self._text: str | None = None  # the text the chip shows the date of
        self.clicked.connect(self._remove)
        self.hide()

    def apply(self, query: SearchQuery) -> SearchQuery:
        """``query`` with its date phrase as a filter (unless removed for this text); shows
        or hides the chip to match."""
        if query.text == self._off_for:
            self.hide()
            return query
        self._off_for = None
        dated = with_dates(query)
        if dated.dates is None:
            self.hide()
            return query
        self._text = query.text
        self.setText(f"{dated.dates.phrase} ✕")
        self.setToolTip(
            f"Only photos from {dated.dates.label}, read from your search; click "
            "to search these words instead"
        )
        self.show()
        return dated

    def _remove(self) -> None:
        self._off_for = self._text
        self.hide()
        self.removed.emit()


class PlacesBox(QComboBox):
    """'Any place', then the library's countries and towns with their photo counts."""

    ANY = "Any place"

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, toolTip="Only photos taken in this place (from their GPS)")
        self.source: Callable[[], list[PlaceCount]] | None = None
        self.addItem(self.ANY, None)
        self.currentIndexChanged.connect(
            lambda _i: self.setStyleSheet(ACTIVE_STYLE if self.place else "")
        )

    @property
    def place(self) -> str | None:
        data = self.currentData()
        return str(data) if data else None

    def refill(self) -> None:
        """Read the places again, keeping the chosen one."""
        chosen = self.place
        places = self.source() if self.source is not None else []
        self.blockSignals(True)
        try:
            self.clear()
            self.addItem(self.ANY, None)
            for entry in places:
                indent = "" if entry.name == entry.label else "    "
                self.addItem(f"{indent}{entry.label} ({entry.photos:,})", entry.name)
            if not places:
                self.addItem("No places yet: photos with GPS positions appear here", None)
                self.model().item(1).setEnabled(False)  # type: ignore[attr-defined]
            index = self.findData(chosen) if chosen else 0
            if chosen and index < 0:  # still filtering by it, though no photo has it now
                self.addItem(chosen, chosen)
                index = self.count() - 1
            self.setCurrentIndex(index)
        finally:
            self.blockSignals(False)

    def showPopup(self) -> None:
        self.refill()
        super().showPopup()
