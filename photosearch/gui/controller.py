"""LibraryController: runs Library work off the GUI thread and reports back through signals.

One Library instance is shared by two single-thread pools:

- the *write* pool runs one job at a time: opening the store, indexing, removing folders,
  switching models.
- the *read* pool runs searches (latest query wins; queries typed meanwhile are dropped),
  status reads and quick catalog edits, concurrently with a write job.

While folder watching is on (``enable_watching``), a WatcherWorker follows the folders on its
own thread. The library has one writer at a time because every writer goes through
``Library.writing`` (the inter-process lock plus an in-process one): a write job waits for the
watcher's batch in flight, and the watcher's long runs yield to it.

That sharing is safe because catalog access opens a session per call (SQLite in WAL mode),
the VectorStore and Encoder lock internally, and the active model's encoder, id and store are
opened together under ``ModelSets``' lock; so a search sees the vectors an indexing run adds
as it goes. Signals are emitted from pool threads and delivered to GUI-thread slots as queued
calls.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QThreadPool, QTimer, Signal

from photosearch.errors import EmptyQuery, PhotosearchError
from photosearch.gui.watcher import ServiceFactory, WatcherWorker
from photosearch.indexing.encode import IndexProgress
from photosearch.library.facade import Library
from photosearch.search.query import SearchQuery
from photosearch.search.rerank import IdleFill, library_photos, save_setting

log = logging.getLogger(__name__)
PROGRESS_INTERVAL_S = 0.1  # at most ~10 progress signals a second reach the GUI
# After this long with no search, index run or start-up job, the library gives back what it
# holds for speed alone (image session, graph, matrix pages: ModelSets.release_idle_memory).
IDLE_RELEASE_MS = 20_000


class LibraryController(QObject):
    ready = Signal(str)  # model name; the store and text encoder are loaded, searches are fast
    searchFinished = Signal(int, object, float)  # sequence, list[SearchResult], seconds
    searchFailed = Signal(int, str)
    indexStarted = Signal()
    indexPhase = Signal(str)
    indexProgress = Signal(object)  # IndexProgress
    indexFinished = Signal(object, str)  # IndexReport | None, error message ("" when fine)
    foldersChanged = Signal(object)  # list[FolderInfo]
    statusReady = Signal(object)  # LibraryStatus
    modelChanged = Signal(str)
    providerChanged = Signal(str)  # the execution provider now in use
    failed = Signal(str)  # a user action failed; the message is readable
    watchStatus = Signal(object)  # WatchStatus, or None when watching is off
    photosChanged = Signal()  # the watcher added, changed or removed photos
    browseFinished = Signal(int, object)  # sequence, list[SearchResult] by date
    noiseMeasured = Signal(object)  # float | None: what nonsense text scores in this library
    trashFinished = Signal(object)  # TrashReport
    rerankerChanged = Signal(str)  # the re-ranking model's name, or "" when off

    def __init__(self, library: Library, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.library = library
        self._writes = QThreadPool(self)
        self._writes.setMaxThreadCount(1)
        self._reads = QThreadPool(self)
        self._reads.setMaxThreadCount(1)
        # searches on a thread of their own: a timeline reload of 100k photos on the read
        # thread (after the start-up index pass) held the first typed search 5-8 s
        self._searches = QThreadPool(self)
        self._searches.setMaxThreadCount(1)
        self._stop = threading.Event()
        self._search_lock = threading.Lock()
        self._next_search: tuple[int, SearchQuery] | None = None
        self._search_running = False
        self._sequence = 0
        self._browse_sequence = 0
        self._browse_queued = False  # a browse waits on the read thread
        self._next_browse: tuple[int, bool, dict[str, Any]] = (0, True, {})
        self.indexing = False
        self._index_again = False
        self._closed = False
        self.watcher: WatcherWorker | None = None
        self._watched_model = ""  # the model the watcher last reported searches use
        self._fill: IdleFill | None = None  # re-ranking vectors filled while idle
        # the last noise level measured, with the (model, photos held) it was measured for
        self._noise: tuple[tuple[str, int], float | None] | None = None
        self.indexFinished.connect(self._after_index)
        # searches of every k scan the float16 matrix while the graph is not loaded; an idle
        # library gives its graph back (VectorStore.matrix_first): the window asks for up to
        # 1,000 results, which the matrix answers anyway, and at 1M photos the graph held
        # 1.7 GB for the few small-k asks (benchmarks/bench_app_memory_1m.py)
        library.models.matrix_first = True
        for store in library.models.open_stores():
            store.matrix_first = True
        self._idle = QTimer(self)
        self._idle.setSingleShot(True)
        self._idle.setInterval(IDLE_RELEASE_MS)
        self._idle.timeout.connect(self._release_idle_memory)
        for busy in (self.searchFinished, self.photosChanged):  # jobs restart it as they end
            busy.connect(self._restart_idle_timer)

    # --- lifecycle -------------------------------------------------------------------------

    def start(self, index: bool = True) -> None:
        """Load the model's store and text encoder in the background, then index if asked."""

        def work() -> None:
            self.indexPhase.emit("Opening the library…")
            active = self.library.active()  # the store opened and caught up with the catalog
            active.encoder.warm_up(images=False)
            active.store.load_graph_if_searched()  # no matrix: before the first search
            self.foldersChanged.emit(self.library.folders())  # first: ready searches by them
            self.ready.emit(self.library.model_name)

        self._write(work)
        if index:
            self.index()

    def enable_watching(self, factory: ServiceFactory | None = None) -> None:
        """Follow the library's folders from now on (photos saved there appear in results).

        The watcher starts after the write jobs queued so far, e.g. the start-up index."""
        if self.watcher is not None or self._closed:
            return
        self.watcher = WatcherWorker(self.library, factory, parent=self)
        self.watcher.statusChanged.connect(self.watchStatus)
        self.watcher.statusChanged.connect(self._watcher_model)
        self.watcher.photosChanged.connect(self.photosChanged)
        self._write(self.watcher.start)

    def _restart_idle_timer(self, *_args: object) -> None:
        self._idle.start()

    def _release_idle_memory(self) -> None:
        if self.indexing or self._closed:
            return  # the index run's end restarts the timer
        if self._reads.activeThreadCount() or self._searches.activeThreadCount():
            self._idle.start()  # a read (the noise level's searches) would map it all again
            return
        self._submit(self._writes, self.library.models.release_idle_memory, None, False, busy=False)

    def _watcher_model(self, status: object) -> None:
        """The watcher finished a model switch (it re-encodes between its batches)."""
        model = getattr(status, "model", "")
        if model and self._watched_model and model != self._watched_model:
            self.modelChanged.emit(model)
        self._watched_model = model or self._watched_model

    def shutdown(self, wait_ms: int = 30_000) -> None:
        """Stop indexing at the next batch, wait for running jobs, stop watching, close the
        library."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        self._reads.clear()
        self._searches.clear()
        self._writes.clear()
        self._reads.waitForDone(wait_ms)
        self._searches.waitForDone(wait_ms)
        self._writes.waitForDone(wait_ms)
        if self._fill is not None:
            self._fill.stop()
        if self.watcher is not None:
            self.watcher.stop()
            self.watchStatus.emit(None)
        self.library.close()

    # --- searching -------------------------------------------------------------------------

    def search(self, query: SearchQuery) -> int:
        """Queue a search; returns its sequence number (only the latest one reports back)."""
        with self._search_lock:
            self._sequence += 1
            self._next_search = (self._sequence, query)
            start = not self._search_running
            self._search_running = True
        if start:
            self._searches.start(self._search_loop)
        return self._sequence

    @property
    def latest_search(self) -> int:
        return self._sequence

    def _search_loop(self) -> None:
        while True:
            with self._search_lock:
                item, self._next_search = self._next_search, None
                if item is None:
                    self._search_running = False
                    return
            sequence, query = item
            started = time.perf_counter()
            try:
                results = self.library.search(query)
            except EmptyQuery:
                results = []  # nothing to search by (empty text, no photo)
            except (PhotosearchError, OSError) as exc:
                self.searchFailed.emit(sequence, str(exc))
                continue
            except Exception as exc:  # a bug must not kill the pool thread silently
                log.exception("search failed")
                self.searchFailed.emit(sequence, f"search failed: {exc}")
                continue
            self.searchFinished.emit(sequence, results, time.perf_counter() - started)

    def browse(self, newest_first: bool = True, **filters: Any) -> int:
        """List the library by date (the timeline) with the search filters; returns a
        sequence number, reported with the photos by ``browseFinished``."""
        self._browse_sequence += 1
        sequence = self._browse_sequence
        # the latest wins: a browse still queued takes these arguments instead of another
        # being queued (while indexing, the window asks every few seconds, and reading 1M
        # photos takes ~5 s: 11 reads piled up ahead of the timeline at start-up)
        with self._search_lock:
            self._next_browse = (sequence, newest_first, filters)
            queued, self._browse_queued = self._browse_queued, True
        if queued:
            return sequence

        def work() -> None:
            from photosearch.search.timeline import photos_by_date

            with self._search_lock:
                latest, newest, chosen = self._next_browse
                self._browse_queued = False
            photos = photos_by_date(self.library.catalog, newest_first=newest, **chosen)
            self.browseFinished.emit(latest, photos)

        self._read(work)
        return sequence

    def measure_noise(self) -> None:
        """How well nonsense text matches this library (match_strength.noise_level)."""

        def work() -> None:
            from photosearch.search.match_strength import noise_level

            # nine searches: at 1M photos each scans the matrix (~0.2-0.5 s), and the app asks
            # on ready, after each index run and when folders change: measured again only
            # when the model or the number of photos it holds changed
            measured = (self.library.model_name, len(self.library.store))
            if self._noise is not None and self._noise[0] == measured:
                self.noiseMeasured.emit(self._noise[1])
                return

            def best(text: str) -> float | None:
                found = self.library.search(SearchQuery(text=text, k=1))
                return found[0].score if found else None

            noise = noise_level(best)
            self._noise = (measured, noise)
            self.noiseMeasured.emit(noise)

        self._read(work)

    def move_to_trash(self, paths: list[str]) -> None:
        """Send the photos to the platform trash and drop them from the library (the only
        change the app makes in a photo folder; the window confirms first)."""

        def work() -> None:
            from photosearch.library.trash import move_to_trash

            self.trashFinished.emit(move_to_trash(self.library, paths))

        self._write(work)

    # --- indexing --------------------------------------------------------------------------

    def index(self) -> None:
        """Scan and encode in the background; while a run is going, another follows it."""
        if self._closed:
            return
        if self.indexing:
            self._index_again = True
            return
        self.indexing = True
        self._stop.clear()
        self.indexStarted.emit()
        self._write(self._index_job, report_errors=False)

    def stop_indexing(self) -> None:
        self._index_again = False
        self._stop.set()

    def _index_job(self) -> None:
        last = 0.0

        def progress(update: IndexProgress) -> None:
            nonlocal last
            now = time.monotonic()
            if now - last >= PROGRESS_INTERVAL_S or update.done >= update.total:
                last = now
                self.indexProgress.emit(update)

        self.indexPhase.emit("Looking for new and changed photos…")
        try:
            report = self.library.index(progress=progress, should_stop=self._stop.is_set)
        except (PhotosearchError, OSError) as exc:
            self.indexFinished.emit(None, str(exc))
            return
        except Exception as exc:
            log.exception("indexing failed")
            self.indexFinished.emit(None, f"indexing failed: {exc}")
            return
        self.foldersChanged.emit(self.library.folders())
        if report.switch is not None and report.switch.switched:
            self.modelChanged.emit(report.switch.model)
        self.indexFinished.emit(report, "")

    def _after_index(self, _report: object, _error: str) -> None:
        self.indexing = False
        if self._index_again and not self._closed:
            self._index_again = False
            self.index()
        else:
            self._write(self._fill_rerank_vectors, report_errors=False)

    def _fill_rerank_vectors(self) -> None:
        """(Re)start filling the re-ranking model's vectors while nothing else runs."""
        reranker = self.library.settings.reranker
        if self._fill is not None and (self._fill.reranker is not reranker or self._fill.done):
            self._fill.stop()
            self._fill = None
        if reranker is None or self._fill is not None or self._closed:
            return
        library = self.library

        def busy() -> bool:
            watching = getattr(getattr(self.watcher, "service", None), "status", None)
            return (
                self.indexing
                or self._search_running
                or getattr(watching, "state", "watching") not in ("watching", "stopped")
            )

        self._fill = IdleFill(reranker, lambda: library_photos(library), busy).start()

    def use_reranker(self, name: str, depth: int) -> None:
        """Re-rank text searches' top ``depth`` with model ``name`` (OFF: not at all), saved
        for this library; its vectors of the photos are then filled while the app is idle."""

        def work() -> None:
            reranker = save_setting(self.library, name, depth)
            self.rerankerChanged.emit(reranker.name if reranker is not None else "")
            self._fill_rerank_vectors()

        self._write(work)

    # --- folders, settings, model ----------------------------------------------------------

    def add_folder(self, path: Path, index: bool = True) -> None:
        self.add_folders([path], index)

    def add_folders(self, paths: list[Path], index: bool = True) -> None:
        """Add folders (a quick catalog edit, allowed while indexing), then index them."""

        def work() -> None:
            try:
                for path in paths:
                    self.library.add_folder(path)
            finally:
                self.foldersChanged.emit(self.library.folders())
                self._folders_changed()

        self._read(work, then=self.index if index else None)

    def remove_folder(self, path: Path) -> None:
        """Stops a running index first: a batch must not commit vectors of dropped photos."""
        was_indexing = self.indexing
        self._stop.set()

        def work() -> None:
            self.library.remove_folder(path)
            self.foldersChanged.emit(self.library.folders())
            self._folders_changed()

        self._write(work, then=self.index if was_indexing else None)

    def refresh_folders(self) -> None:
        self._read(lambda: self.foldersChanged.emit(self.library.folders()))

    def retry_failed(self) -> None:
        """Give unreadable files another try: mark them pending, then index."""
        self._read(self.library.retry_failed, then=self.index)

    def request_status(self, failures_limit: int = 500) -> None:
        self._read(lambda: self.statusReady.emit(self.library.status(failures_limit)))

    def set_ignore_patterns(self, patterns: list[str], index: bool = True) -> None:
        self._read(
            lambda: self.library.settings.set_ignore_patterns(patterns),
            then=self.index if index else None,
        )

    def use_provider(self, name: str) -> None:
        """Reopen the encoders on another execution provider (same vectors: no re-index)."""

        def work() -> None:
            self.library.use_provider(name)
            self.library.active().encoder.warm_up(images=False)
            self.providerChanged.emit(name)

        self._write(work)

    def use_model(self, name: str) -> None:
        """Choose a model (building the bundle if a plugin offers it), then index: searches
        keep using the current model until the new one covers the library
        (Library.use_model); ``modelChanged`` reports the switch when it happens."""
        self.stop_indexing()

        def work() -> None:
            state = self.library.use_model(name)
            self.library.active().encoder.warm_up(images=False)
            if state.switched:
                self.modelChanged.emit(state.active)
            elif state.target is not None:
                self.indexPhase.emit(
                    f"Switching to {state.target}: {state.pending:,} photos to "
                    f"encode; searches use {state.active} until then"
                )
            self.foldersChanged.emit(self.library.folders())

        self._write(work, then=self.index)

    # --- plumbing --------------------------------------------------------------------------

    def _write(
        self,
        work: Callable[[], Any],
        then: Callable[[], None] | None = None,
        report_errors: bool = True,
    ) -> None:
        self._submit(self._writes, work, then, report_errors)

    def _folders_changed(self) -> None:
        if self.watcher is not None:
            self.watcher.folders_changed()

    def _read(self, work: Callable[[], Any], then: Callable[[], None] | None = None) -> None:
        self._submit(self._reads, work, then, True)

    def _submit(
        self,
        pool: QThreadPool,
        work: Callable[[], Any],
        then: Callable[[], None] | None,
        report_errors: bool,
        busy: bool = True,
    ) -> None:
        if self._closed:
            return
        done = _Done(self)
        if then is not None:
            done.succeeded.connect(then)
        if busy:  # every job but the idle release itself puts the idle release off
            done.finished.connect(self._restart_idle_timer)

        def run() -> None:
            ok = False
            try:
                work()
                ok = True
            except (PhotosearchError, OSError) as exc:
                if report_errors:
                    self.failed.emit(str(exc))
            except Exception as exc:
                log.exception("background job failed")
                self.failed.emit(f"unexpected error: {exc}")
            if ok:
                done.succeeded.emit()
            done.finished.emit()

        pool.start(run)


class _Done(QObject):
    """Carries a job's completion to the GUI thread, then deletes itself."""

    succeeded = Signal()
    finished = Signal()

    def __init__(self, parent: QObject) -> None:
        super().__init__(parent)
        self.finished.connect(self.deleteLater)
