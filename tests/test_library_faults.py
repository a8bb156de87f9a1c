"""Faults in the library's own files, each done to a real library and run through real
`photosearch` processes: a damaged catalog (truncated, header overwritten, garbage inside,
zeroed), a damaged vector graph (bad neighbour ids, scrambled vectors), a read-only library, a
WAL file removed under a running index, a folder removed during an index, and a full disk while
saving. Every command answers with one line (never a traceback or a crash) and `repair` brings
the library back without re-encoding what can be trusted."""

from __future__ import annotations

import errno
import json
import os
import shutil
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from photosearch.catalog.backup import BACKUP_DIR, backups
from photosearch.library.facade import Library
from photosearch.library.locking import WriteLock
from photosearch.vectors.store import VectorStore
from tests.conftest import make_photo
from tests.support.cli_process import photosearch_command
from tests.support.own_tmpfs import mount, own_tmpfs
from tests.support.tiny_bundle import build_tiny_bundle

COLOURS = ("red", "green", "blue", "yellow", "white", "black")
NOISE_PHOTOS = 60
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    models = tmp_path_factory.mktemp("models")
    build_tiny_bundle(models / "tiny", name="tiny")
    return models


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory, models_dir: Path) -> Path:
    """An indexed library (with one backup) and its photos, copied by each test."""
    root = tmp_path_factory.mktemp("template")
    photos = root / "photos"
    for colour in COLOURS:
        make_photo(photos / f"{colour}.png", colour)
    rng = np.random.default_rng(3)
    for i in range(NOISE_PHOTOS):
        Image.fromarray(rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)).save(
            photos / f"noise{i:03d}.png"
        )
    with open_library(root / "library", models_dir) as library:
        library.add_folder(photos)
        report = library.index()
        assert report.encoding.encoded == len(COLOURS) + NOISE_PHOTOS
    return root


@pytest.fixture
def copy(template: Path, tmp_path: Path) -> tuple[Path, Path]:
    """(library, photos): a copy of the template library, over the template's photos (which
    the catalog names by absolute path, and which no test changes)."""
    shutil.copytree(template / "library", tmp_path / "library")
    return tmp_path / "library", template / "photos"


def open_library(directory: Path, models: Path, **options) -> Library:
    return Library(directory, models_dir=models, model="tiny", threads=1, **options)


def run(library: Path, models: Path, *args: str, **options) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "plugins")])}
    return subprocess.run(
        photosearch_command(library, models, *args),
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=ROOT,
        **options,
    )


def assert_one_line_error(result: subprocess.CompletedProcess, *needles: str) -> None:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1, result.stdout + result.stderr
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def search_top(library: Path, models: Path, query: str = "red") -> str:
    result = run(library, models, "search", query, "-k", "3")
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()[0].split("  [")[0].split()[-1]  # the path, not the reasons


# --- damaged catalog -------------------------------------------------------------------------


def truncate_half(path: Path) -> None:
    os.truncate(path, path.stat().st_size // 2)


def overwrite_header(path: Path) -> None:
    with path.open("r+b") as handle:
        handle.write(b"this is not a database header".ljust(100, b"!"))


def garbage_inside(path: Path) -> None:
    with path.open("r+b") as handle:
        handle.seek(path.stat().st_size // 3)
        handle.write(np.random.default_rng(5).integers(0, 256, 16384, dtype=np.uint8).tobytes())


def zero_bytes(path: Path) -> None:
    os.truncate(path, 0)


DAMAGE = {
    "truncated": truncate_half,
    "header": overwrite_header,
    "garbage": garbage_inside,
    "zeroed": zero_bytes,
}


@pytest.mark.parametrize("damage", DAMAGE)
def test_damaged_catalog_gives_one_line_naming_repair_and_repair_restores_the_backup(
    damage: str, copy: tuple[Path, Path], models_dir: Path
):
    library, _ = copy
    catalog = library / "catalog.sqlite"
    graph_before = sorted(p.name for p in (library / "vectors").iterdir())
    DAMAGE[damage](catalog)

    if damage == "garbage":  # a page nobody reads is found by the check after `index`
        status = run(library, models_dir, "status")
        assert status.returncode in (0, 1) and "Traceback" not in status.stderr
        assert_one_line_error(run(library, models_dir, "index"), "photosearch repair")
    else:
        commands = [["status"], ["search", "red"]] + ([["index"]] if damage == "zeroed" else [])
        for command in commands:
            assert_one_line_error(
                run(library, models_dir, *command), "damaged", "photosearch repair"
            )
    # the saved graph is never replaced because the catalog looked empty
    assert sorted(p.name for p in (library / "vectors").iterdir()) == graph_before

    repaired = run(library, models_dir, "repair")
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    assert "restored from backup" in repaired.stdout
    assert "0 encoded" in repaired.stdout  # every photo came back with its vector
    status = run(library, models_dir, "status")
    assert (
        f"photos:   {len(COLOURS) + NOISE_PHOTOS} ({len(COLOURS) + NOISE_PHOTOS} indexed"
        in status.stdout
    )
    assert list(library.glob("catalog.sqlite.damaged-*")), "the damaged file is kept"


@pytest.mark.parametrize("damage", ["header", "garbage", "truncated"])
def test_without_a_backup_repair_rebuilds_reusing_trusted_vectors(
    damage: str, copy: tuple[Path, Path], models_dir: Path
):
    library, _ = copy
    shutil.rmtree(library / BACKUP_DIR)
    DAMAGE[damage](library / "catalog.sqlite")

    repaired = run(library, models_dir, "repair")
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    assert "no good backup" in repaired.stdout
    encoded = int(repaired.stdout.split(" encoded")[0].rsplit(" ", 1)[-1])
    reused = int(repaired.stdout.split(" trusted vectors reused")[0].rsplit(" ", 1)[-1])
    total = len(COLOURS) + NOISE_PHOTOS
    assert reused + encoded == total  # only what could not be trusted is encoded
    if damage != "truncated":  # half a file may have lost every page of the photos table
        assert reused > 0
    status = run(library, models_dir, "status")
    assert f"photos:   {total} ({total} indexed" in status.stdout, status.stdout


def test_repair_on_a_sound_library_changes_nothing(copy: tuple[Path, Path], models_dir: Path):
    library, _ = copy
    before = (library / "catalog.sqlite").read_bytes()
    repaired = run(library, models_dir, "repair")
    assert repaired.returncode == 0, repaired.stderr
    assert "catalog: sound" in repaired.stdout and "vectors: sound" in repaired.stdout
    assert (library / "catalog.sqlite").read_bytes() == before


def test_backups_rotate_and_are_verified(copy: tuple[Path, Path], models_dir: Path):
    library, _ = copy
    with open_library(library, models_dir) as lib:
        for _ in range(5):
            lib.backup_if_due(force=True)
    kept = backups(library / BACKUP_DIR)
    assert len(kept) == 3
    import sqlite3

    for backup in kept:
        with sqlite3.connect(backup) as connection:
            assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
            assert (
                connection.execute("SELECT count(*) FROM vectors").fetchone()[0]
                == len(COLOURS) + NOISE_PHOTOS
            )


# --- damaged vector graph ----------------------------------------------------------------------


def graph_file(library: Path) -> Path:
    (graph,) = (library / "vectors").glob("*.hnsw")
    return graph


def hnsw_layout(graph: Path) -> tuple[int, int, int]:
    """(element count, bytes per element, offset of the vector in an element)."""
    fields = struct.unpack_from("<QQQQQQiIQQQdQ", graph.read_bytes())
    return fields[2], fields[3], fields[5]


def corrupt_neighbour_ids(graph: Path) -> None:
    count, per_element, _ = hnsw_layout(graph)
    data = bytearray(graph.read_bytes())
    for element in range(count):
        start = 96 + element * per_element
        links = struct.unpack_from("<I", data, start)[0] & 0xFFFF
        for link in range(links):
            struct.pack_into("<I", data, start + 4 + 4 * link, 0x7FFFFFF0 + link)
    graph.write_bytes(bytes(data))


def scramble_vectors(graph: Path) -> None:
    count, per_element, vector_at = hnsw_layout(graph)
    data = bytearray(graph.read_bytes())
    size = 16 * 4
    vectors = [bytes(data[96 + i * per_element + vector_at :][:size]) for i in range(count)]
    for i in range(count):
        start = 96 + i * per_element + vector_at
        data[start : start + size] = vectors[(i + 1) % count]
    graph.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", [corrupt_neighbour_ids, scramble_vectors])
def test_damaged_graph_is_detected_and_rebuilt_never_loaded(
    damage, copy: tuple[Path, Path], models_dir: Path
):
    library, _ = copy
    damage(graph_file(library))
    search = run(library, models_dir, "search", "red", "-k", "3")
    assert search.returncode == 0, f"rc {search.returncode}: {search.stderr}"  # 139: segfault
    assert search.stdout.splitlines()[0].split("  [")[0].endswith("red.png")
    with open_library(library, models_dir) as lib:
        store = VectorStore(lib.directory / "vectors", lib.encoder.identity, 16)
        assert store.load_problem and "checksum" in store.load_problem
    repaired = run(library, models_dir, "repair")
    assert repaired.returncode == 0 and "rebuilt from the catalog" in repaired.stdout
    with open_library(library, models_dir) as lib:
        store = VectorStore(lib.directory / "vectors", lib.encoder.identity, 16)
        assert store.load_problem is None and len(store) == len(COLOURS) + NOISE_PHOTOS


def test_index_repairs_a_damaged_graph(copy: tuple[Path, Path], models_dir: Path):
    library, _ = copy
    corrupt_neighbour_ids(graph_file(library))
    result = run(library, models_dir, "index", "--json")
    assert result.returncode == 0, result.stderr
    assert '"encoded": 0' in result.stdout  # rebuilt from the catalog's vectors, not re-encoded
    with open_library(library, models_dir) as lib:
        store = VectorStore(lib.directory / "vectors", lib.encoder.identity, 16)
        assert store.load_problem is None and len(store) == len(COLOURS) + NOISE_PHOTOS


# --- read-only library ------------------------------------------------------------------------


@pytest.fixture
def tmpfs(tmp_path: Path):
    """A 16 MB tmpfs of the test's own (tests/support/own_tmpfs.py)."""
    with own_tmpfs(tmp_path / "mnt") as target:
        yield target


def test_read_only_library_searches_and_reports_why_index_cannot_write(
    template: Path, tmpfs: Path, models_dir: Path
):
    library = tmpfs / "library"
    shutil.copytree(template / "library", library)
    before = {p.name: p.read_bytes() for p in library.iterdir() if p.is_file()}
    mount("-o", "remount,ro", str(tmpfs))

    status = run(library, models_dir, "status")
    assert status.returncode == 0, status.stderr
    assert f"{len(COLOURS) + NOISE_PHOTOS} indexed" in status.stdout
    assert search_top(library, models_dir).endswith("red.png")
    for command in (["index"], ["folders", "remove", "/nowhere"], ["repair"]):
        assert_one_line_error(run(library, models_dir, *command), "read-only file system")
    assert {p.name: p.read_bytes() for p in library.iterdir() if p.is_file()} == before


def test_read_only_vectors_dir_says_so_instead_of_a_missing_temp_file(
    template: Path, tmp_path: Path, tmpfs: Path, models_dir: Path
):
    library = tmp_path / "library"
    shutil.copytree(template / "library", library)
    vectors = library / "vectors"
    shutil.copytree(vectors, tmpfs, dirs_exist_ok=True)
    mount("--bind", str(tmpfs), str(vectors))
    try:
        mount("-o", "remount,bind,ro", str(vectors))
        result = run(library, models_dir, "index")
        assert_one_line_error(result, "vectors", "read-only file system")
        assert "hnsw.tmp" not in result.stderr
        store = VectorStore(vectors, "other@1", 4)  # the save itself, past the early check
        store.add([1], np.full((1, 4), 0.5, np.float32))
        with pytest.raises(OSError) as raised:
            store.save()
        assert raised.value.errno == errno.EROFS, raised.value
    finally:
        subprocess.run(["umount", str(vectors)], check=False)


def test_save_into_an_unwritable_directory_names_the_real_error():
    """What hnswlib's silent writer used to turn into "No such file ... hnsw.tmp": run as an
    unprivileged user (root ignores file modes) when setpriv is there."""
    if shutil.which("setpriv") is None or os.geteuid() != 0:
        pytest.skip("needs root and setpriv to run as an unprivileged user")
    folder = Path("/tmp") / f"ps-ro-{os.getpid()}"  # tmp_path is private to root
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "vectors").mkdir(parents=True)
    try:
        os.chmod(folder, 0o755)
        os.chmod(folder / "vectors", 0o555)
        code = (
            "import numpy as np; from pathlib import Path; "
            "from photosearch.vectors.store import VectorStore; "
            f"s = VectorStore(Path({str(folder / 'vectors')!r}), 'm@1', 4); "
            "s.add([1], np.ones((1, 4), np.float32) / 2); s.save()"
        )
        env = {**os.environ, "PYTHONPATH": str(ROOT), "HOME": "/tmp"}
        result = subprocess.run(
            [
                "setpriv",
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                sys.executable,
                "-c",
                code,
            ],
            capture_output=True,
            text=True,
            env=env,
            cwd="/tmp",
            timeout=60,
        )
        assert result.returncode == 1
        assert "PermissionError" in result.stderr and "Permission denied" in result.stderr
        assert "No such file" not in result.stderr
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# --- concurrent processes --------------------------------------------------------------------


RACE_PHOTOS = 1500


@pytest.fixture(scope="module")
def race_photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Many small unique photos: an index of a few seconds for other processes to race."""
    photos = tmp_path_factory.mktemp("race")
    rng = np.random.default_rng(11)
    for i in range(RACE_PHOTOS):
        Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(
            photos / f"p{i:04d}.png"
        )
    return photos


@pytest.fixture
def big_copy(tmp_path: Path, models_dir: Path, race_photos: Path) -> tuple[Path, Path]:
    """A library with the race folder added, not yet indexed."""
    library = tmp_path / "library"
    with open_library(library, models_dir) as lib:
        lib.add_folder(race_photos)
    return library, race_photos


def start_index(library: Path, models: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "plugins")])}
    process = subprocess.Popen(
        photosearch_command(library, models, "index", "--batch-size", "4"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )
    deadline = time.monotonic() + 60
    wal = library / "catalog.sqlite-wal"
    while time.monotonic() < deadline:  # encoding has begun: photos are in the catalog
        if wal.exists() and wal.stat().st_size > 0 and _lock_held(library):
            return process
        time.sleep(0.05)
    process.kill()
    raise AssertionError("index did not start")


def _lock_held(library: Path) -> bool:
    import fcntl

    try:
        fd = os.open(library / "write.lock", os.O_RDWR)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)
    return False


def test_wal_removed_during_index_gives_searches_no_traceback(
    big_copy: tuple[Path, Path], models_dir: Path
):
    library, _ = big_copy
    index = start_index(library, models_dir)
    (library / "catalog.sqlite-wal").unlink()
    searches = [
        subprocess.Popen(
            photosearch_command(library, models_dir, "search", "red", "-k", "3"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        for _ in range(3)
    ]
    for search in searches:
        out, err = search.communicate(timeout=120)
        assert "Traceback" not in err, err
        assert search.returncode == 0 or (
            search.returncode == 1 and len(err.strip().splitlines()) == 1
        ), err
    out, err = index.communicate(timeout=180)
    assert index.returncode == 0 and "Traceback" not in err, err
    status = run(library, models_dir, "status")
    assert status.returncode == 0, status.stderr
    assert f"photos:   {RACE_PHOTOS} ({RACE_PHOTOS} indexed" in status.stdout  # nothing lost


def test_folders_remove_during_index_waits_for_the_lock(
    big_copy: tuple[Path, Path], models_dir: Path
):
    library, photos = big_copy
    index = start_index(library, models_dir)
    waiting = subprocess.Popen(
        photosearch_command(library, models_dir, "folders", "remove", str(photos), "--wait", "150"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    refused = run(library, models_dir, "folders", "remove", str(photos))
    out, err = index.communicate(timeout=180)
    assert index.returncode == 0, err
    assert "FOREIGN KEY" not in err and "Traceback" not in err
    assert_one_line_error(refused, "another photosearch process", "writing to this library")
    out, err = waiting.communicate(timeout=60)
    assert waiting.returncode == 0, err
    assert "waiting for another photosearch process" in err
    assert f"{RACE_PHOTOS} photos forgotten" in out
    with open_library(library, models_dir) as lib:
        assert lib.status().photos == 0 and len(lib.store) == 0


def test_every_writing_command_takes_the_write_lock(
    copy: tuple[Path, Path], models_dir: Path, tmp_path: Path
):
    """Held here as `index` holds it (the same inter-process lock): each writing command
    refuses in one line, and with --wait it says it waits, then goes on once released."""
    library, photos = copy
    (tmp_path / "new").mkdir()
    writers = [
        ["folders", "add", str(tmp_path / "new")],
        ["folders", "remove", str(photos)],
        ["folders", "ignore", "*.tmp"],
        ["models", "use", "tiny"],
        ["models", "provider", "auto"],
        ["repair"],
        ["index"],
    ]
    with WriteLock(library / "write.lock"):
        for command in writers:
            assert_one_line_error(run(library, models_dir, *command), "another photosearch")
        waiting = subprocess.Popen(
            photosearch_command(
                library, models_dir, "folders", "remove", str(photos), "--wait", "60"
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        assert "waiting for another photosearch process" in waiting.stderr.readline()
    out, err = waiting.communicate(timeout=60)
    assert waiting.returncode == 0 and "photos forgotten" in out, err


# --- full disk --------------------------------------------------------------------------------


def fill(directory: Path) -> Path:
    """Fill the file system holding ``directory``; returns the filler file."""
    filler = directory / "filler"
    with filler.open("wb") as handle:
        try:
            while True:
                handle.write(b"\0" * 65536)
                handle.flush()
        except OSError:
            pass
    return filler


def test_full_disk_during_a_graph_save_keeps_the_previous_graph(tmpfs: Path):
    directory = tmpfs / "vectors"
    store = VectorStore(directory, "m@1", 64)
    rng = np.random.default_rng(1)
    first = rng.standard_normal((200, 64)).astype(np.float32)
    store.add(range(200), first / np.linalg.norm(first, axis=1, keepdims=True))
    store.save()
    more = rng.standard_normal((3000, 64)).astype(np.float32)
    store.add(range(200, 3200), more / np.linalg.norm(more, axis=1, keepdims=True))
    filler = fill(tmpfs)
    with pytest.raises(OSError) as raised:
        store.save()
    assert raised.value.errno == errno.ENOSPC and "No space left" in str(raised.value)
    reloaded = VectorStore(directory, "m@1", 64)
    assert reloaded.load_problem is None and len(reloaded) == 200
    assert reloaded.has_matrix()  # the float16 matrix of that generation too
    assert sorted(p.name for p in directory.iterdir()) == [
        "m@1.1.f16.npy",
        "m@1.1.hnsw",
        "m@1.1.ids.npy",
        "m@1.json",
    ]
    filler.unlink()
    store.save()
    assert len(VectorStore(directory, "m@1", 64)) == 3200


def test_full_disk_during_index_gives_one_line_and_loses_nothing(
    template: Path, tmpfs: Path, models_dir: Path, tmp_path: Path
):
    library = tmpfs / "library"
    shutil.copytree(template / "library", library)
    photos = tmp_path / "more"
    photos.mkdir()
    rng = np.random.default_rng(2)
    for i in range(400):
        Image.fromarray(rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)).save(
            photos / f"m{i:03d}.png"
        )
    assert run(library, models_dir, "folders", "add", str(photos)).returncode == 0
    filler = fill(tmpfs)
    full = run(library, models_dir, "index")
    assert full.returncode == 1 and "Traceback" not in full.stderr, full.stderr
    assert len(full.stderr.strip().splitlines()) == 1, full.stderr
    assert "full" in full.stderr or "No space" in full.stderr
    filler.unlink()
    status = run(library, models_dir, "status")
    assert status.returncode == 0, status.stderr
    finished = run(library, models_dir, "index")
    assert finished.returncode == 0, finished.stderr
    total = len(COLOURS) + NOISE_PHOTOS + 400
    status = run(library, models_dir, "status")
    assert f"photos:   {total} ({total} indexed" in status.stdout, status.stdout


def test_graph_saved_before_checksums_is_bounds_checked_then_resaved(tmp_path: Path):
    store = VectorStore(tmp_path, "m@1", 16)
    vectors = np.random.default_rng(4).standard_normal((500, 16)).astype(np.float32)
    store.add(range(500), vectors / np.linalg.norm(vectors, axis=1, keepdims=True))
    store.save()
    meta = json.loads(store.meta_path.read_text())
    del meta["checksum"]  # as an older photosearch wrote it
    store.meta_path.write_text(json.dumps(meta))

    legacy = VectorStore(tmp_path, "m@1", 16)
    assert legacy.load_problem is None and len(legacy) == 500 and legacy.dirty
    corrupt_neighbour_ids(store.graph_path(1))
    damaged = VectorStore(tmp_path, "m@1", 16)  # would crash hnswlib's searches if loaded
    assert damaged.load_problem and "neighbour ids" in damaged.load_problem
    legacy.save()
    assert "checksum" in json.loads(store.meta_path.read_text())
    assert VectorStore(tmp_path, "m@1", 16).load_problem is None


def test_unwritable_library_as_a_normal_user_says_permission_denied(
    template: Path, models_dir: Path
):
    """0555 folders and a 0444 catalog, as a user they apply to (the tests run as root, whom
    file modes do not stop): reading works, `index` names the path and "permission denied"."""
    if shutil.which("setpriv") is None or os.geteuid() != 0:
        pytest.skip("needs root and setpriv to run as an unprivileged user")
    root = Path("/tmp") / f"ps-perm-{os.getpid()}"  # tmp_path is private to root
    shutil.rmtree(root, ignore_errors=True)
    try:
        shutil.copytree(template / "library", root / "library")
        shutil.copytree(models_dir, root / "models")
        subprocess.run(["chown", "-R", "65534:65534", str(root)], check=True)
        os.chmod(root, 0o755)
        for mode, path in (
            (0o444, root / "library" / "catalog.sqlite"),
            (0o555, root / "library" / "vectors"),
        ):
            os.chmod(path, mode)
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "plugins")]),
            "HOME": "/tmp",
        }

        def as_nobody(*args: str) -> subprocess.CompletedProcess:
            return subprocess.run(
                [
                    "setpriv",
                    "--reuid=65534",
                    "--regid=65534",
                    "--clear-groups",
                    *photosearch_command(root / "library", root / "models", *args),
                ],
                capture_output=True,
                text=True,
                env=env,
                cwd="/tmp",
                timeout=120,
            )

        status = as_nobody("status")
        assert status.returncode == 0, status.stderr
        assert f"{len(COLOURS) + NOISE_PHOTOS} indexed" in status.stdout
        search = as_nobody("search", "red", "-k", "1")
        top = search.stdout.strip().split("  [")[0]
        assert search.returncode == 0 and top.endswith("red.png"), search.stderr
        index = as_nobody("index")
        assert_one_line_error(index, "catalog.sqlite", "permission denied")
        os.chmod(root / "library" / "catalog.sqlite", 0o644)
        index = as_nobody("index")
        assert_one_line_error(index, "vectors", "permission denied")
        assert "hnsw.tmp" not in index.stderr
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_with_the_graph_damaged_too_repair_reuses_the_catalogs_own_sound_vectors(
    copy: tuple[Path, Path], models_dir: Path
):
    library, _ = copy
    shutil.rmtree(library / BACKUP_DIR)
    overwrite_header(library / "catalog.sqlite")
    corrupt_neighbour_ids(graph_file(library))
    repaired = run(library, models_dir, "repair")
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    total = len(COLOURS) + NOISE_PHOTOS
    assert f"{total} trusted vectors reused" in repaired.stdout
    assert "0 encoded" in repaired.stdout
    assert search_top(library, models_dir).endswith("red.png")


def test_a_repair_killed_midway_is_finished_by_the_next_one(
    copy: tuple[Path, Path], models_dir: Path
):
    """As if killed after moving the damaged catalog aside: no catalog, no backup. The next
    repair still salvages the file moved aside, so no photo is re-encoded."""
    library, _ = copy
    shutil.rmtree(library / BACKUP_DIR)
    catalog = library / "catalog.sqlite"
    garbage_inside(catalog)
    catalog.rename(library / "catalog.sqlite.damaged-20250101-000000-000000")
    assert_one_line_error(run(library, models_dir, "status"), "missing", "photosearch repair")
    repaired = run(library, models_dir, "repair")
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    assert "0 encoded" in repaired.stdout
