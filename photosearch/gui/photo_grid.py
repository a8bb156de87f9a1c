"""The photo grid: justified rows of thumbnails with headers, painted only where visible.

A QAbstractScrollArea rather than a QListView: justified rows (each photo at its own aspect
ratio, a fixed gutter) and full-width headers do not fit QListView's uniform cells. The layout
is computed once per result set and width (grid_layout.justify); painting, hit tests and
keyboard moves look rows up by binary search, and thumbnails are asked for only for the
photos on screen, so 100,000 photos scroll like 100.

Selection works as in file managers: click, Ctrl+click toggles, Shift+click extends,
Ctrl+A, a rubber band from empty space; right-click selects what it acts on; dragging a
selection out gives other applications the files (file URLs).
"""

from __future__ import annotations

import gc
from collections.abc import Sequence

import numpy as np
from PySide6.QtCore import (
    QEvent,
    QMimeData,
    QPoint,
    QRect,
    QRectF,
    QSize,
    Qt,
    QTimer,
    QUrl,
    Signal,
)
from PySide6.QtGui import (
    QColor,
    QDrag,
    QFont,
    QKeySequence,
    QPainter,
    QPalette,
    QPen,
    QPixmap,
)
from PySide6.QtWidgets import QAbstractScrollArea, QApplication, QRubberBand, QToolTip, QWidget

from photosearch.files.photo_files import file_url
from photosearch.gui.grid_layout import GUTTER, GridLayout, Header, justify
from photosearch.gui.thumbnails import ThumbnailLoader
from photosearch.search.query import SearchResult
from photosearch.search.timeline import DatedPhotos

DEFAULT_ROW_HEIGHT = 180
MIN_ROW_HEIGHT, MAX_ROW_HEIGHT = 90, 360
DEFAULT_ASPECT = 4 / 3
LARGE = 20_000  # photos from which a new result set triggers a garbage collection


def aspect_of(result: SearchResult) -> float:
    if result.width and result.height:
        return result.width / result.height
    return DEFAULT_ASPECT


def aspects_of(results: Sequence[SearchResult]) -> Sequence[float]:
    """Every result's aspect; the timeline's from its size columns, making no SearchResult
    (nor reading any path) for photos off screen."""
    if not isinstance(results, DatedPhotos):
        return [aspect_of(r) for r in results]
    widths, heights = results.sizes[:, 0], results.sizes[:, 1]
    known = (widths > 0) & (heights > 0)
    return np.where(known, widths / np.where(known, heights, 1), DEFAULT_ASPECT).tolist()


class PhotoGrid(QAbstractScrollArea):
    openRequested = Signal(int)  # Enter or double-click on a photo
    currentChanged = Signal(int)  # the keyboard/mouse focus photo (-1: none)
    selectionChanged = Signal()
    contextMenuWanted = Signal(QPoint)  # global position; the selection is what it acts on
    searchFocusRequested = Signal()  # "/" typed in the grid
    escapePressed = Signal()
    rowHeightChanged = Signal(int)
    layoutChanged = Signal()

    def __init__(self, thumbnails: ThumbnailLoader, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.thumbnails = thumbnails
        self.results: Sequence[SearchResult] = []
        self.headers: list[Header] = []
        self.selected: set[int] = set()
        self.current = -1
        self.anchor = -1
        self.hovered = -1
        self.row_height = DEFAULT_ROW_HEIGHT
        self.layout_: GridLayout = justify([], [], 100, self.row_height)
        self._rows: dict[str, int] = {}
        self._press: QPoint | None = None
        self._press_item: int | None = None
        self._band_origin: QPoint | None = None
        self._band_base: set[int] = set()
        self.rubber_band = QRubberBand(QRubberBand.Shape.Rectangle, self.viewport())
        self.viewport().setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        # always shown: a scroll bar appearing would narrow the viewport and re-lay out
        # every row (0.1-0.3 s for 100k photos) just as the user starts to scroll
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOn)
        self.verticalScrollBar().setSingleStep(40)
        self.verticalScrollBar().valueChanged.connect(lambda _v: self.viewport().update())
        self._relayout_timer = QTimer(self, singleShot=True, interval=60)
        self._relayout_timer.timeout.connect(self.relayout)
        thumbnails.ready.connect(self._thumbnail_ready)

    # --- content ---------------------------------------------------------------------------

    def set_content(
        self,
        results: Sequence[SearchResult],
        headers: Sequence[Header] = (),
        keep_position: bool = False,
    ) -> None:
        """Show ``results`` under ``headers``; the selection is kept for photos still shown."""
        chosen = {self.results[i].path for i in self.selected if i < len(self.results)}
        current = self.results[self.current].path if 0 <= self.current < len(self.results) else None
        self.thumbnails.forget_pending()
        # the timeline's compact columns are kept as they are (a list of them: 67 MB at 100k)
        self.results = results if isinstance(results, DatedPhotos) else list(results)
        self.headers = list(headers)
        self._rows = (
            {}
            if isinstance(self.results, DatedPhotos)
            else {r.path: i for i, r in enumerate(self.results)}
        )
        rows = (self._row_of(p) for p in chosen)
        self.selected = {row for row in rows if row is not None}
        found = self._row_of(current) if current else None
        self.current = -1 if found is None else found
        self.anchor = self.current
        self.hovered = -1
        self.relayout()
        if not keep_position:
            self.verticalScrollBar().setValue(0)
        if len(self.results) > LARGE:
            # Building 100k records makes a full garbage collection due; run it now, as part
            # of showing the new photos, rather than as a 150 ms stall in the first scroll.
            gc.collect()
        self.selectionChanged.emit()

    def count(self) -> int:
        return len(self.results)

    def relayout(self) -> None:
        width = self.viewport().width()
        self.layout_ = justify(aspects_of(self.results), self.headers, width, self.row_height)
        bar = self.verticalScrollBar()
        bar.setRange(0, max(0, self.layout_.height - self.viewport().height()))
        bar.setPageStep(self.viewport().height())
        self.viewport().update()
        self.layoutChanged.emit()

    def set_row_height(self, height: int) -> None:
        """The thumbnail size (slider, Ctrl+wheel); keeps the current photo in view."""
        height = max(MIN_ROW_HEIGHT, min(MAX_ROW_HEIGHT, int(height)))
        if height == self.row_height:
            return
        anchor = self.current if self.current >= 0 else self._first_visible()
        self.row_height = height
        self.relayout()
        if anchor is not None and anchor >= 0:
            self.scroll_to(anchor)
        self.rowHeightChanged.emit(height)

    # --- selection -------------------------------------------------------------------------

    def selected_rows(self) -> list[int]:
        return sorted(self.selected)

    def selected_results(self) -> list[SearchResult]:
        return [self.results[i] for i in sorted(self.selected)]

    def set_current(self, item: int, select: str = "only") -> None:
        """Move the focus photo to ``item``; ``select``: only | extend | toggle | keep."""
        if not 0 <= item < len(self.results):
            return
        if select == "only":
            self.selected = {item}
            self.anchor = item
        elif select == "extend":
            if self.anchor < 0:
                self.anchor = item
            low, high = sorted((self.anchor, item))
            self.selected = set(range(low, high + 1))
        elif select == "toggle":
            self.selected ^= {item}
            self.anchor = item
        self.current = item
        self.scroll_to(item)
        self.viewport().update()
        self.selectionChanged.emit()
        self.currentChanged.emit(item)

    def select_all(self) -> None:
        self.selected = set(range(len(self.results)))
        self.viewport().update()
        self.selectionChanged.emit()

    def clear_selection(self) -> None:
        self.selected = set()
        self.viewport().update()
        self.selectionChanged.emit()

    def scroll_to(self, item: int) -> None:
        if not 0 <= item < len(self.results):
            return
        _, y, _, h = self.layout_.item_rect(item)
        bar = self.verticalScrollBar()
        top, height = bar.value(), self.viewport().height()
        row = self.layout_.item_row[item]
        if row > 0 and self.layout_.row_header[row - 1] is not None:
            y = self.layout_.row_y[row - 1]  # show a photo's header with it
        if y < top:
            bar.setValue(y)
        elif y + h > top + height:
            bar.setValue(y + h - height + GUTTER)

    def item_rect(self, item: int) -> QRect:
        """Where ``item`` is painted, in viewport coordinates."""
        x, y, w, h = self.layout_.item_rect(item)
        return QRect(x, y - self.verticalScrollBar().value(), w, h)

    def _first_visible(self) -> int | None:
        top = self.verticalScrollBar().value()
        for row in self.layout_.rows_between(top, top + self.viewport().height()):
            if self.layout_.row_header[row] is None and self.layout_.row_count[row]:
                return self.layout_.row_first[row]
        return None

    # --- painting --------------------------------------------------------------------------

    def paintEvent(self, event) -> None:  # noqa: ANN001
        painter = QPainter(self.viewport())
        palette = self.palette()
        painter.fillRect(self.viewport().rect(), palette.color(QPalette.ColorRole.Base))
        top = self.verticalScrollBar().value()
        bottom = top + self.viewport().height()
        layout = self.layout_
        visible: list[str] = []
        highlight = palette.color(QPalette.ColorRole.Highlight)
        for row in layout.rows_between(top, bottom):
            y = layout.row_y[row] - top
            header = layout.row_header[row]
            if header is not None:
                self._paint_header(
                    painter, header, QRect(0, y, layout.width, layout.row_h[row]), palette
                )
                continue
            for item in range(layout.row_first[row], layout.row_first[row] + layout.row_count[row]):
                rect = QRect(layout.item_x[item], y, layout.item_w[item], layout.row_h[row])
                path = self.results[item].path
                visible.append(path)
                self._paint_photo(painter, item, path, rect, palette, highlight)
        painter.end()
        self.thumbnails.keep_only(visible)

    def _paint_header(
        self, painter: QPainter, header: Header, rect: QRect, palette: QPalette
    ) -> None:
        font = QFont(self.font())
        if header.kind == "minor":
            font.setPointSizeF(font.pointSizeF() * 1.0)
            font.setBold(True)
        else:
            font.setPointSizeF(font.pointSizeF() * 1.35)
            font.setBold(True)
        painter.setFont(font)
        painter.setPen(palette.color(QPalette.ColorRole.Text))
        text_rect = rect.adjusted(2, 0, -2, -4)
        if header.kind == "divider":
            painter.setPen(QPen(palette.color(QPalette.ColorRole.Mid), 1))
            middle = rect.top() + rect.height() // 2
            painter.drawLine(rect.left(), middle, rect.right(), middle)
            metrics = painter.fontMetrics()
            width = metrics.horizontalAdvance(header.title) + 24
            label = QRect(0, rect.top(), width, rect.height())
            painter.fillRect(label, palette.color(QPalette.ColorRole.Base))
            painter.setPen(palette.color(QPalette.ColorRole.PlaceholderText))
            painter.drawText(
                label.adjusted(2, 0, 0, 0),
                Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft,
                header.title,
            )
            return
        painter.drawText(
            text_rect, Qt.AlignmentFlag.AlignBottom | Qt.AlignmentFlag.AlignLeft, header.title
        )

    def _paint_photo(
        self,
        painter: QPainter,
        item: int,
        path: str,
        rect: QRect,
        palette: QPalette,
        highlight: QColor,
    ) -> None:
        pixmap = self.thumbnails.pixmap(path)
        if isinstance(pixmap, QPixmap) and not pixmap.isNull():
            source = _cover(QSize(pixmap.width(), pixmap.height()), rect.size())
            painter.drawPixmap(QRectF(rect), pixmap, QRectF(source))
        else:
            painter.fillRect(rect, palette.color(QPalette.ColorRole.AlternateBase))
            if path in self.thumbnails.failed:
                painter.setPen(palette.color(QPalette.ColorRole.PlaceholderText))
                painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, "no preview")
        if similar := len(getattr(self.results[item], "similar", ())):
            _paint_similar_badge(painter, rect, f"+{similar}")  # near-duplicates folded in
        selected = item in self.selected
        if selected:
            tint = QColor(highlight)
            tint.setAlpha(70)
            painter.fillRect(rect, tint)
            painter.setPen(QPen(highlight, 3))
            painter.drawRect(rect.adjusted(1, 1, -2, -2))
            badge = QRect(rect.left() + 6, rect.top() + 6, 18, 18)
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            painter.setBrush(highlight)
            painter.setPen(QPen(QColor("white"), 2))
            painter.drawEllipse(badge)
            painter.drawText(badge, Qt.AlignmentFlag.AlignCenter, "✓")
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        elif item == self.hovered:
            painter.fillRect(rect, QColor(255, 255, 255, 40))
            painter.setPen(QPen(palette.color(QPalette.ColorRole.Highlight), 1))
            painter.drawRect(rect.adjusted(0, 0, -1, -1))
        if item == self.current and self.hasFocus():
            pen = QPen(palette.color(QPalette.ColorRole.Text), 1, Qt.PenStyle.DotLine)
            painter.setPen(pen)
            painter.drawRect(rect.adjusted(3, 3, -4, -4))

    def _row_of(self, path: str) -> int | None:
        if isinstance(self.results, DatedPhotos):
            return self.results.index_of(path)
        return self._rows.get(path)

    def _thumbnail_ready(self, path: str) -> None:
        item = self._row_of(path)
        if item is None:
            return
        rect = self.item_rect(item)
        if rect.intersects(self.viewport().rect()):
            self.viewport().update(rect)

    # --- events ----------------------------------------------------------------------------

    def resizeEvent(self, event) -> None:  # noqa: ANN001
        super().resizeEvent(event)
        if event.oldSize().width() != event.size().width():
            if len(self.results) > 20_000:
                self._relayout_timer.start()  # relayout once the resize settles
            else:
                self.relayout()
        else:
            self.verticalScrollBar().setRange(
                0, max(0, self.layout_.height - self.viewport().height())
            )
            self.verticalScrollBar().setPageStep(self.viewport().height())

    def wheelEvent(self, event) -> None:  # noqa: ANN001
        if event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            steps = event.angleDelta().y() / 120
            self.set_row_height(round(self.row_height * (1.15**steps)))
            event.accept()
            return
        super().wheelEvent(event)

    def _item_at(self, pos: QPoint) -> int | None:
        return self.layout_.item_at(pos.x(), pos.y() + self.verticalScrollBar().value())

    def reasons_tip(self, row: int) -> str:
        """Why a search result matched (photosearch.search.fusion), as its tooltip; '' for none."""
        reasons = self.results[row].reasons if 0 <= row < len(self.results) else ()
        if not any(reason.words for reason in reasons):  # "looks like" alone goes unsaid
            return ""
        return "Matched by " + "; ".join(reason.describe() for reason in reasons)

    def viewportEvent(self, event) -> bool:  # noqa: ANN001
        if event.type() == QEvent.Type.ToolTip:
            item = self._item_at(event.pos())
            tip = self.reasons_tip(item) if item is not None else ""
            if tip:
                QToolTip.showText(event.globalPos(), tip, self.viewport())
            else:
                QToolTip.hideText()
            return True
        return super().viewportEvent(event)

    def mousePressEvent(self, event) -> None:  # noqa: ANN001
        self.setFocus(Qt.FocusReason.MouseFocusReason)
        pos = event.position().toPoint()
        item = self._item_at(pos)
        modifiers = event.modifiers()
        if event.button() == Qt.MouseButton.RightButton:
            if item is not None and item not in self.selected:
                self.set_current(item, "only")
            self.contextMenuWanted.emit(self.viewport().mapToGlobal(pos))
            return
        if event.button() != Qt.MouseButton.LeftButton:
            return
        self._press = pos
        self._press_item = item
        if item is None:
            self._band_origin = pos
            self._band_base = (
                set(self.selected)
                if modifiers
                & (Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
                else set()
            )
            if not self._band_base:
                self.clear_selection()
            self.rubber_band.setGeometry(QRect(pos, QSize()))
            self.rubber_band.show()
            return
        if modifiers & Qt.KeyboardModifier.ShiftModifier:
            self.set_current(item, "extend")
        elif modifiers & Qt.KeyboardModifier.ControlModifier:
            self.set_current(item, "toggle")
        elif item not in self.selected:
            self.set_current(item, "only")
        else:
            self.current = self.anchor = item  # a click on the selection may drag it all
            self.viewport().update()

    def mouseMoveEvent(self, event) -> None:  # noqa: ANN001
        pos = event.position().toPoint()
        if self._band_origin is not None:
            band = QRect(self._band_origin, pos).normalized()
            self.rubber_band.setGeometry(band)
            self._select_in(band)
            return
        if (
            self._press is not None
            and self._press_item is not None
            and (pos - self._press).manhattanLength() >= QApplication.startDragDistance()
        ):
            self._press = None
            self._start_drag()
            return
        item = self._item_at(pos)
        hovered = -1 if item is None else item
        if hovered != self.hovered:
            previous, self.hovered = self.hovered, hovered
            for changed in (previous, hovered):
                if changed >= 0:
                    self.viewport().update(self.item_rect(changed))

    def mouseReleaseEvent(self, event) -> None:  # noqa: ANN001
        pos = event.position().toPoint()
        if self._band_origin is not None:
            self._band_origin = None
            self.rubber_band.hide()
        elif (
            self._press is not None
            and self._press_item is not None
            and not event.modifiers()
            and self._press_item in self.selected
            and len(self.selected) > 1
            and self._item_at(pos) == self._press_item
        ):
            self.set_current(self._press_item, "only")  # a plain click inside a selection
        self._press = None
        self._press_item = None

    def mouseDoubleClickEvent(self, event) -> None:  # noqa: ANN001
        item = self._item_at(event.position().toPoint())
        if item is not None and event.button() == Qt.MouseButton.LeftButton:
            self.set_current(item, "only")
            self.openRequested.emit(item)

    def leaveEvent(self, event) -> None:  # noqa: ANN001
        if self.hovered >= 0:
            previous, self.hovered = self.hovered, -1
            self.viewport().update(self.item_rect(previous))
        super().leaveEvent(event)

    def _select_in(self, band: QRect) -> None:
        top = self.verticalScrollBar().value()
        layout = self.layout_
        inside: set[int] = set()
        for row in layout.rows_between(band.top() + top, band.bottom() + top + 1):
            if layout.row_header[row] is not None:
                continue
            for item in range(layout.row_first[row], layout.row_first[row] + layout.row_count[row]):
                if self.item_rect(item).intersects(band):
                    inside.add(item)
        selected = self._band_base | inside
        if selected != self.selected:
            self.selected = selected
            self.viewport().update()
            self.selectionChanged.emit()

    def _start_drag(self) -> None:
        chosen = self.selected_results()
        if not chosen:
            return
        drag = QDrag(self)
        drag.setMimeData(file_mime_data([r.path for r in chosen]))
        pixmap = self.thumbnails.pixmap(chosen[0].path)
        if isinstance(pixmap, QPixmap) and not pixmap.isNull():
            drag.setPixmap(pixmap.scaled(96, 96, Qt.AspectRatioMode.KeepAspectRatio))
        drag.exec(Qt.DropAction.CopyAction)

    def keyPressEvent(self, event) -> None:  # noqa: ANN001
        key = event.key()
        modifiers = event.modifiers()
        if event.matches(QKeySequence.StandardKey.SelectAll):
            self.select_all()
            return
        if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            if self.current >= 0:
                self.openRequested.emit(self.current)
            return
        if event.text() == "/":
            self.searchFocusRequested.emit()
            return
        if key == Qt.Key.Key_Escape:
            if len(self.selected) > 1:
                self.set_current(self.current, "only")
            else:
                self.escapePressed.emit()
            return
        if not self.results:
            super().keyPressEvent(event)
            return
        current = self.current if self.current >= 0 else 0
        layout = self.layout_
        page = max(1, self.viewport().height())
        targets = {
            Qt.Key.Key_Right: lambda: current + 1 if self.current >= 0 else 0,
            Qt.Key.Key_Left: lambda: current - 1,
            Qt.Key.Key_Down: lambda: (
                layout.item_above_or_below(current, 1) if self.current >= 0 else 0
            ),
            Qt.Key.Key_Up: lambda: layout.item_above_or_below(current, -1),
            Qt.Key.Key_Home: lambda: 0,
            Qt.Key.Key_End: lambda: len(self.results) - 1,
            Qt.Key.Key_PageDown: lambda: self._item_near_y(current, page),
            Qt.Key.Key_PageUp: lambda: self._item_near_y(current, -page),
        }
        if key in targets:
            target = max(0, min(len(self.results) - 1, targets[key]()))
            if modifiers & Qt.KeyboardModifier.ShiftModifier:
                self.set_current(target, "extend")
            elif modifiers & Qt.KeyboardModifier.ControlModifier:
                self.set_current(target, "keep")
            else:
                self.set_current(target, "only")
            return
        if key == Qt.Key.Key_Space and modifiers & Qt.KeyboardModifier.ControlModifier:
            self.set_current(current, "toggle")
            return
        super().keyPressEvent(event)

    def _item_near_y(self, item: int, delta: int) -> int:
        x, y, w, h = self.layout_.item_rect(item)
        target_y = min(max(0, y + delta), max(0, self.layout_.height - 1))
        for row in self.layout_.rows_between(target_y, target_y + 1):
            if self.layout_.row_header[row] is None:
                found = self.layout_.item_at(x + w // 2, self.layout_.row_y[row] + 1)
                return found if found is not None else self.layout_.row_first[row]
        return len(self.results) - 1 if delta > 0 else 0

    def focusInEvent(self, event) -> None:  # noqa: ANN001
        super().focusInEvent(event)
        self.viewport().update()

    def focusOutEvent(self, event) -> None:  # noqa: ANN001
        super().focusOutEvent(event)
        self.viewport().update()


def _cover(source: QSize, target: QSize) -> QRect:
    """The centred part of ``source`` with ``target``'s aspect ratio (fill, crop the rest)."""
    if source.width() <= 0 or source.height() <= 0 or target.height() <= 0:
        return QRect(0, 0, source.width(), source.height())
    want = target.width() / target.height()
    have = source.width() / source.height()
    if have > want:
        width = round(source.height() * want)
        return QRect((source.width() - width) // 2, 0, width, source.height())
    height = round(source.width() / want)
    return QRect(0, (source.height() - height) // 2, source.width(), height)


def file_mime_data(paths: Sequence[str]) -> QMimeData:
    """What copying or dragging photos hands other applications: file URLs (file managers,
    mail, editors), GNOME's copied-files list, and the paths as text."""
    mime = QMimeData()
    urls = [QUrl.fromEncoded(file_url(p)) for p in paths]
    mime.setUrls(urls)
    mime.setText("\n".join(paths))
    gnome = "copy\n" + "\n".join(url.toString() for url in urls)
    mime.setData("x-special/gnome-copied-files", gnome.encode())
    return mime


def _paint_similar_badge(painter: QPainter, rect: QRect, text: str) -> None:
    """ "+N" in the photo's bottom-right corner: N near-duplicates are folded into it."""
    metrics = painter.fontMetrics()
    badge = QRect(0, 0, metrics.horizontalAdvance(text) + 10, metrics.height() + 4)
    badge.moveBottomRight(rect.bottomRight() - QPoint(5, 5))
    painter.fillRect(badge, QColor(0, 0, 0, 160))
    painter.setPen(QColor("white"))
    painter.drawText(badge, Qt.AlignmentFlag.AlignCenter, text)
