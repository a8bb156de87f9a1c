"""The command line of text in photos: `index`'s reading stage, `photosearch text-in-photos
on|off`, and the `status` line. Kept out of cli.py (which only calls these); prints.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # cli.py imports this module at start-up: keep it light
    from photosearch.indexing.text_reading import ReadingStatus, ReadReport


def add_index_options(index: argparse.ArgumentParser) -> None:
    index.add_argument(
        "--no-read-text",
        dest="read_text",
        action="store_false",
        help="skip reading the text in photos this time (it runs after the "
        "encoding when an OCR plugin is installed; see `photosearch "
        "text-in-photos`)",
    )


def add_command(
    commands,  # noqa: ANN001 - argparse's sub-parsers action
    common: argparse.ArgumentParser,
    open_library: Callable,
    writing: Callable,
) -> None:
    """``photosearch text-in-photos``; ``open_library(args, readonly=...)`` and
    ``writing(library, args)`` are the CLI's own (passed in: cli.main imports this module)."""
    command = commands.add_parser(
        "text-in-photos",
        parents=[common],
        help="turn reading the text in photos (OCR) on or off, or show how far it has got",
        description="When an OCR plugin is installed (the `ocr` extra), `index`, `watch` and "
        "the app read the text in photos after encoding them, so a search for the "
        "words on a sign, a receipt or a screenshot finds the photo. On by default. "
        "Turning it off keeps what was read; `on` goes on where it stopped.",
    )
    command.add_argument("state", nargs="?", choices=["on", "off"])
    command.set_defaults(handler=lambda args: _text_in_photos(args, open_library, writing))


def run_stage(library, args: argparse.Namespace) -> ReadReport | None:  # noqa: ANN001
    """After `index`: read the text in the photos not read yet, with a progress bar and Ctrl-C
    as 'stop after this photo'. None when skipped, turned off or no OCR plugin is installed."""
    from photosearch.indexing.progress import ProgressBar

    if not getattr(args, "read_text", True):
        return None
    stop = threading.Event()
    previous = signal.getsignal(signal.SIGINT)

    def request_stop(_signum, _frame) -> None:  # noqa: ANN001
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()
        print("\nstopping after this photo (Ctrl-C again to abort now)...", file=sys.stderr)

    main_thread = threading.current_thread() is threading.main_thread()
    if main_thread:
        signal.signal(signal.SIGINT, request_stop)
    try:
        return library.text.read(
            progress=ProgressBar("reading text"), should_stop=stop.is_set, lock_wait_s=args.wait
        )
    finally:
        if main_thread:
            signal.signal(signal.SIGINT, previous)


def summary_of(report: ReadReport) -> dict:
    """`index --json`'s figures for the reading stage."""
    return {
        "read": report.read,
        "with_text": report.with_text,
        "failed": report.failed,
        "remaining": report.remaining,
        "seconds": round(report.seconds, 3),
        "stopped": report.stopped,
    }


def describe(report: ReadReport) -> str:
    line = (
        f"read text in {report.read} photos in {report.seconds:.1f}s: {report.with_text} "
        f"with text, {report.failed} could not be read"
    )
    if report.stopped:
        line += f" (stopped; {report.remaining} left: run again to go on)"
    return line


def status_line(status: ReadingStatus | None) -> str | None:
    """`photosearch status`'s line about text in photos."""
    if status is None:
        return None
    if not status.extractors:
        why = "; ".join(status.unavailable) or "no OCR plugin installed"
        return f"text:     not read ({why})"
    state = "" if status.enabled else " [off: `photosearch text-in-photos on`]"
    return (
        f"text:     {status.read} photos read ({status.with_text} with text), "
        f"{status.pending} to read{state}"
    )


def _text_in_photos(args: argparse.Namespace, open_library: Callable, writing: Callable) -> int:
    from photosearch.indexing.text_reading import set_reading_enabled

    with open_library(args, readonly=args.state is None) as library:
        if args.state is not None:
            with writing(library, args):
                set_reading_enabled(library.catalog, args.state == "on")
        line = status_line(library.text.status())
    print(line)
    return 0
