"""The library's text-in-photos stage (issue 20 item 1) behind one object, ``Library.text``.

Reading runs after encoding, under the library's single write path (``Library.writing``), only
while the library's setting is on and an extractor plugin can run (photosearch.indexing.extractors,
photosearch.indexing.text_reading). Kept out of the facade so it stays a thin list of public steps.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from photosearch.catalog import Catalog
from photosearch.indexing.encode import ProgressCallback
from photosearch.indexing.extractors import Discovered, discover_extractors
from photosearch.indexing.text_reading import (
    ReadingStatus,
    ReadReport,
    read_text_in_photos,
    reading_enabled,
    reading_status,
)

Writing = Callable[..., AbstractContextManager[Any]]


class TextInPhotos:
    """Reads the text in a library's encoded photos and reports how far that has got."""

    def __init__(
        self, catalog: Catalog, writing: Writing, check_writable: Callable[[], None]
    ) -> None:
        self.catalog = catalog
        self._writing = writing
        self._check_writable = check_writable
        self._found: Discovered | None = None

    def extractors(self) -> Discovered:
        """The text-extractor plugins, discovered once."""
        if self._found is None:
            self._found = discover_extractors()
        return self._found

    def read(
        self,
        progress: ProgressCallback | None = None,
        should_stop: Callable[[], bool] | None = None,
        lock_wait_s: float = 0.0,
        on_lock_wait: Callable[[int | None], None] | None = None,
        limit: int | None = None,
        count_left: bool = True,
    ) -> ReadReport | None:
        """Read the text in encoded photos not read yet, as the library's writer; None when
        the setting is off or no extractor plugin can run. ``count_left``: see
        read_text_in_photos."""
        extractors = list(self.extractors().extractors.values())
        if not extractors or not reading_enabled(self.catalog):
            return None
        with self._writing(lock_wait_s, on_lock_wait):
            self._check_writable()
            return read_text_in_photos(
                self.catalog,
                extractors,
                progress=progress,
                should_stop=should_stop,
                limit=limit,
                count_left=count_left,
            )

    def status(self) -> ReadingStatus:
        """How far reading has got, and why an installed extractor cannot run."""
        found = self.extractors()
        return reading_status(
            self.catalog,
            list(found.extractors.values()),
            [f"{name}: {why}" for name, why in found.unavailable.items()],
        )
