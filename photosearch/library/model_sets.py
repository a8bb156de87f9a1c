"""ModelSets: which model's vectors a library uses, and switching to another without a gap.

A library keeps one vector set per bundle identity. ``ModelSets`` opens the *active* model's
encoder, catalog id and HNSW store (searches and new photos use them) and, while a switch is
pending, the *target*'s (see ``photosearch.library.model_switch`` for the catalog side). ``reembed``
encodes what the target still lacks and makes it active once it covers the library.

Switching and encoding (model_switch, indexing.encode, and with them SQLAlchemy) are imported
by the methods that do them: opening the active model for a search needs neither.

Thread-safety: the GUI searches on one thread while another indexes, so everything lazily
opened here is created under one lock, and callers take an ``ActiveModel`` (encoder, id and store
together) so a switch made meanwhile never pairs one model's encoder with another's vectors.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from photosearch.catalog import Catalog, vector_changes
from photosearch.catalog.reads import model_id_of, only_model_name
from photosearch.errors import PhotosearchError
from photosearch.library import saved_vectors
from photosearch.library.active_model import ACTIVE_MODEL_KEY, TARGET_MODEL_KEY, ActiveModel
from photosearch.library.heap import give_back_freed_heap
from photosearch.models.bundle import bundle_identity
from photosearch.models.providers import ModelRegistry
from photosearch.models.runtime import Encoder, providers_for
from photosearch.vectors.store import SavedGraphDamaged, SyncReport, VectorStore, store_stem

if TYPE_CHECKING:
    from photosearch.indexing.encode import IndexProgress, ProgressCallback
    from photosearch.library.model_switch import (
        DroppedSet,
        ReembedReport,
        SwitchState,
        VectorSetInfo,
    )

NO_MODEL_ID = -1  # the model id of an identity a read-only library never registered

log = logging.getLogger(__name__)


class ModelSets:
    """The active model (and a pending switch's target) of one library, opened lazily.

    ``model``: a name given for this process only (``--model``); it is never replaced by a
    switch recorded in the catalog. ``provider`` returns the execution provider to open
    encoders on (read when an encoder is opened).
    """

    def __init__(
        self,
        catalog: Catalog,
        registry: ModelRegistry,
        vectors_dir: Path,
        *,
        model: str | None,
        threads: int | None,
        provider: Callable[[], str],
        model_progress: Callable[[str], None],
        one_shot: bool = False,
    ) -> None:
        self.catalog = catalog
        self.one_shot = one_shot  # VectorStore's one_shot: a process that searches once
        self.matrix_first = False  # VectorStore's matrix_first, for the stores opened from now
        self.registry = registry
        self.vectors_dir = vectors_dir
        self.threads = threads
        self.provider = provider
        self.model_progress = model_progress
        self._name = model
        self._explicit = model is not None
        self._encoder: Encoder | None = None
        self._model_id: int | None = None
        self._store: VectorStore | None = None
        self._target: ActiveModel | None = None
        self._lock = threading.RLock()

    # --- the active model ------------------------------------------------------------------

    @property
    def name(self) -> str:
        """The model searches use: explicit, else saved, else the default."""
        with self._lock:
            if self._name is None:
                self._name = self.saved_name()
            return self._name

    def saved_name(self) -> str:
        """The library's active model as recorded in the catalog (ignoring ``--model``). One
        never switched has no record: the model its vectors were made with when only one
        (installed) made any, else the registry's default. (Asking the plugins for their
        default reads every installed package's entry points: 20-35 ms of each search.)"""
        recorded = self.catalog.get_meta(ACTIVE_MODEL_KEY)
        if recorded:
            return recorded
        only = only_model_name(self.catalog)
        if only is not None and self.registry.path_of(only) is not None:
            return only
        return self.registry.default_model_name()

    @property
    def encoder(self) -> Encoder:
        with self._lock:
            if self._encoder is None:
                self._encoder = self._open_encoder(self.name)
            return self._encoder

    @property
    def model_id(self) -> int:
        with self._lock:
            if self._model_id is None:
                self._model_id = self._register(self.encoder)
            return self._model_id

    @property
    def store(self) -> VectorStore:
        """The active model's HNSW store, checked against the catalog when first opened."""
        with self._lock:
            if self._store is None:
                self._store = self._open_store(self.encoder, self.model_id)
            return self._store

    def active(self) -> ActiveModel:
        with self._lock:
            return ActiveModel(self.name, self.encoder, self.model_id, self.store)

    def reopen_encoders(self) -> None:
        """Drop the active encoder (e.g. for another execution provider); same vectors."""
        with self._lock:
            self._encoder = None

    def open_stores(self) -> list[VectorStore]:
        """The stores open now (active and switch target), for savers."""
        with self._lock:
            stores = [self._store] if self._store is not None else []
            if self._target is not None:
                stores.append(self._target.store)
            return stores

    def sync_open_stores(self) -> None:
        """Bring every open store in line with the catalog (after a scan, a removal)."""
        with self._lock:
            sets = [(self._store, self.model_id)] if self._store is not None else []
            if self._target is not None:
                sets.append((self._target.store, self._target.model_id))
        for store, model_id in sets:
            self._catch_up(store, model_id)

    def release_idle_memory(self) -> None:
        """Give back what an idle library holds for speed alone: the active encoder's image
        session (nothing is left to encode), what the open stores can drop
        (``VectorStore.release_memory``) and freed heap."""
        with self._lock:
            encoder = self._encoder
        if encoder is not None:
            encoder.close_image_session()
        for store in self.open_stores():
            store.release_memory()
        give_back_freed_heap()

    # --- switching -------------------------------------------------------------------------

    @property
    def target_name(self) -> str | None:
        """The model being switched to (read from the catalog, so another process's choice
        is seen)."""
        return self.catalog.get_meta(TARGET_MODEL_KEY) or None

    def choose(self, name: str) -> SwitchState:
        """Choose the library's model without leaving it unsearchable.

        When ``name``'s vectors already cover every readable photo (switching back, or an
        empty library) the switch is immediate. Otherwise ``name`` becomes the target:
        ``index``, ``watch`` and the app encode photos for it in the background while searches
        keep using the current model, and switch over once it covers the library. Choosing
        the active model cancels a pending switch (vectors made so far are kept). Raises
        ModelNotFound when the bundle is neither installed nor buildable offline.
        """
        from photosearch.indexing.encode import pending_count
        from photosearch.library.model_switch import (
            SwitchState,
            covered_count,
            record_switch,
            record_target,
        )

        self.registry.ensure(name, progress=self.model_progress)
        self.follow_saved()
        active = self.saved_name()
        previous = self.target_name
        with self._lock:
            if name == active:
                record_target(self.catalog, None)
                self._target = None
                model_id = (
                    self.model_id
                    if not self._explicit
                    else self._register(self._open_encoder(name))
                )
                return SwitchState(
                    active,
                    None,
                    covered_count(self.catalog, model_id),
                    pending_count(self.catalog, model_id),
                    cancelled=previous if previous != name else None,
                )
            encoder = self._open_encoder(name)
            model_id = self._register(encoder)
            covered = covered_count(self.catalog, model_id)
            pending = pending_count(self.catalog, model_id)
            if pending:
                record_target(self.catalog, name)
                return SwitchState(active, name, covered, pending)
            self._save_open_stores()
            record_switch(self.catalog, name)
            self._target = None
            if not self._explicit:
                self._name = name
                self._encoder, self._model_id, self._store = encoder, model_id, None
            return SwitchState(
                name,
                None,
                covered,
                0,
                switched=True,
                cancelled=previous if previous not in (None, name) else None,
            )

    def follow_saved(self) -> bool:
        """Pick up a switch recorded by another process (or another Library on the same
        directory); True if the active model changed. One catalog read."""
        if self._explicit or self._name is None:
            return False
        saved = self.catalog.get_meta(ACTIVE_MODEL_KEY)
        with self._lock:
            if not saved or saved == self._name:
                return False
            log.info("the library switched to %s (recorded by another process)", saved)
            self._name = saved
            self._encoder = self._store = None
            self._model_id = None
            self._target = None
            return True

    def target(self) -> ActiveModel | None:
        """The target's encoder, id and store (opened on first use); None when no switch is
        pending."""
        name = self.target_name
        with self._lock:
            if name is None:
                self._target = None
                return None
            if name == self.name:  # `--model TARGET index`: the active phase did the work
                self._target = None
                return self.active()
            if self._target is None or self._target.name != name:
                try:
                    encoder = self._open_encoder(name)
                except PhotosearchError as exc:
                    raise type(exc)(
                        f"cannot encode for {name}, the model this library is switching to: "
                        f"{exc}; `photosearch models use {self.saved_name()}` cancels the "
                        f"switch"
                    ) from exc
                model_id = self._register(encoder)
                self._target = ActiveModel(
                    name, encoder, model_id, self._open_store(encoder, model_id)
                )
            return self._target

    def reembed(
        self,
        progress: ProgressCallback | None = None,
        should_stop: Callable[[], bool] | None = None,
        batch_size: int | None = None,
        save: bool = True,
    ) -> ReembedReport | None:
        """Encode photos lacking a vector for the target; switch once none is left. The
        caller is inside ``Library.writing``."""
        from photosearch.indexing.encode import BATCH_SIZE, encode_pending, pending_count
        from photosearch.library.model_switch import ReembedReport

        target = self.target()
        if target is None:
            return None
        report: ProgressCallback | None = None
        if progress is not None:

            def report(update: IndexProgress) -> None:
                progress(replace(update, model=target.name))

        encoding = encode_pending(
            self.catalog,
            target.store,
            target.encoder,
            target.model_id,
            progress=report,
            should_stop=should_stop,
            batch_size=batch_size or BATCH_SIZE,
            save=save,
        )
        remaining = pending_count(self.catalog, target.model_id)
        switched = remaining == 0 and self._complete_switch(target)
        return ReembedReport(
            target.name, target.encoder.identity, encoding, remaining, switched=switched
        )

    def drop(self, key: str) -> DroppedSet:
        """Delete one vector set, named by identity or model name; refuses the active set
        and a pending switch's. The caller is inside ``Library.writing``."""
        from photosearch.library.model_switch import (
            ModelSetInUse,
            drop_vector_set,
            find_vector_sets,
        )

        matches = find_vector_sets(self.catalog, key)
        if not matches:
            raise PhotosearchError(
                f"this library has no vector set {key!r}; `photosearch status` lists them"
            )
        if len(matches) > 1:
            raise PhotosearchError(
                f"{key!r} names {len(matches)} vector sets: "
                f"{', '.join(i for i, _ in matches)}; give one of these identities"
            )
        identity, name = matches[0]
        active = self.saved_name()
        in_use = {self.identity_of(active), self.identity_of(self.name)}
        if identity in in_use or (None in in_use and name in (active, self.name)):
            raise ModelSetInUse(
                f"{identity} is the active model's vector set (searches use it); switch to "
                f"another model first with `photosearch models use NAME`"
            )
        target = self.target_name
        if target is not None:
            target_identity = self.identity_of(target)
            if identity == target_identity or (target_identity is None and name == target):
                raise ModelSetInUse(
                    f"{identity} is being encoded for the switch to {target}; cancel the "
                    f"switch first with `photosearch models use {active}`"
                )
        with self._lock:
            if self._target is not None and self._target.encoder.identity == identity:
                self._target = None
        return drop_vector_set(self.catalog, self.vectors_dir, identity)

    def coverage(self) -> list[VectorSetInfo]:
        """Every vector set in the catalog with its coverage; active and target marked."""
        from photosearch.library.model_switch import (
            VectorSetInfo,
            readable_photo_count,
            vector_sets,
        )

        photos = readable_photo_count(self.catalog)
        active = self.identity_of(self.name)  # not self.encoder: status loads no model
        target_name = self.target_name
        target = self.identity_of(target_name) if target_name else None
        sets = []
        for identity, name, count in vector_sets(self.catalog):
            if count == 0 and identity not in (active, target):
                continue  # registered, never filled (a switch cancelled at once)
            files = (  # graph, float16 matrix and its ids, slots, commit point
                self.vectors_dir.glob(f"{store_stem(identity)}.*")
                if self.vectors_dir.is_dir()
                else []
            )
            sets.append(
                VectorSetInfo(
                    name,
                    identity,
                    count,
                    photos,
                    identity == active,
                    identity == target,
                    sum(p.stat().st_size for p in files if p.is_file()),
                )
            )
        sets.sort(key=lambda s: (not s.active, not s.target, s.name, s.identity))
        return sets

    # --- internals -------------------------------------------------------------------------

    def _open_encoder(self, name: str) -> Encoder:
        path = self.registry.ensure(name, progress=self.model_progress)
        return Encoder(
            path,
            threads=self.threads,
            providers=providers_for(self.provider()),
            optimize_graphs=not self.one_shot,  # one query: optimising costs more than it saves
        )

    def _register(self, encoder: Encoder) -> int:
        """The catalog id of an encoder's identity, registering it on first use (on a
        read-only catalog an unregistered identity has no vectors: NO_MODEL_ID)."""
        if self.catalog.readonly:
            found = model_id_of(self.catalog, encoder.identity)
            return NO_MODEL_ID if found is None else found
        from sqlalchemy import select
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        from photosearch.catalog import Model

        with self.catalog.session() as session:
            # another process (the CLI beside the app) may register it at the same time
            session.execute(
                sqlite_insert(Model)
                .values(
                    identity=encoder.identity,
                    name=encoder.config.name,
                    embed_dim=encoder.embed_dim,
                    created_at=datetime.now(),
                )
                .on_conflict_do_nothing(index_elements=["identity"])
            )
            model_id = session.scalar(select(Model.id).where(Model.identity == encoder.identity))
        assert model_id is not None
        return int(model_id)

    def _open_store(self, encoder: Encoder, model_id: int) -> VectorStore:
        # a one-shot store re-scores from the catalog's vectors (each checked on its own), so
        # it never has to read, nor check, the whole graph file
        slots = saved_vectors.slots_for(self.vectors_dir, encoder.identity, encoder.embed_dim)
        store = VectorStore(
            self.vectors_dir,
            encoder.identity,
            encoder.embed_dim,
            one_shot=self.one_shot,
            read_vectors=lambda ids: saved_vectors.read(self.catalog, model_id, slots, ids),
        )
        store.matrix_first = self.matrix_first
        report = self._catch_up(store, model_id)
        if report.added or report.removed or report.rebuilt:
            log.info(
                "vector store %s brought up to date from the catalog: %s", encoder.identity, report
            )
        if not self.catalog.readonly:
            # an older library's vectors (or a killed writer's) move into the slot file now
            moved = saved_vectors.spill(self.catalog, model_id, self._slots(store))
            if saved_vectors.worth_compacting(self.catalog, moved, store.dim):
                self.catalog.compact()  # an older library's BLOBs moved out: give back space
            store.before_save = lambda: self._catch_up_and_spill(store, model_id)
            store.after_save = lambda: self._prune_changes(store, model_id)
        return store

    def _catch_up(self, store: VectorStore, model_id: int) -> SyncReport:
        """Bring ``store`` in line with the catalog: replay the change log after the store's
        position (O(changes)); compare every id only when the position is unknown or the log
        no longer reaches back to it (a store saved before v5, a rebuilt graph, a restored
        catalog)."""
        with store.lock:
            known = store.catalog_position
            if known is not None:
                changes = vector_changes.changes_since(
                    self.catalog, model_id, vector_changes.Position(*known)
                )
                if changes.complete:
                    try:
                        ids, vectors = saved_vectors.read_present(
                            self.catalog, model_id, self._slots(store), changes.ids
                        )
                        report = store.apply(ids, vectors, set(changes.ids) - set(ids.tolist()))
                        if store.needs_compaction:
                            report = self._compare_all(store, model_id)
                        store.catalog_position = tuple(changes.through)
                        if store.catalog_position != tuple(known) and not self.catalog.readonly:
                            # even a log that changed no vector (a photo's hash or presence
                            # set again) is recorded, or every later open replays it again
                            store.mark_dirty()
                        return report
                    except SavedGraphDamaged:  # the store is empty now: filled in full below
                        pass
            through = vector_changes.current_position(self.catalog)
            report = self._compare_all(store, model_id)
            store.catalog_position = tuple(through)
            if not self.catalog.readonly:
                store.mark_dirty()  # the next writer records the position
            return report

    def _compare_all(self, store: VectorStore, model_id: int) -> SyncReport:
        present = vector_changes.present_ids(self.catalog, model_id)
        try:
            return store.sync(present, self._fetcher(model_id, store))
        except SavedGraphDamaged:  # a one-shot store's deferred check: it is empty now
            return store.sync(present, self._fetcher(model_id, store))

    def _catch_up_and_spill(self, store: VectorStore, model_id: int) -> None:
        """Before a save: the graph catches up, then the vectors written inline since the
        last save move into the slot file (the catalog keeps only references at rest)."""
        self._catch_up(store, model_id)
        saved_vectors.spill(self.catalog, model_id, self._slots(store))

    def _slots(self, store: VectorStore) -> saved_vectors.VectorSlots:
        return saved_vectors.slots_for(self.vectors_dir, store.identity, store.dim)

    def _prune_changes(self, store: VectorStore, model_id: int) -> None:
        """After a save: the log rows the saved graph reflects are no longer needed."""
        if store.catalog_position is not None:
            vector_changes.prune(
                self.catalog, model_id, vector_changes.Position(*store.catalog_position)
            )

    def identity_of(self, name: str) -> str | None:
        """The identity of the installed bundle ``name`` (None when not installed)."""
        with self._lock:
            for opened in (self._encoder, self._target.encoder if self._target else None):
                if opened is not None and opened.config.name == name:
                    return opened.identity
        path = self.registry.path_of(name)
        return bundle_identity(path) if path is not None else None

    def _complete_switch(self, target: ActiveModel) -> bool:
        """Make the complete target the active set, unless the choice changed meanwhile."""
        from photosearch.library.model_switch import record_switch

        with self._lock:
            self._save_open_stores()
            self._target = None
            if not record_switch(self.catalog, target.name, only_if_target=True):
                log.info("not switching to %s: the library's choice changed meanwhile", target.name)
                return False
            log.info("switched to %s: its vectors cover the library", target.name)
            if not self._explicit:
                self._name = target.name
                self._encoder, self._model_id, self._store = (
                    target.encoder,
                    target.model_id,
                    target.store,
                )
            return True

    def _save_open_stores(self) -> None:
        for store in self.open_stores():
            if store.dirty:
                store.save()

    def _fetcher(
        self, model_id: int, store: VectorStore
    ) -> Callable[[list[int]], tuple[np.ndarray, np.ndarray]]:
        """A function reading one model's vectors for given photo ids (catalog + slot file)."""
        slots = self._slots(store)
        return lambda ids: saved_vectors.read(self.catalog, model_id, slots, ids)
