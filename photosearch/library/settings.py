"""A library's saved choices (catalog meta): execution provider, ignore patterns, what the
last scan skipped, and the re-ranking model, opened on first use.

Saved in the catalog rather than a config file, so a library carried to another machine keeps
them and every process using it (the CLI beside the app) sees the same.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable

from photosearch.catalog import Catalog
from photosearch.errors import PhotosearchError
from photosearch.models.runtime import AUTO_PROVIDER, local_providers
from photosearch.search.rerank import Reranker

PROVIDER_KEY = "execution_provider"
IGNORE_PATTERNS_KEY = "ignore_patterns"
SKIPPED_KEY = "skipped_paths"  # JSON [[path, reason], ...]: what the last scan could not read
SKIPPED_KEPT = 1000


class LibrarySettings:
    """``provider``: one given for this process only (``--provider``), else the saved one.
    ``open_reranker`` opens the saved re-ranking setting (``rerank.saved_reranker``)."""

    def __init__(
        self,
        catalog: Catalog,
        provider: str | None,
        open_reranker: Callable[[], Reranker | None],
    ) -> None:
        self.catalog = catalog
        self._provider = provider
        self._open_reranker = open_reranker
        self._reranker: Reranker | None | bool = False  # False: saved setting not read yet
        self._reranker_lock = threading.RLock()  # the GUI searches from several threads

    @property
    def provider(self) -> str:
        """The ONNX Runtime execution provider: explicit, else saved, else "auto"."""
        if self._provider is None:
            self._provider = self.catalog.get_meta(PROVIDER_KEY) or AUTO_PROVIDER
        return self._provider

    def use_provider(self, name: str) -> None:
        """Save ``name`` as the provider; raises PhotosearchError when this machine lacks it."""
        choices = [AUTO_PROVIDER, *local_providers()]
        if name not in choices:
            raise PhotosearchError(
                f"unknown execution provider {name!r}; this machine has: {', '.join(choices)}"
            )
        self.catalog.set_meta(PROVIDER_KEY, name)
        self._provider = name

    def ignore_patterns(self) -> tuple[str, ...]:
        raw = self.catalog.get_meta(IGNORE_PATTERNS_KEY) or ""
        return tuple(p for p in raw.split("\n") if p)

    def set_ignore_patterns(self, patterns: list[str]) -> None:
        self.catalog.set_meta(IGNORE_PATTERNS_KEY, "\n".join(p for p in patterns if p.strip()))

    def skipped(self) -> list[tuple[str, str]]:
        """(path, why) of what the last scan could not read."""
        return [(p, r) for p, r in json.loads(self.catalog.get_meta(SKIPPED_KEY) or "[]")]

    def record_skipped(self, unreadable: list[tuple[str, str]]) -> None:
        self.catalog.set_meta(SKIPPED_KEY, json.dumps(unreadable[:SKIPPED_KEPT]))

    @property
    def reranker(self) -> Reranker | None:
        """The model that re-ranks text searches (photosearch.search.rerank), or None when off."""
        with self._reranker_lock:
            if self._reranker is False:
                self._reranker = self._open_reranker()
            return self._reranker  # type: ignore[return-value]

    def use_reranker(self, reranker: Reranker | None) -> None:
        """Re-rank with ``reranker`` from now on (None: off), not saved (rerank.save_setting)."""
        with self._reranker_lock:
            if self._reranker and self._reranker is not reranker:
                self._reranker.close()
            self._reranker = reranker

    def close(self) -> None:
        self.use_reranker(None)
