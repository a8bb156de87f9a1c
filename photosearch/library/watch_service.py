"""WatchService: keeps a library in step with its folders while it runs (CLI now, GUI later).

On start it follows the folders with watchdog, then catches up with a full ``Library.index``;
after that every settled batch of changes goes through the same two public steps as ``index``
(``Library.apply_changes``, then ``Library.encode_pending``) in one ``Library.writing`` hold,
released between batches so a CLI ``index`` (another process) or the app's own indexing
(another thread) can get in; the watcher's long runs (catch-up, re-encoding) yield to them.
A folder whose root disappears (an unplugged disk) goes offline with its photos kept, and is
re-checked every ``root_check_s``. The vector store is saved on a timer, after
``save_every_n`` new vectors, and on stop; the catalog holds every vector, so a crash costs
no more than a store repair on open.

While the library is switching models (``Library.use_model``), the worker re-encodes photos
for the target model whenever no change is waiting, a few photos at a time: a new photo is
encoded for the active model first, so searches keep finding it during a long re-encode. Once
the target covers the library it becomes the active model (``ModelSets.reembed``).

Reading the text in photos (``Library.text.read``) is the lowest priority: a few photos at a
time, only when no change is waiting and no model switch is in progress, stopping as soon as a
change arrives. The service counts as idle meanwhile (``wait_idle``).

All work runs on one worker thread; ``on_status`` is called from it with plain data (no Qt).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from photosearch.catalog.queries import folder_rows, photo_paths_under
from photosearch.errors import LibraryLocked, PhotosearchError
from photosearch.files.scanning import FileStat, stat_photo, walk_photos
from photosearch.indexing.encode import BATCH_SIZE, IndexProgress
from photosearch.indexing.progress import format_duration
from photosearch.indexing.watching import (
    WATCHED_EVENTS,
    ChangeBatch,
    ChangeCollector,
    FolderEventHandler,
)
from photosearch.library.facade import Library
from photosearch.paths import folder_available, is_under
from photosearch.vectors.store import VectorStore

log = logging.getLogger(__name__)
SWITCH_CHECK_S = 2.0  # how often a pending model switch is looked for in the catalog
PROGRESS_REPORT_S = 2.0  # re-encoding progress reports at most this often
TEXT_LEFT_COUNT_S = 10.0  # reading-text progress reports (and their count) at most this often
READ_TEXT_STEP = 8  # photos whose text is read per step between checks for changes


@dataclass(frozen=True)
class BatchReport:
    """What one batch changed in the library."""

    paths: int
    added: int
    changed: int
    moved: int
    removed: int
    duplicates: int
    encoded: int
    failed: int
    offline: tuple[str, ...]
    seconds: float


WatchState = Literal[
    "starting", "catching-up", "watching", "indexing", "re-encoding", "waiting", "stopped", "failed"
]


@dataclass(frozen=True)
class WatchStatus:
    """``state``: re-encoding is for the model being switched to; waiting is for another
    writer (another process, or the app's own indexing). Counters are totals since start."""

    state: WatchState
    message: str = ""
    folders: int = 0
    pending: int = 0
    batches: int = 0
    encoded: int = 0
    failed: int = 0
    last_batch: BatchReport | None = None
    error: str | None = None
    model: str = ""  # the model searches use (it changes when a model switch completes)
    reencoded: int = 0  # photos encoded for the model being switched to (not in ``encoded``)


StatusCallback = Callable[[WatchStatus], None]


@dataclass
class _Root:
    path: str
    was_mount: bool
    watch: object | None = None  # watchdog ObservedWatch while scheduled


class WatchService:
    """``start()`` returns at once; ``stop()`` finishes the batch in flight, saves, and joins.

    Timings are seconds. ``lock_wait_s`` is how long each try for the write lock waits before
    reporting ``waiting`` and trying again.
    """

    def __init__(
        self,
        library: Library,
        *,
        on_status: StatusCallback | None = None,
        settle_s: float = 0.75,
        quiet_s: float = 0.5,
        max_delay_s: float = 5.0,
        max_batch: int = 10_000,
        save_every_s: float = 30.0,
        save_every_n: int = 500,
        root_check_s: float = 15.0,
        lock_wait_s: float = 1.0,
        batch_size: int | None = None,
    ) -> None:
        self.library = library
        self.on_status = on_status
        self.save_every_s = save_every_s
        self.save_every_n = save_every_n
        self.root_check_s = root_check_s
        self.lock_wait_s = lock_wait_s
        self.batch_size = batch_size or BATCH_SIZE
        self.rules = library.ignore_rules()
        self.collector = ChangeCollector(
            self.rules,
            settle_s=settle_s,
            quiet_s=quiet_s,
            max_delay_s=max_delay_s,
            max_batch=max_batch,
        )
        self._stop = threading.Event()
        self._idle = threading.Event()
        self._folders_changed = threading.Event()
        self._thread: threading.Thread | None = None
        self._observer = None
        self._roots: dict[str, _Root] = {}
        self._status = WatchStatus("starting")
        self._store: VectorStore | None = None  # set once caught up
        self._unsaved = 0
        self._last_save = time.monotonic()
        self._last_root_check = time.monotonic()
        self._switching = False  # a target model is pending and re-encoding may proceed
        self._switch_failed: str | None = None  # target whose re-encoding raised; not retried
        self._reembed_after = 0.0  # back-off when a step could not progress
        self._last_switch_check = 0.0
        self._last_progress_report = 0.0
        self._text_due = False  # photos may be waiting for their text to be read

    # --- public --------------------------------------------------------------------------

    @property
    def status(self) -> WatchStatus:
        return self._status

    def start(self) -> None:
        """Start following the folders and catching up (in the background)."""
        if self._thread is not None:
            return
        from watchdog.observers import Observer

        self._observer = Observer()
        for info in self.library.folders():
            self._roots[info.path] = _Root(info.path, os.path.ismount(info.path))
        self._observer.start()
        self._refresh_watches()  # before the catch-up, so nothing landing meanwhile is missed
        self._thread = threading.Thread(target=self._run, name="photosearch-watch", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 60.0) -> None:
        """Stop after the batch in flight and save the vector store. Safe to call twice."""
        self._stop.set()
        self.collector.wake()
        if self._thread is not None:
            self._thread.join(timeout)
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout)
            self._observer = None

    def folders_changed(self) -> None:
        """The library's folders were added or removed (any thread): follow them from the
        worker's next tick. Also noticed every ``root_check_s`` (e.g. another process's)."""
        self._folders_changed.set()
        self.collector.wake()

    def wait_idle(self, timeout: float) -> bool:
        """True once caught up with nothing pending (for tests, benchmarks and scripts)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (
                self._idle.wait(min(0.05, max(0.0, deadline - time.monotonic())))
                and not self.collector.pending
            ):
                return True
        return False

    # --- worker --------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._catch_up()
            while not self._stop.is_set():
                reembed = self._switching and time.monotonic() >= self._reembed_after
                read_text = self._text_due and not self._switching
                if not self._switching:
                    self._idle.set()
                self.collector.wait(
                    0.0
                    if (reembed or read_text) and not self.collector.pending
                    else self._next_timeout()
                )
                if self._stop.is_set():
                    break
                if self.collector.pending:
                    self._idle.clear()  # before taking, so wait_idle never sees a gap
                batch = self.collector.take_ready()
                if batch is not None:
                    self._process(batch)
                elif reembed and not self.collector.pending:
                    self._reembed_step()
                elif read_text and not self.collector.pending:
                    self._read_text_step()
                self._periodic()
        except Exception as exc:  # the GUI must hear of it; the CLI prints it
            log.exception("watcher failed")
            self._report(
                replace(
                    self._status, state="failed", error=str(exc), message=f"watching stopped: {exc}"
                )
            )
            self._stop.set()
            return
        finally:
            self._idle.set()
            self._final_save()
        self._report(replace(self._status, state="stopped", message="stopped", pending=0))

    def _catch_up(self) -> None:
        self._report(
            replace(
                self._status,
                state="catching-up",
                message="checking the folders against the library",
            )
        )
        with self._writing() as writing:
            if not writing:
                return
            report = self.library.index(
                should_stop=self._should_yield, batch_size=self.batch_size, reembed=False
            )  # see _run
            self._last_save = time.monotonic()
            self._store = self.library.store
            for path in report.scan.offline_folders:
                self._set_offline(path)
            self._refresh_watches()
            self._report(
                replace(
                    self._status,
                    state="watching",
                    folders=self._online_count(),
                    encoded=self._status.encoded + report.encoding.encoded,
                    failed=self._status.failed + report.encoding.failed,
                    message=f"caught up: {report.encoding.encoded} encoded; watching "
                    f"{self._online_count()} folders",
                )
            )
            self._check_switch(force=True)
            self._text_due = True

    def _should_yield(self) -> bool:
        """Stop a long run: asked to stop, or another thread of this process waits to write."""
        return self._stop.is_set() or self.library.lock.contended

    def _process(self, batch: ChangeBatch) -> None:
        """Reconcile and encode one batch in one ``Library.writing`` hold (retried while another
        writer holds it; the batch is kept meanwhile)."""
        started = time.monotonic()
        self._report(
            replace(
                self._status,
                state="indexing",
                pending=self.collector.pending,
                message=f"{len(batch)} changed paths",
            )
        )
        with self._writing() as writing:
            if not writing:
                return
            offline = self._check_roots(self._roots_of(batch))
            observed = self._observe(batch)
            changes = self.library.apply_changes(observed)
            encoding = self.library.encode_pending(
                should_stop=self._should_yield, batch_size=self.batch_size, save=False
            )
            self._unsaved += encoding.encoded + changes.duplicates + changes.moved + changes.removed
            self._text_due = self._text_due or encoding.encoded > 0
            self._save_if_due(locked=True)
        report = BatchReport(
            paths=len(observed),
            added=len(changes.added),
            changed=len(changes.changed),
            moved=changes.moved,
            removed=changes.removed,
            duplicates=changes.duplicates,
            encoded=encoding.encoded,
            failed=encoding.failed,
            offline=tuple(offline),
            seconds=time.monotonic() - started,
        )
        self._report(
            replace(
                self._status,
                state="watching",
                pending=self.collector.pending,
                batches=self._status.batches + 1,
                encoded=self._status.encoded + encoding.encoded,
                failed=self._status.failed + encoding.failed,
                last_batch=report,
                folders=self._online_count(),
                message=_describe(report),
            )
        )

    def _observe(self, batch: ChangeBatch) -> dict[str, FileStat | None]:
        """Stat every path of the batch; a gone folder stands for every photo known under it."""
        online = [root.path for root in self._roots.values() if root.watch is not None]
        observed: dict[str, FileStat | None] = {}
        for path in batch.paths:
            if any(is_under(path, root) for root in online):
                observed[path] = stat_photo(path)
        for directory in batch.gone_dirs:
            if not any(is_under(directory, root) for root in online):
                continue
            for path in photo_paths_under(self.library.catalog, directory):
                if path not in observed:
                    observed[path] = stat_photo(path)
        return observed

    # --- folders going and coming back ------------------------------------------------------

    def _roots_of(self, batch: ChangeBatch) -> list[_Root]:
        touched = []
        for root in self._roots.values():
            if root.watch is None:
                continue
            if any(is_under(p, root.path) for p in batch.paths) or any(
                is_under(d, root.path) or is_under(root.path, d) for d in batch.gone_dirs
            ):
                touched.append(root)
        return touched

    def _check_roots(self, roots: list[_Root]) -> list[str]:
        """Take roots that vanished offline; returns their paths. Caller holds the lock."""
        gone = [root.path for root in roots if not self._available(root)]
        for path in gone:
            self._set_offline(path)
        return gone

    def _available(self, root: _Root) -> bool:
        return folder_available(root.path, was_mount=root.was_mount)

    def _set_offline(self, path: str) -> None:
        self.library.set_folder_online(path, False)
        root = self._roots.get(path)
        if root is not None and root.watch is not None:
            self._unschedule(root)
        log.info("folder offline (photos kept): %s", path)

    def _periodic(self) -> None:
        now = time.monotonic()
        if self._folders_changed.is_set() or now - self._last_root_check >= self.root_check_s:
            self._folders_changed.clear()
            self._last_root_check = now
            self._follow_folders()
            self._recheck_roots()
        self._check_switch()
        self._save_if_due(locked=False)

    # --- model switch ----------------------------------------------------------------------

    def _check_switch(self, force: bool = False) -> None:
        """Notice a switch recorded by ``models use`` (here or in another process) and an
        active model changed by another process; a catalog read every couple of seconds."""
        now = time.monotonic()
        if not force and now - self._last_switch_check < SWITCH_CHECK_S:
            return
        self._last_switch_check = now
        if self.library.models.follow_saved():
            self._store = self.library.store
        target = self.library.target_model
        switching = target is not None and target != self._switch_failed
        if switching and not self._switching:
            self._idle.clear()
            self._reembed_after = 0.0
        self._switching = switching

    def _reembed_step(self) -> None:
        """Encode for the target model until done, stopped, or a change arrives; switch over
        when the target covers the library."""
        target = self.library.target_model
        with self._writing() as writing:
            if not writing:
                return
            try:
                report = self.library.models.reembed(
                    progress=self._report_reembed,
                    should_stop=lambda: self._should_yield() or self.collector.pending > 0,
                    batch_size=self.batch_size,
                    save=False,
                )
            except PhotosearchError as exc:
                log.warning("re-encoding for %s failed: %s", target, exc)
                self._switch_failed, self._switching = target, False
                self._report(
                    replace(
                        self._status,
                        state="watching",
                        message=f"re-encoding for {target} stopped: {exc}",
                    )
                )
                return
            if report is not None:
                self._unsaved += report.encoding.encoded
            if report is not None and report.switched:
                self._store = self.library.store
            self._save_if_due(locked=True)
        if report is None or report.switched:
            self._switching = False
        if report is None:
            return
        encoding = report.encoding
        if (
            not encoding.stopped
            and not report.switched
            and not (encoding.encoded or encoding.failed or encoding.vanished)
        ):
            self._reembed_after = time.monotonic() + self.root_check_s  # nothing could move
        message = (
            f"switched to {report.model}: its vectors cover the library; searches use it now"
            if report.switched
            else f"re-encoding for {report.model}: {report.remaining} photos left"
        )
        self._report(
            replace(
                self._status,
                state="watching" if report.switched else "re-encoding",
                reencoded=self._status.reencoded + encoding.encoded,
                message=message,
            )
        )

    def _read_text_step(self) -> None:
        """Read the text in a few photos (photosearch.indexing.text_reading); stops at a change."""
        # what is left is counted only for a progress report, at most every TEXT_LEFT_COUNT_S
        # (the count reads every pending row: ~1 s at 1M photos)
        report_due = time.monotonic() - self._last_progress_report >= TEXT_LEFT_COUNT_S
        try:
            report = self.library.text.read(
                should_stop=lambda: self._stop.is_set() or self.collector.pending > 0,
                lock_wait_s=self.lock_wait_s,
                limit=READ_TEXT_STEP,
                count_left=report_due,
            )
        except LibraryLocked:
            self._report_waiting()
            return
        except PhotosearchError as exc:
            log.warning("reading text in photos stopped: %s", exc)
            self._text_due = False
            return
        if report is None or (report.remaining == 0 and not report.stopped):
            self._text_due = False
        now = time.monotonic()
        if (
            report is not None
            and report.read
            and (not self._text_due or report.remaining is not None)
            and (not self._text_due or now - self._last_progress_report >= TEXT_LEFT_COUNT_S)
        ):
            self._last_progress_report = now
            message = (
                f"reading text in photos: {report.remaining} left"
                if self._text_due
                else f"text in photos read; watching {self._online_count()} folders"
            )
            self._report(
                replace(
                    self._status,
                    state="reading-text" if self._text_due else "watching",
                    message=message,
                )
            )

    def _report_reembed(self, update: IndexProgress) -> None:
        now = time.monotonic()
        if now - self._last_progress_report < PROGRESS_REPORT_S and update.done < update.total:
            return
        self._last_progress_report = now
        self._report(
            replace(
                self._status,
                state="re-encoding",
                message=f"re-encoding for {update.model}: {update.done}/{update.total} photos, "
                f"{update.rate:.1f} photos/s, ETA {format_duration(update.eta_s)}",
            )
        )

    def _recheck_roots(self) -> None:
        """Cheap: one stat per root. Roots that vanished go offline; roots that came back are
        watched again and caught up (moved photos keep their vectors)."""
        for root in list(self._roots.values()):
            available = self._available(root)
            if root.watch is not None and not available:
                with self._writing() as writing:
                    if writing:
                        self._set_offline(root.path)
                if writing:
                    self._report(
                        replace(
                            self._status,
                            folders=self._online_count(),
                            message=f"offline (photos kept): {root.path}",
                        )
                    )
            elif root.watch is None and available:
                with self._writing() as writing:
                    if writing:
                        self.library.set_folder_online(root.path, True)
                if not writing:
                    return
                self._schedule(root)
                found = [f.path for f in walk_photos(Path(root.path), self.rules)]
                self.collector.add_paths(found, [root.path])
                self._report(
                    replace(
                        self._status,
                        folders=self._online_count(),
                        message=f"back online: {root.path}",
                    )
                )

    def _follow_folders(self) -> None:
        """Watch folders added to the library since the last look (their photos so far are
        queued, as for a folder back online) and drop removed ones."""
        known = set(self._roots)
        self._refresh_watches()
        for path in set(self._roots) - known:
            root = self._roots[path]
            if root.watch is not None:
                found = [f.path for f in walk_photos(Path(path), self.rules)]
                self.collector.add_paths(found, [path])

    def _refresh_watches(self) -> None:
        """Follow the catalog's folder list: watch listed online roots that can be read, stop
        watching removed or offline ones. A watched root that vanished stays watched here, so
        that ``_check_roots``/``_recheck_roots`` take it offline in the catalog too."""
        infos = {row.path: row for row in folder_rows(self.library.catalog)}  # no photo counts
        for path in infos:
            self._roots.setdefault(path, _Root(path, os.path.ismount(path)))
        for root in list(self._roots.values()):
            info = infos.get(root.path)
            listed = info is not None and info.online
            if listed and root.watch is None and self._available(root):
                self._schedule(root)
            elif not listed and root.watch is not None:
                self._unschedule(root)
            if info is None:
                del self._roots[root.path]

    def _schedule(self, root: _Root) -> None:
        try:
            root.watch = self._observer.schedule(  # type: ignore[union-attr]
                FolderEventHandler(root.path, self.collector),
                root.path,
                recursive=True,
                event_filter=WATCHED_EVENTS,
            )
        except OSError as exc:  # e.g. inotify watch limit: catch-up still covers the folder
            log.warning("cannot watch %s: %s", root.path, exc)
            root.watch = None

    def _unschedule(self, root: _Root) -> None:
        with contextlib.suppress(KeyError, OSError):
            self._observer.unschedule(root.watch)  # type: ignore[union-attr, arg-type]
        root.watch = None

    def _online_count(self) -> int:
        return sum(1 for root in self._roots.values() if root.watch is not None)

    # --- lock and saving --------------------------------------------------------------------

    @contextlib.contextmanager
    def _writing(self) -> Iterator[bool]:
        """Hold ``Library.writing``, reporting ``waiting`` while another writer (a process, or
        a thread of this one) holds it; yields False when asked to stop first."""
        told = False
        with contextlib.ExitStack() as stack:
            while not self._stop.is_set():
                try:
                    stack.enter_context(
                        self.library.writing(self.lock_wait_s, thread_wait_s=self.lock_wait_s)
                    )
                except LibraryLocked:
                    if not told:
                        self._report_waiting()
                        told = True
                    continue
                if told:
                    self._report(replace(self._status, state="indexing", message="resuming"))
                yield True
                return
            yield False

    def _report_waiting(self) -> None:
        holder = self.library.lock.holder()
        who = (
            "another task of this process (indexing)"
            if self.library.lock.writing_elsewhere_here
            else f"another photosearch process (pid {holder or '?'})"
        )
        self._report(
            replace(
                self._status,
                state="waiting",
                pending=self.collector.pending,
                message=f"waiting for {who} to finish writing to the library",
            )
        )

    def _dirty_stores(self) -> list[VectorStore]:
        """Open stores with unsaved vectors (active, and the switch target's), once caught up."""
        if self._store is None:
            return []
        return [store for store in self.library.models.open_stores() if store.dirty]

    def _save_if_due(self, *, locked: bool) -> None:
        stores = self._dirty_stores()
        if not stores:
            return
        due = (
            self._unsaved >= self.save_every_n
            or time.monotonic() - self._last_save >= self.save_every_s
        )
        if not due:
            return
        if locked:
            self._save(stores)
            return
        with contextlib.suppress(LibraryLocked), self.library.writing(0.0, thread_wait_s=0.0):
            self._save(stores)  # else: busy, try again at the next tick

    def _save(self, stores: list[VectorStore]) -> None:
        for store in stores:
            store.save()
        self.library.indexer.save_hash_file()  # for one-shot searches once this stops
        self._unsaved = 0
        self._last_save = time.monotonic()

    def _final_save(self) -> None:
        stores = self._dirty_stores()
        if not stores and self.library.readonly:
            return
        wait_s = 10.0 if stores else 0.0  # else only the hash file, if nobody else writes
        try:
            with self.library.writing(wait_s, thread_wait_s=wait_s):
                self._save(stores)
        except LibraryLocked:
            if stores:
                log.warning("vector store not saved on stop (library busy); it is rebuilt on open")

    def _next_timeout(self) -> float:
        poll = self.collector.poll_interval()
        until_check = max(0.0, self.root_check_s - (time.monotonic() - self._last_root_check))
        timeout = until_check if poll is None else min(poll, until_check)
        timeout = min(timeout, SWITCH_CHECK_S)
        if self._dirty_stores():
            timeout = min(
                timeout, max(0.0, self.save_every_s - (time.monotonic() - self._last_save))
            )
        return max(0.05, timeout)

    def _report(self, status: WatchStatus) -> None:
        if self._store is not None:  # caught up: the model is open, reading its name is free
            status = replace(status, model=self.library.model_name)
        self._status = status
        if self.on_status is None:
            return
        try:
            self.on_status(status)
        except Exception:  # a listener's bug must not stop the watcher
            log.exception("watch status listener failed")


def _describe(report: BatchReport) -> str:
    parts = [
        f"{count} {label}"
        for count, label in (
            (report.added, "new"),
            (report.changed, "changed"),
            (report.moved, "moved"),
            (report.removed, "removed"),
            (report.duplicates, "copies"),
            (report.encoded, "encoded"),
            (report.failed, "failed"),
        )
        if count
    ]
    parts += [f"offline: {path}" for path in report.offline]
    return ", ".join(parts) or "no changes"
