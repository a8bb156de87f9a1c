"""Retrieve, then re-rank (LightningDOT): a big model re-scores a small model's top results.

A fast student indexes and searches the library; for a text search, its top ``depth``
photos are re-scored by a bigger model (typically the student's teacher) with the bigger
model's own text vector and its image vectors of just those photos, and re-ordered; the rest
of the results keep the student's order below them. The big model's image vectors are not in
the search index: they are computed on demand for the photos that reach a top ``depth`` and
kept in a small SQLite file per model (``<library>/rerank/<identity>.sqlite``, keyed by path,
size and mtime, so an edited photo is encoded again), which a later search reuses.

Per library: ``photosearch models rerank MODEL|off [--depth K] [--fill]`` saves the setting
(catalog meta; ``--fill`` computes the model's vectors of every photo now, so no search pays
for them), ``photosearch search --rerank MODEL`` uses one for a single search, and the app's
Settings choose it. Never chosen, a library searching with a distilled student re-ranks with
the student's teacher when that is installed (``default_reranker_name``). The app and
`photosearch watch` fill the re-ranking model's vectors while they are idle (``IdleFill``).
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Protocol

import numpy as np

from photosearch.catalog import Catalog
from photosearch.errors import PhotosearchError, UnsupportedImage
from photosearch.models.providers import ModelRegistry
from photosearch.search.query import SearchResult, combine_query

RERANK_MODEL_KEY = "rerank_model"  # catalog meta: the re-ranking bundle's name; "" = off
RERANK_DEPTH_KEY = "rerank_depth"
DEFAULT_DEPTH = 50
CACHE_DIR = "rerank"
OFF = "off"

log = logging.getLogger(__name__)


class RerankVectors:
    """The re-ranking model's image vectors of photos, in one SQLite file. Thread-safe."""

    def __init__(self, path: Path, embed_dim: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.embed_dim = embed_dim
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS vectors (key TEXT PRIMARY KEY, v BLOB)")

    def get(self, keys: Sequence[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        with self._lock:
            for start in range(0, len(keys), 500):
                part = list(keys[start : start + 500])
                marks = ",".join("?" * len(part))
                for key, blob in self._db.execute(
                    f"SELECT key, v FROM vectors WHERE key IN ({marks})", part
                ):
                    found[key] = np.frombuffer(blob, dtype=np.float32)
        return found

    def put(self, vectors: dict[str, np.ndarray]) -> None:
        rows = [(k, np.asarray(v, np.float32).tobytes()) for k, v in vectors.items()]
        with self._lock:
            self._db.execute("BEGIN")
            self._db.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?)", rows)
            self._db.execute("COMMIT")

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM vectors").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()


class Reranker:
    """Re-scores the top ``depth`` results of a text search with another bundle."""

    def __init__(
        self,
        bundle_dir: Path,
        cache_dir: Path,
        depth: int = DEFAULT_DEPTH,
        *,
        threads: int | None = None,
        providers: Sequence[str] | None = None,
    ) -> None:
        from photosearch.models.runtime import Encoder

        if depth < 1:
            raise PhotosearchError(f"re-ranking depth must be at least 1, not {depth}")
        self.encoder = Encoder(bundle_dir, threads=threads, providers=providers)
        self.depth = depth
        safe = "".join(c if c.isalnum() or c in "-_.@" else "_" for c in self.encoder.identity)
        self.vectors = RerankVectors(cache_dir / f"{safe}.sqlite", self.encoder.embed_dim)
        self.encoded = 0  # photos this object encoded (the rest came from the cache)

    @property
    def name(self) -> str:
        return self.encoder.config.name

    def image_vectors(self, paths: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """([n, D] vectors, [n] bool: usable) for ``paths``, encoding the ones not cached."""
        from photosearch.files.imaging import decode_for_model

        keys = [_photo_key(Path(p)) for p in paths]
        found = self.vectors.get([k for k in keys if k])
        missing = [i for i, k in enumerate(keys) if k and k not in found]
        if missing:
            pixels, encoded_keys = [], []
            for i in missing:
                try:
                    pixels.append(
                        decode_for_model(Path(paths[i]), self.encoder.config.preprocessing).pixels
                    )
                    encoded_keys.append(keys[i])
                except UnsupportedImage as exc:
                    log.warning("not re-ranking %s: %s", paths[i], exc)
            if pixels:
                new = self.encoder.encode_images(np.stack(pixels))
                fresh = dict(zip(encoded_keys, new, strict=True))
                self.vectors.put(fresh)
                found.update(fresh)
                self.encoded += len(fresh)
        out = np.zeros((len(paths), self.encoder.embed_dim), np.float32)
        usable = np.zeros(len(paths), bool)
        for i, key in enumerate(keys):
            if key in found:
                out[i], usable[i] = found[key], True
        return out, usable

    def rerank(self, texts: Sequence[str], results: list[SearchResult]) -> list[SearchResult]:
        """``results`` with the first ``depth`` re-ordered by this model's score for the query
        (``texts``: the positive text, then negative terms, combined as search.py does); a
        photo it cannot read goes to the end of that top part. Scores of the re-ranked part
        are this model's."""
        head, tail = results[: self.depth], results[self.depth :]
        if not head or not texts:
            return list(results)
        text_vectors = self.encoder.encode_texts(list(texts))
        query = combine_query([text_vectors[0]], list(text_vectors[1:]))
        vectors, usable = self.image_vectors([r.path for r in head])
        scores = np.where(usable, vectors @ query, -np.inf)
        order = np.argsort(-scores, kind="stable")
        reranked = [
            replace(head[i], score=float(scores[i])) if usable[i] else head[i] for i in order
        ]
        return reranked + tail

    def fill(
        self,
        paths: Sequence[str],
        batch: int = 32,
        progress: Callable[[int, int], None] | None = None,
    ) -> int:
        """Compute and cache this model's vectors of every photo in ``paths`` not cached yet
        (so no search pays for them); returns how many were encoded. Interruptible between
        batches: what was encoded stays cached."""
        before = self.encoded
        for start in range(0, len(paths), batch):
            self.image_vectors(paths[start : start + batch])
            if progress is not None:
                progress(min(len(paths), start + batch), len(paths))
        return self.encoded - before

    def close(self) -> None:
        self.vectors.close()


class IdleFill:
    """Encodes the re-ranking model's vectors of every photo in the background, one small
    batch at a time and only while ``busy()`` is False, so searches find them cached and
    indexing or searching never waits for it. Resumable: what is cached stays cached."""

    def __init__(
        self,
        reranker: Reranker,
        photos: Callable[[], Sequence[str]],
        busy: Callable[[], bool],
        batch: int = 8,
        pause_s: float = 1.0,
    ) -> None:
        self.reranker = reranker
        self.photos = photos
        self.busy = busy
        self.batch = batch
        self.pause_s = pause_s
        self.filled = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rerank-fill", daemon=True)

    def start(self) -> IdleFill:
        self._thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    @property
    def done(self) -> bool:
        return not self._thread.is_alive()

    def _run(self) -> None:
        _lower_this_threads_priority()
        try:
            missing = self._missing()
            for start in range(0, len(missing), self.batch):
                while self.busy():
                    if self._stop.wait(self.pause_s):
                        return
                if self._stop.is_set():
                    return
                before = self.reranker.encoded
                self.reranker.image_vectors(missing[start : start + self.batch])
                self.filled += self.reranker.encoded - before
        except (PhotosearchError, OSError, sqlite3.Error) as exc:  # a search still works
            log.warning("re-ranking vectors not filled: %s", exc)

    def _missing(self) -> list[str]:
        paths = list(self.photos())
        keys = [_photo_key(Path(p)) for p in paths]
        cached = self.reranker.vectors.get([k for k in keys if k])
        return [p for p, k in zip(paths, keys, strict=True) if k and k not in cached]


def _lower_this_threads_priority() -> None:
    """Linux schedules threads separately: a nice filler thread yields the cores."""
    import os

    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)


def _photo_key(path: Path) -> str | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return f"{path}|{stat.st_size}|{stat.st_mtime_ns}"


class RerankingLibrary(Protocol):
    """What the setting functions below need of a library (``Library`` has it); a protocol,
    so this module stays below the facade."""

    catalog: Catalog
    registry: ModelRegistry
    directory: Path
    threads: int | None

    @property
    def model_name(self) -> str: ...

    @property
    def settings(self) -> _RerankerSlot: ...


class _RerankerSlot(Protocol):
    def use_reranker(self, reranker: Reranker | None) -> None: ...


def library_photos(library: RerankingLibrary) -> list[str]:
    """Paths of the library's photos that are present, for ``Reranker.fill``."""
    from sqlalchemy import select

    from photosearch.catalog import Photo

    with library.catalog.session() as session:
        return [str(p) for p in session.scalars(select(Photo.path).where(Photo.present()))]


def open_reranker(library: RerankingLibrary, name: str, depth: int = DEFAULT_DEPTH) -> Reranker:
    """A Reranker for an installed bundle's name (or a bundle folder), caching under the
    library's folder."""
    path = Path(name).expanduser()
    bundle = path if path.is_dir() else library.registry.ensure(name)
    return Reranker(bundle, library.directory / CACHE_DIR, depth, threads=library.threads)


def default_reranker_name(library: RerankingLibrary) -> str | None:
    """The teacher of the model the library searches with, when that model is a distilled
    student (its bundle names its teacher) and the teacher is installed: a student's top
    results are re-ranked by the model it was made from unless the user turned that off."""
    from photosearch.models.bundle import BundleError, read_bundle_config, teacher_of

    installed = {model.name: model.path for model in library.registry.installed()}
    active = installed.get(library.model_name)
    if active is None:
        return None
    try:
        teacher = teacher_of(read_bundle_config(active))
    except BundleError:
        return None
    return teacher if teacher in installed and teacher != library.model_name else None


def reranker_setting(library: RerankingLibrary) -> tuple[str, int]:
    """(model name or OFF, depth): the saved choice, else the default (the active model's
    installed teacher, else off)."""
    saved = library.catalog.get_meta(RERANK_MODEL_KEY)
    depth = int(library.catalog.get_meta(RERANK_DEPTH_KEY) or DEFAULT_DEPTH)
    if saved is None:  # never chosen: "" is a saved "off"
        return default_reranker_name(library) or OFF, depth
    return saved or OFF, depth


def saved_reranker(library: RerankingLibrary) -> Reranker | None:
    """The library's re-ranking setting (``reranker_setting``), opened; None when off, or when
    that model cannot be opened any more (deleted, damaged): searching must still work."""
    name, depth = reranker_setting(library)
    if name == OFF:
        return None
    try:
        return open_reranker(library, name, depth)
    except PhotosearchError as exc:
        log.warning("not re-ranking with %s: %s", name, exc)
        return None


def save_setting(
    library: RerankingLibrary, name: str, depth: int = DEFAULT_DEPTH
) -> Reranker | None:
    """Turn re-ranking on with bundle ``name`` (checked by opening it) or off (``"off"``),
    for this library from now on."""
    reranker = None if name == OFF else open_reranker(library, name, depth)
    library.catalog.set_meta(RERANK_MODEL_KEY, "" if reranker is None else name)
    library.catalog.set_meta(RERANK_DEPTH_KEY, str(depth))
    library.settings.use_reranker(reranker)
    return reranker
