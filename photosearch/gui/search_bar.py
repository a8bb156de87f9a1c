"""The search field, the "like this photo" chip, the order, and the date and camera filters.

Typing is debounced: each keystroke restarts a 250 ms timer and only its timeout asks for a
search, so "red car" typed quickly costs one query, not seven. Filter changes search at once.
The folder filter is chosen in the folders panel and only carried here.

The date filter is one control: "Any date" (off, and it looks off), this year, last year, the
last 12 months, or a range whose two date editors appear only then.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

from PySide6.QtCore import QDate, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QIcon, QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QDateEdit,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QToolButton,
    QWidget,
)

from photosearch.gui.query_extras import DateChip, PlacesBox
from photosearch.search.query import SearchQuery

DEBOUNCE_MS = 250
SORT_RELEVANCE = "relevance"
SORT_NEWEST = "newest"
SORT_OLDEST = "oldest"
SORT_DATE = SORT_NEWEST  # older name, kept for settings saved by earlier versions
DATES_ANY, DATES_THIS_YEAR, DATES_LAST_YEAR, DATES_LAST_12_MONTHS, DATES_RANGE = (
    "any",
    "this-year",
    "last-year",
    "last-12-months",
    "range",
)
ACTIVE_STYLE = "QComboBox { font-weight: bold; }"


def date_bounds(
    preset: str, today: date, start: date | None = None, end: date | None = None
) -> tuple[datetime | None, datetime | None]:
    """(after inclusive, before exclusive) for a date preset; (None, None) for any date."""

    def at(day: date) -> datetime:
        return datetime(day.year, day.month, day.day)

    if preset == DATES_THIS_YEAR:
        return at(date(today.year, 1, 1)), at(date(today.year + 1, 1, 1))
    if preset == DATES_LAST_YEAR:
        return at(date(today.year - 1, 1, 1)), at(date(today.year, 1, 1))
    if preset == DATES_LAST_12_MONTHS:
        return at(today) - timedelta(days=365), at(today) + timedelta(days=1)
    if preset == DATES_RANGE and start is not None and end is not None:
        low, high = sorted((start, end))
        return at(low), at(high) + timedelta(days=1)
    return None, None


class SearchBar(QWidget):
    searchRequested = Signal()  # the query or a filter changed (debounced for typing)
    sortChanged = Signal(str)
    escapePressed = Signal()
    downPressed = Signal()  # the user wants to move from the field into the results

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._like: Path | None = None
        self._folder: str | None = None
        self.debounce = QTimer(self, singleShot=True, interval=DEBOUNCE_MS)
        self.debounce.timeout.connect(self.searchRequested)

        self.field = _SearchField(self, clearButtonEnabled=True)
        self.set_photo_count(None)
        self.field.textEdited.connect(lambda _text: self.debounce.start())
        self.field.returnPressed.connect(self._search_now_then_leave)
        self.field.escapePressed.connect(self.escapePressed)
        self.field.downPressed.connect(self.downPressed)
        self.like_button = QToolButton(self, toolTip="Showing photos like this one; click to stop")
        self.like_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.like_button.setIconSize(QSize(40, 30))
        self.like_button.clicked.connect(self.clear_like)
        self.like_button.hide()
        self.date_chip = DateChip(self)  # issue 20: a date typed in the query, removable
        self.date_chip.removed.connect(self._filters_changed)
        self.places = PlacesBox(self)  # issue 20: the Places filter
        self.places.currentIndexChanged.connect(lambda _i: self._filters_changed())
        self.sort = QComboBox(self, toolTip="Order of the photos")
        self.sort.addItem("Best match", SORT_RELEVANCE)
        self.sort.addItem("Newest first", SORT_NEWEST)
        self.sort.addItem("Oldest first", SORT_OLDEST)
        self.sort.currentIndexChanged.connect(lambda _i: self.sortChanged.emit(self.sort_key))

        self.dates = QComboBox(
            self,
            toolTip="Only photos taken in this period (photos "
            "without a date of their own count by their file date)",
        )
        for label, key in (
            ("Any date", DATES_ANY),
            ("This year", DATES_THIS_YEAR),
            ("Last year", DATES_LAST_YEAR),
            ("Last 12 months", DATES_LAST_12_MONTHS),
            ("Between dates…", DATES_RANGE),
        ):
            self.dates.addItem(label, key)
        self.after = QDateEdit(self, calendarPopup=True, displayFormat="d MMM yyyy")
        self.range_dash = QLabel("–", self)
        self.before = QDateEdit(self, calendarPopup=True, displayFormat="d MMM yyyy")
        today = QDate.currentDate()
        self.after.setDate(today.addYears(-1))
        self.before.setDate(today)
        self.camera = QLineEdit(self, clearButtonEnabled=True, placeholderText="Camera")
        self.camera.setMaximumWidth(160)
        self.dates.currentIndexChanged.connect(self._dates_preset_changed)
        for edit in (self.after, self.before):
            edit.dateChanged.connect(self._range_changed)
        self.camera.textEdited.connect(lambda _t: self.debounce.start())
        self._show_range(False)

        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.field, 1)
        layout.addWidget(self.like_button)
        layout.addWidget(self.date_chip)
        layout.addWidget(self.dates)
        layout.addWidget(self.after)
        layout.addWidget(self.range_dash)
        layout.addWidget(self.before)
        layout.addWidget(self.camera)
        layout.addWidget(self.places)
        layout.addWidget(self.sort)

    # --- state -----------------------------------------------------------------------------

    @property
    def sort_key(self) -> str:
        return str(self.sort.currentData())

    def set_sort(self, key: str) -> None:
        key = SORT_NEWEST if key == "date" else key
        self.sort.setCurrentIndex(max(self.sort.findData(key), 0))

    @property
    def like(self) -> Path | None:
        return self._like

    @property
    def folder(self) -> str | None:
        return self._folder

    @property
    def date_preset(self) -> str:
        return str(self.dates.currentData())

    def set_date_preset(self, key: str) -> None:
        self.dates.setCurrentIndex(max(self.dates.findData(key), 0))

    def set_photo_count(self, count: int | None) -> None:
        if count:
            noun = "photo" if count == 1 else "photos"
            self.field.setPlaceholderText(
                f'Search {count:,} {noun}: describe one, e.g. "dog on a beach -people"'
            )
        else:
            self.field.setPlaceholderText('Describe a photo, e.g. "dog on a beach -people"')

    def set_like(self, path: Path | None, thumbnail: QPixmap | None = None) -> None:
        """Search by a photo. The typed text is cleared (the chip shows what is searched)."""
        self._like = path
        self.like_button.setVisible(path is not None)
        if path is not None:
            self.debounce.stop()
            self.field.clear()
            self.like_button.setText("Similar photos ✕")
            self.like_button.setIcon(QIcon(thumbnail) if thumbnail is not None else QIcon())
            self.like_button.setToolTip(
                f"Showing photos like {path.name}; click to stop. "
                "Type to narrow it down by words too."
            )
        self.searchRequested.emit()

    def set_like_thumbnail(self, thumbnail: QPixmap) -> None:
        self.like_button.setIcon(QIcon(thumbnail))

    def clear_like(self) -> None:
        self.set_like(None)

    def set_folder_filter(self, path: str | None) -> None:
        if path != self._folder:
            self._folder = path
            self._filters_changed()

    def date_bounds(self, today: date | None = None) -> tuple[datetime | None, datetime | None]:
        return date_bounds(
            self.date_preset,
            today or date.today(),
            self.after.date().toPython(),
            self.before.date().toPython(),
        )

    def has_text(self) -> bool:
        return bool(self.field.text().strip()) or self._like is not None

    def query(self, k: int) -> SearchQuery | None:
        """The query the widgets describe, or None when there is nothing to search by."""
        text = self.field.text().strip()
        if not text and self._like is None:
            self.date_chip.hide()
            return None
        after, before = self.date_bounds()
        camera = self.camera.text().strip() or None
        return self.date_chip.apply(
            SearchQuery(
                text=text,
                like=self._like,
                k=k,
                folder=Path(self._folder) if self._folder else None,
                after=after,
                before=before,
                camera=camera,
                place=self.places.place,
            )
        )

    def focus_field(self) -> None:
        self.field.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.field.selectAll()

    def clear(self) -> None:
        self.debounce.stop()
        self.field.clear()
        self._like = None
        self.like_button.hide()
        self.searchRequested.emit()

    # --- events ----------------------------------------------------------------------------

    def _search_now_then_leave(self) -> None:
        if self.debounce.isActive():
            self.debounce.stop()
            self.searchRequested.emit()
        self.downPressed.emit()

    def _show_range(self, shown: bool) -> None:
        for widget in (self.after, self.range_dash, self.before):
            widget.setVisible(shown)

    def _dates_preset_changed(self) -> None:
        active = self.date_preset != DATES_ANY
        self.dates.setStyleSheet(ACTIVE_STYLE if active else "")
        self._show_range(self.date_preset == DATES_RANGE)
        self._filters_changed()

    def _range_changed(self) -> None:
        if self.date_preset == DATES_RANGE:
            self._filters_changed()

    def _filters_changed(self) -> None:
        self.debounce.stop()
        self.searchRequested.emit()


class _SearchField(QLineEdit):
    """Esc and Down leave the field (a key override, not an event filter: PySide6 6.12
    mis-counts references to the bools an eventFilter override returns)."""

    escapePressed = Signal()
    downPressed = Signal()

    def keyPressEvent(self, event) -> None:  # noqa: ANN001
        if event.key() == Qt.Key.Key_Escape:
            self.escapePressed.emit()
        elif event.key() == Qt.Key.Key_Down:
            self.downPressed.emit()
        else:
            super().keyPressEvent(event)
