"""What the app can do with photos outside itself: open them, show them in the file manager,
copy them to the clipboard or another folder, open them with a chosen program.

Every function reports failure (returns False or a message) instead of failing silently: a
desktop without a handler for images or folders is common on minimal Linux installs.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import QProcess, Qt, QUrl
from PySide6.QtGui import QDesktopServices, QGuiApplication
from PySide6.QtWidgets import QMessageBox, QWidget

from photosearch.files.photo_files import file_url
from photosearch.gui.photo_grid import file_mime_data


def open_externally(path: str) -> bool:
    """Open the photo in the system's default image viewer; False when none answers."""
    return QDesktopServices.openUrl(QUrl.fromEncoded(file_url(path)))


def show_in_folder(path: str) -> str | None:
    """Show the photo in the file manager, selected where the platform allows. Returns what
    was done ("selected", "folder"), or None when nothing could open it.

    Linux: org.freedesktop.FileManager1.ShowItems over D-Bus (Nautilus, Dolphin, Nemo,
    Thunar...), else the folder through xdg-open; macOS: ``open -R``; Windows: ``explorer
    /select,``."""
    if sys.platform == "darwin":
        if QProcess.startDetached("open", ["-R", path]):
            return "selected"
    elif sys.platform == "win32":
        if QProcess.startDetached("explorer", [f"/select,{os.path.normpath(path)}"]):
            return "selected"
    elif _show_items_over_dbus(path):
        return "selected"
    if QDesktopServices.openUrl(QUrl.fromEncoded(file_url(os.path.dirname(path)))):
        return "folder"
    return None


def _show_items_over_dbus(path: str) -> bool:
    try:
        from PySide6.QtDBus import QDBusConnection, QDBusInterface, QDBusMessage
    except ImportError:
        return False
    bus = QDBusConnection.sessionBus()
    if not bus.isConnected():
        return False
    manager = QDBusInterface(
        "org.freedesktop.FileManager1",
        "/org/freedesktop/FileManager1",
        "org.freedesktop.FileManager1",
        bus,
    )
    if not manager.isValid():
        return False
    reply = manager.call("ShowItems", [QUrl.fromEncoded(file_url(path)).toString()], "")
    return reply.type() != QDBusMessage.MessageType.ErrorMessage


def open_with(program: str, paths: Sequence[str]) -> bool:
    """Start ``program`` with the photos as arguments (detached: it outlives the app)."""
    return bool(QProcess.startDetached(program, list(paths)))


def copy_files(paths: Sequence[str]) -> None:
    """Put the files on the clipboard: paste into a file manager copies them, into a text
    field gives their paths."""
    global _clipboard_holds_files
    QGuiApplication.clipboard().setMimeData(file_mime_data(paths))
    _clipboard_holds_files = True


_clipboard_holds_files = False


def release_clipboard() -> None:
    """Clear files this app put on the clipboard, before the application object goes away:
    Qt deletes the clipboard's QMimeData during its own teardown, after Python's wrapper of it,
    and the process then crashes on exit (rc 139). Run on aboutToQuit."""
    global _clipboard_holds_files
    if _clipboard_holds_files:
        QGuiApplication.clipboard().clear()
        _clipboard_holds_files = False


def copy_paths(paths: Sequence[str]) -> None:
    QGuiApplication.clipboard().setText("\n".join(paths))


@dataclass
class ExportReport:
    copied: list[Path] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)


def export_to(paths: Sequence[str], folder: Path) -> ExportReport:
    """Copy photos into ``folder`` (never overwriting: a taken name gets " (2)", " (3)"...).
    The originals are only read."""
    report = ExportReport()
    for path in paths:
        source = Path(path)
        target = folder / source.name
        number = 2
        while target.exists():
            target = folder / f"{source.stem} ({number}){source.suffix}"
            number += 1
        try:
            shutil.copy2(source, target)
        except OSError as exc:
            report.failed.append((path, exc.strerror or str(exc)))
            continue
        report.copied.append(target)
    return report


def ask_to_trash(parent: QWidget, what: str, answered: Callable[[bool], None]) -> QMessageBox:
    """Open (window-modal, not blocking) the one confirmation before photos go to the trash;
    ``answered(True)`` only when the user chose to move them (``what``: "3 photos")."""
    box = QMessageBox(
        QMessageBox.Icon.Question, "Move to trash", f"Move {what} to the trash?", parent=parent
    )
    box.setInformativeText(
        "The files are moved from their folders to the system trash, "
        "where you can restore them. photosearch stops showing them."
    )
    trash = box.addButton(f"Move {what} to trash", QMessageBox.ButtonRole.DestructiveRole)
    cancel = box.addButton(QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(cancel)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.finished.connect(lambda _result: answered(box.clickedButton() is trash))
    box.open()
    return box
