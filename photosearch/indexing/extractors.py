"""The text-extractor plugin contract and the function that discovers extractors.

An extractor turns a decoded photo into the words it shows (OCR): it has a ``name``, a
``version`` (a new version makes every photo be read again) and ``read_text(image)``. Extractors
are exposed through the entry-point group ``photosearch.extractors``; the value is a class
or a
zero-argument factory. The built-in RapidOCR plugin (plugins/photosearch_ocr) registers exactly
the same way in pyproject.toml, so a third-party package needs nothing else.

A factory whose optional dependencies are missing raises ``ExtractorUnavailable`` (said once,
at info level: the feature is simply off); any other failure is a broken plugin, logged as a
warning and skipped. Factories must be cheap: load models on the first ``read_text``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from photosearch.errors import PhotosearchError

if TYPE_CHECKING:
    from PIL import Image

ENTRY_POINT_GROUP = "photosearch.extractors"
log = logging.getLogger(__name__)


class ExtractorUnavailable(PhotosearchError):
    """An extractor plugin is registered but cannot run here (e.g. its optional dependencies
    are not installed); the message says how to install them."""


@runtime_checkable
class TextExtractor(Protocol):
    """What a text-extractor plugin implements. Called from one thread at a time."""

    name: str
    version: str

    def read_text(self, image: Image.Image) -> str:
        """The text shown in ``image`` (upright 8-bit RGB), lines joined by newlines; '' when
        there is none. Raises on a failure that concerns this photo only."""
        ...


@dataclass(frozen=True)
class Discovered:
    """What the entry points offer: the usable extractors and why others are not."""

    extractors: dict[str, TextExtractor]
    unavailable: dict[str, str]  # entry-point name -> one-line reason


def discover_extractors() -> Discovered:
    """Instantiate every extractor registered under the entry-point group; broken or
    unavailable ones are left out with their reason."""
    found: dict[str, TextExtractor] = {}
    unavailable: dict[str, str] = {}
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        try:
            extractor = entry.load()()
        except ExtractorUnavailable as exc:
            unavailable[entry.name] = str(exc)
            log.info("text extractor %r is not available: %s", entry.name, exc)
            continue
        except Exception as exc:  # a plugin's failure must not stop the app
            unavailable[entry.name] = f"failed to load: {exc}"
            log.warning("text extractor %r failed to load and is skipped: %s", entry.name, exc)
            continue
        if not isinstance(extractor, TextExtractor):
            unavailable[entry.name] = "does not implement name, version and read_text()"
            log.warning("text extractor %r does not implement the contract; skipped", entry.name)
            continue
        found[entry.name] = extractor
    return Discovered(found, unavailable)


def extractor_key(extractor: TextExtractor) -> str:
    """How the catalog records which extractor read a photo (``photo_extractions.extractor``):
    name and version, so a new version reads every photo again."""
    return f"{extractor.name}@{extractor.version}"
