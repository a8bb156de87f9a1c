"""The GUI uses one Library from several threads (searching while indexing), and a CLI process
may open the same library beside the app: the lazily opened model row, encoder and vector
store must be created exactly once."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sqlalchemy import func, select

from photosearch.catalog import Model
from photosearch.library.facade import Library
from photosearch.models.providers import ModelRegistry


def test_threads_opening_the_model_at_once_share_one_row_encoder_and_store(
    tmp_path: Path, registry: ModelRegistry
):
    for attempt in range(5):
        with Library(tmp_path / f"library{attempt}", registry=registry, threads=1) as library:
            start = threading.Barrier(6)

            def open_all(library: Library = library, start: threading.Barrier = start):
                start.wait()
                return library.model_id, id(library.encoder), id(library.store)

            with ThreadPoolExecutor(6) as pool:
                opened = set(pool.map(lambda _: open_all(), range(6)))
            assert len(opened) == 1
            with library.catalog.session() as session:
                assert session.scalar(select(func.count()).select_from(Model)) == 1


def test_two_libraries_on_one_directory_register_the_model_once(
    tmp_path: Path, registry: ModelRegistry
):
    directory = tmp_path / "library"
    with (
        Library(directory, registry=registry) as first,
        Library(directory, registry=registry) as second,
    ):
        first.encoder, second.encoder  # noqa: B018 - load both before racing on the row
        start = threading.Barrier(2)

        def model_id(library: Library) -> int:
            start.wait()
            return library.model_id

        with ThreadPoolExecutor(2) as pool:
            ids = set(pool.map(model_id, (first, second)))
        assert len(ids) == 1


def test_one_writing_thread_at_a_time_and_the_waiter_is_seen(
    tmp_path: Path, registry: ModelRegistry, photo_dir: Path
):
    """Library.writing: the inter-process lock is per process, so threads of one process
    (the GUI's index job and the watcher) meet in its in-process lock instead."""
    import time

    import pytest

    from photosearch.errors import LibraryLocked

    with Library(tmp_path / "library", registry=registry, threads=1) as library:
        library.add_folder(photo_dir)
        order: list[str] = []
        holding = threading.Event()
        release = threading.Event()

        def first_writer() -> None:
            with library.writing():
                holding.set()
                release.wait(10)
                order.append("first done")

        thread = threading.Thread(target=first_writer)
        thread.start()
        assert holding.wait(10)
        assert not library.lock.contended
        with (
            pytest.raises(LibraryLocked, match="another task of this process"),
            library.writing(thread_wait_s=0.05),
        ):
            pass
        indexer = threading.Thread(
            target=lambda: order.append(f"index encoded {library.index().encoding.encoded}")
        )
        indexer.start()
        deadline = time.monotonic() + 10
        while not library.lock.contended and time.monotonic() < deadline:
            time.sleep(0.01)
        assert library.lock.contended  # what the watcher's long runs poll to yield
        assert library.lock.writing_elsewhere_here
        release.set()
        thread.join(10)
        indexer.join(60)
        assert order == ["first done", "index encoded 5"]
        assert not library.lock.contended and not library.lock.held
        with library.writing(), library.writing():  # re-entrant on one thread
            assert library.lock.held
        assert not library.lock.held
