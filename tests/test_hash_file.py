"""The photo-hash file beside the vectors (search/hash_file.py, schema v7's hash generation):
used by a search only while provably current, rewritten by the processes that write the
library, and never trusted when stale, damaged or foreign (the search then reads the catalog
and folds exactly as before)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import update

from photosearch.catalog import SCHEMA_VERSION, Catalog, Photo
from photosearch.catalog import schema as catalog_schema
from photosearch.library.facade import Library
from photosearch.models.providers import ModelRegistry
from photosearch.search import duplicates, hash_file
from photosearch.search.query import SearchQuery
from tests.support.catalog_versions import undo_version_7
from tests.support.cli_process import photosearch_command
from tests.support.own_tmpfs import mount, own_tmpfs
from tests.support.tiny_bundle import build_tiny_bundle
from tests.test_duplicates import make_copies, scene

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def indexed(tmp_path: Path, registry: ModelRegistry) -> tuple[Path, Path]:
    """(library, photos): two groups of four copies and two distinct photos, indexed."""
    folder = tmp_path / "photos"
    make_copies(folder / "trip", 1)
    make_copies(folder / "party", 2)
    (folder / "other").mkdir()
    for seed in (3, 4):
        scene(seed).save(folder / "other" / f"single{seed}.png")
    with Library(tmp_path / "library", registry=registry, threads=1) as library:
        library.add_folder(folder)
        library.index()
    return tmp_path / "library", folder


def hash_path(library: Path) -> Path:
    return library / "vectors" / hash_file.FILE_NAME


def generation(library: Path) -> int:
    with closing(sqlite3.connect(library / "catalog.sqlite")) as connection, connection:
        return int(connection.execute("SELECT value FROM meta WHERE key = 'h'").fetchone()[0])


def folded(
    library: Path, registry: ModelRegistry, monkeypatch: pytest.MonkeyPatch
) -> tuple[list[tuple[str, list[str]]], int]:
    """A one-shot search's folded results (path, sorted similar paths) in a fresh read-only
    library, and how many times it read the hash table from the catalog."""
    reads = []
    reading = duplicates._read_hash_table

    def counted(catalog: Catalog):
        reads.append(catalog)
        return reading(catalog)

    with monkeypatch.context() as patched:
        patched.setattr(duplicates, "_read_hash_table", counted)
        with Library(library, registry=registry, threads=1, readonly=True, one_shot=True) as lib:
            results = lib.search(SearchQuery(text="red", k=20))
    return [(r.path, sorted(r.similar)) for r in results], len(reads)


def through_catalog(
    library: Path, registry: ModelRegistry, monkeypatch: pytest.MonkeyPatch
) -> list[tuple[str, list[str]]]:
    """The same search with the file out of the way: today's read of the catalog."""
    aside = hash_path(library).with_name("aside")
    moved = hash_path(library).exists()
    if moved:
        os.replace(hash_path(library), aside)
    try:
        results, reads = folded(library, registry, monkeypatch)
    finally:
        if moved:
            os.replace(aside, hash_path(library))
    assert reads == 1
    return results


def groups_of(results: list[tuple[str, list[str]]]) -> list[int]:
    return sorted(len(similar) for _, similar in results if similar)


def test_index_writes_a_current_file_that_a_search_reads_instead_of_the_catalog(
    indexed: tuple[Path, Path], registry: ModelRegistry, monkeypatch: pytest.MonkeyPatch
):
    library, _ = indexed
    saved = hash_file.read(hash_path(library), generation(library))
    assert saved is not None
    catalog = Catalog(library / "catalog.sqlite", readonly=True)
    try:
        table, read_at = duplicates._read_hash_table(catalog)
    finally:
        catalog.close()
    assert read_at == saved.generation
    for name in ("ids", "own", "mirror", "colour"):
        assert np.array_equal(getattr(saved, name), getattr(table, name)), name
    assert len(saved.ids) == 10  # every photo has a hash

    results, reads = folded(library, registry, monkeypatch)
    assert reads == 0  # the file answered
    assert groups_of(results) == [3, 3]
    assert results == through_catalog(library, registry, monkeypatch)


def change_by_the_watch_steps(library: Path, photos: Path, registry: ModelRegistry, kind: str):
    """A change as `watch` makes it between its saves (reconcile, encode), the hash file left
    as it was."""
    with Library(library, registry=registry, threads=1) as lib, lib.writing():
        if kind == "added":  # a fifth copy of the trip photo
            scene(1).save(photos / "trip" / "scene1_again.png")
        elif kind == "removed":
            (photos / "trip" / "scene1_q30.jpg").unlink()
        if kind in ("added", "removed"):
            lib.scan()
            lib.encode_pending()
        else:  # the hash column changes (as filling a missing hash does)
            with lib.catalog.session() as session:
                session.execute(
                    update(Photo)
                    .where(Photo.path.endswith("scene2_small.jpg"))
                    .values(phash="0" * 38)
                )


@pytest.mark.parametrize(
    ("kind", "groups"), [("added", [3, 4]), ("removed", [2, 3]), ("hash", [2, 3])]
)
def test_a_change_makes_the_file_stale_and_the_search_folds_from_the_catalog(
    indexed: tuple[Path, Path],
    registry: ModelRegistry,
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
    groups: list[int],
):
    library, photos = indexed
    before = generation(library)
    change_by_the_watch_steps(library, photos, registry, kind)
    assert generation(library) != before
    assert hash_file.read(hash_path(library), generation(library)) is None  # stale

    results, reads = folded(library, registry, monkeypatch)
    assert reads == 1 and groups_of(results) == groups

    with Library(library, registry=registry, threads=1) as lib:  # the next writer's save
        lib.index()
    assert hash_file.read(hash_path(library), generation(library)) is not None
    again, reads = folded(library, registry, monkeypatch)
    assert reads == 0 and again == results


def test_a_writer_that_searched_writes_the_file_from_the_table_it_holds(
    indexed: tuple[Path, Path], registry: ModelRegistry, monkeypatch: pytest.MonkeyPatch
):
    library, photos = indexed
    change_by_the_watch_steps(library, photos, registry, "hash")
    with Library(library, registry=registry, threads=1) as lib:
        lib.search(SearchQuery(text="red", k=20))  # reads the catalog: the table is held
        reads = []
        reading = duplicates._read_hash_table
        monkeypatch.setattr(duplicates, "_read_hash_table", lambda c: reads.append(c) or reading(c))
        with lib.writing():
            assert lib.indexer.save_hash_file()
        assert reads == []
        table, read_at = reading(lib.catalog)
    saved = hash_file.read(hash_path(library), generation(library))
    assert saved is not None and read_at == saved.generation
    for name in ("ids", "own", "mirror", "colour"):
        assert np.array_equal(getattr(saved, name), getattr(table, name)), name


PHOTO_ROW = (
    "INSERT INTO photos (id, folder_id, path, size, mtime_ns, content_hash, file_time, status, "
    "added_at, phash) VALUES (99, 1, '/x/new.jpg', 1, 0, 'c', '2026', 'ok', '2026', ?)"
)


@pytest.mark.parametrize(
    ("statement", "changes"),
    [
        (PHOTO_ROW.replace("INSERT", "INSERT OR IGNORE"), True),
        ("UPDATE photos SET phash = ? WHERE id = 1", True),
        ("UPDATE photos SET missing_since = '2026' WHERE id = 1", True),
        ("UPDATE photos SET id = 77 WHERE id = 1", True),
        ("DELETE FROM photos WHERE id = 1", True),
        ("UPDATE photos SET place_city = 'Oslo', size = 5 WHERE id = 1", False),
    ],
)
def test_every_change_to_what_the_table_is_read_from_gives_a_new_generation(
    tmp_path: Path, statement: str, changes: bool
):
    path = tmp_path / "catalog.sqlite"
    Catalog(path).close()
    with closing(sqlite3.connect(path)) as connection, connection:
        connection.execute("INSERT INTO folders (id, path, added_at) VALUES (1, '/x', '2026')")
        connection.execute(PHOTO_ROW.replace("99", "1").replace("new", "old"), ("a" * 38,))
    before = generation(tmp_path)
    with closing(sqlite3.connect(path)) as connection, connection:
        connection.execute(statement, ("b" * 38,) if "?" in statement else ())
    assert (generation(tmp_path) != before) is changes


def truncated(path: Path) -> None:
    os.truncate(path, path.stat().st_size - 7)


def flipped(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[hash_file.HEADER.size + 11] ^= 0x10
    path.write_bytes(bytes(data))


def longer(path: Path) -> None:
    with path.open("ab") as handle:
        handle.write(b"\0" * 38)


def foreign(path: Path) -> None:
    """A whole, valid file of another library at another generation."""
    saved = hash_file.read(path, int.from_bytes(path.read_bytes()[16:24], "little", signed=True))
    assert saved is not None
    hash_file.write(
        path,
        hash_file.SavedHashes(
            saved.generation + 1,
            saved.ids[:3],
            saved.own[:3],
            saved.mirror[:3],
            saved.colour[:3],
            saved.cell_width,
            np.zeros(3, np.int64),
            np.arange(3),
            np.zeros(3, np.int64),
        ),
    )


def a_directory(path: Path) -> None:
    path.unlink()
    path.mkdir()


def empty(path: Path) -> None:
    path.write_bytes(b"")


DAMAGE = {
    "truncated": truncated,
    "flipped": flipped,
    "longer": longer,
    "foreign": foreign,
    "directory": a_directory,
    "empty": empty,
}


@pytest.mark.parametrize("damage", DAMAGE)
def test_a_damaged_or_foreign_file_is_not_used(
    indexed: tuple[Path, Path],
    registry: ModelRegistry,
    monkeypatch: pytest.MonkeyPatch,
    damage: str,
):
    library, _ = indexed
    expected = through_catalog(library, registry, monkeypatch)
    DAMAGE[damage](hash_path(library))
    results, reads = folded(library, registry, monkeypatch)
    assert reads == 1 and results == expected


# --- schema v7 --------------------------------------------------------------------------------


def schema_of(path: Path) -> set[tuple[str, str, str]]:
    with closing(sqlite3.connect(path)) as connection, connection:
        return set(connection.execute("SELECT type, name, sql FROM sqlite_master"))


def rows_of(path: Path) -> dict[str, list[tuple]]:
    with closing(sqlite3.connect(path)) as connection, connection:
        tables = [
            name
            for (name,) in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name != 'meta'"
            )
        ]
        found = {t: sorted(connection.execute(f"SELECT * FROM {t}"), key=repr) for t in tables}
        found["meta"] = sorted(
            connection.execute("SELECT * FROM meta WHERE key NOT IN ('h', 'schema_version')")
        )
    return found


def built_by_steps(path: Path, steps: int) -> None:
    with closing(sqlite3.connect(path)) as connection, connection:
        for step in range(1, steps + 1):
            for statement in getattr(catalog_schema, f"SCHEMA_V{step}"):
                connection.execute(statement)


def test_a_version_6_library_upgrades_keeping_every_row(
    indexed: tuple[Path, Path],
    registry: ModelRegistry,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
):
    library, _ = indexed
    catalog = library / "catalog.sqlite"
    expected = through_catalog(library, registry, monkeypatch)
    with closing(sqlite3.connect(catalog)) as connection, connection:
        undo_version_7(connection)
    built_by_steps(tmp_path / "v6.sqlite", 6)
    assert schema_of(catalog) == schema_of(tmp_path / "v6.sqlite")  # what v6 left
    before = rows_of(catalog)
    assert len(before["photos"]) == 10 and len(before["vectors"]) == 10

    Catalog(catalog).close()  # the first writable open upgrades
    assert (library / "catalog.sqlite.v6.bak").exists()
    assert rows_of(catalog) == before
    Catalog(tmp_path / "new.sqlite").close()
    assert schema_of(catalog) == schema_of(tmp_path / "new.sqlite")
    with closing(sqlite3.connect(catalog)) as connection, connection:
        assert connection.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[
            0
        ] == str(SCHEMA_VERSION)
    assert hash_file.read(hash_path(library), generation(library)) is None  # a new generation
    results, reads = folded(library, registry, monkeypatch)
    assert reads == 1 and results == expected


def test_the_schema_still_fits_sqlite_first_page(tmp_path: Path):
    """What lets `repair` read the schema of a catalog cut in half (schema.py, v5)."""
    Catalog(tmp_path / "catalog.sqlite").close()
    with closing(sqlite3.connect(tmp_path / "catalog.sqlite")) as connection, connection:
        pages = connection.execute(
            "SELECT pageno, pagetype FROM dbstat WHERE name = 'sqlite_schema'"
        ).fetchall()
    assert pages == [(1, "leaf")]


# --- real processes ---------------------------------------------------------------------------

WRITER = """
import sys, time
from pathlib import Path
import numpy as np
from photosearch.search import hash_file
from photosearch.vectors import atomic_write

real = atomic_write.os.fsync


def slow_fsync(fd):  # the data is written: say so, then wait to be killed before the rename
    print("written", flush=True)
    time.sleep(60)
    real(fd)


atomic_write.os.fsync = slow_fsync
rows = 1000
hash_file.write(Path(sys.argv[1]), hash_file.SavedHashes(
    7, np.arange(rows), np.arange(rows, dtype=np.uint64), np.arange(rows, dtype=np.uint64),
    np.zeros((rows, 3), np.int16), 16, np.zeros(rows, np.int64), np.arange(rows),
    np.zeros(rows, np.int64)))
"""


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "plugins")])}


def test_kill_9_while_writing_leaves_the_old_file_whole(indexed: tuple[Path, Path]):
    library, _ = indexed
    path = hash_path(library)
    before = path.read_bytes()
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True, env=env()
    )
    try:
        assert writer.stdout is not None and writer.stdout.readline().strip() == "written"
        os.kill(writer.pid, signal.SIGKILL)
    finally:
        writer.wait(timeout=30)
    assert writer.returncode == -signal.SIGKILL
    assert path.read_bytes() == before
    assert hash_file.read(path, generation(library)) is not None
    assert hash_file.read(path, 7) is None


def test_a_read_only_library_searches_with_a_stale_file_and_writes_nothing(tmp_path: Path):
    """On a read-only file system (a tmpfs of the test's own: file modes do not stop root)."""
    models = tmp_path / "models"
    build_tiny_bundle(models / "tiny", name="tiny")
    photos = tmp_path / "photos"
    make_copies(photos, 1)
    with own_tmpfs(tmp_path / "mnt") as target:
        library = target / "library"
        cli = photosearch_command(library, models)
        for command in (["folders", "add", str(photos)], ["index"]):
            subprocess.run([*cli, *command], check=True, capture_output=True, env=env(), cwd=ROOT)
        assert hash_file.read(hash_path(library), generation(library)) is not None
        connection = sqlite3.connect(library / "catalog.sqlite")
        with connection:  # stale from now on
            connection.execute("UPDATE photos SET phash = NULL WHERE path LIKE '%q30%'")
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        connection.close()
        mount("-o", "remount,ro", str(target))
        before = {p: p.read_bytes() for p in library.rglob("*") if p.is_file()}
        search = subprocess.run(
            [*cli, "search", "a photo", "-k", "5"],
            capture_output=True,
            text=True,
            env=env(),
            cwd=ROOT,
            timeout=120,
        )
        assert search.returncode == 0 and "Traceback" not in search.stderr, search.stderr
        assert "(+2 similar)" in search.stdout  # the q30 copy has no hash now: not folded
        assert {p: p.read_bytes() for p in library.rglob("*") if p.is_file()} == before


def test_watch_serves_its_changes_and_leaves_a_current_file_when_it_stops(
    indexed: tuple[Path, Path], registry: ModelRegistry, monkeypatch: pytest.MonkeyPatch
):
    from photosearch.library.watch_service import WatchService

    library, photos = indexed
    with Library(library, registry=registry, threads=1) as lib:
        service = WatchService(lib, settle_s=0.3, quiet_s=0.2, max_delay_s=1.0, save_every_s=60)
        service.start()
        try:
            assert service.wait_idle(30)
            scene(1).save(photos / "trip" / "scene1_again.png")  # a fifth copy
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                results = lib.search(SearchQuery(text="red", k=20))
                if sorted(len(r.similar) for r in results if r.similar) == [3, 4]:
                    break
                time.sleep(0.1)
            assert service.wait_idle(30)
            assert hash_file.read(hash_path(library), generation(library)) is None  # not yet
        finally:
            service.stop()
    assert hash_file.read(hash_path(library), generation(library)) is not None
    results, reads = folded(library, registry, monkeypatch)
    assert reads == 0 and groups_of(results) == [3, 4]
    assert results == through_catalog(library, registry, monkeypatch)
