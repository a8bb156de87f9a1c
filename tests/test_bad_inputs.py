"""A corpus of awkward files: each is indexed correctly or recorded with a readable reason,
and indexing never crashes. Built in one folder and indexed in one run, so it stays fast."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import sqlite3
import struct
import subprocess
import threading
import time
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import select

from photosearch.catalog import Folder, Photo, Vector
from photosearch.cli.main import main as cli_main
from photosearch.errors import DecodeRefused, EmptyQuery, NotAPhotoFile, PhotosearchError
from photosearch.files.decode_pool import DecodePool
from photosearch.files.imaging import DecodeBudget, DecodeLimits, decode_cost, load_image
from photosearch.files.photo_files import display_path
from photosearch.files.scanning import FileStat, content_hash
from photosearch.indexing.encode import encode_pending
from photosearch.indexing.reconcile import reconcile
from photosearch.library.facade import Library
from photosearch.models.bundle import Preprocessing
from photosearch.search.query import SearchQuery, check_query
from tests.conftest import make_photo
from tests.support.cli_process import photosearch_command
from tests.support.hostile_files import (
    make_deep_photo,
    remove_deep_tree,
    write_flat_png,
    write_large_jpeg,
    write_many_scans_jpeg,
    write_sparse,
)
from tests.support.tiny_bundle import build_tiny_bundle

OK, FAILED, ABSENT, EITHER = "ok", "failed", "absent", "either"


@dataclass(frozen=True)
class Case:
    name: str  # path relative to the corpus folder
    expect: str
    size: tuple[int, int] | None = None  # upright width, height when OK
    why: str | None = None  # text the failure reason must contain


def _jpeg_bytes(size=(64, 48), colour=(200, 30, 30), **save) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "JPEG", **save)
    return buffer.getvalue()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data))
        + kind
        + data
        + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def _png_claiming(width: int, height: int) -> bytes:
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 16))
        + _png_chunk(b"IEND", b"")
    )


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _save(path: Path, image: Image.Image, **save) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, **save)


def build_corpus(root: Path) -> list[Case]:
    cases: list[Case] = []

    def case(
        name: str,
        expect: str,
        size=None,
        make: Callable[[Path], object] | None = None,
        why: str | None = None,
    ):
        if make is not None:
            make(root / name)
        cases.append(Case(name, expect, size, why))

    good = _jpeg_bytes()
    case("plain.jpg", OK, (64, 48), lambda p: _write(p, good))
    case("truncated.jpg", EITHER, None, lambda p: _write(p, good[: len(good) // 2]))
    case("header-only.jpg", FAILED, None, lambda p: _write(p, good[:120]))
    case("empty.jpg", FAILED, None, lambda p: _write(p, b""))
    case("text.jpg", FAILED, None, lambda p: p.write_text("this is not a photo\n"))
    case(
        "page.png",
        FAILED,
        None,
        lambda p: p.write_text("<!doctype html><html><body>404</body></html>"),
    )
    case("random.jpg", FAILED, None, lambda p: _write(p, os.urandom(4096)))
    case("bomb-header.png", FAILED, None, lambda p: _write(p, _png_claiming(100_000, 100_000)))
    case("over-limit.png", FAILED, None, lambda p: _save(p, Image.new("L", (1200, 1000))))
    case(
        "sixteen-bit.png",
        OK,
        (40, 30),
        lambda p: _save(p, Image.fromarray(np.arange(1200, dtype=np.uint16).reshape(30, 40) * 50)),
    )
    case(
        "cmyk.jpg", OK, (50, 40), lambda p: _save(p, Image.new("CMYK", (50, 40), (0, 200, 200, 0)))
    )
    case("grey.jpg", OK, (30, 20), lambda p: _save(p, Image.new("L", (30, 20), 128)))
    case("one-bit.png", OK, (33, 17), lambda p: _save(p, Image.new("1", (33, 17), 1)))
    case("palette-transparent.png", OK, (20, 20), _palette_with_transparency)
    case(
        "rgba.png", OK, (25, 25), lambda p: _save(p, Image.new("RGBA", (25, 25), (0, 255, 0, 100)))
    )
    case("grey-alpha.png", OK, (25, 15), lambda p: _save(p, Image.new("LA", (25, 15), (9, 90))))
    case("animated.gif", OK, (32, 32), _animated_gif)
    case("rotated-exif.jpg", OK, (40, 60), _exif_rotated)
    case("progressive.jpg", OK, (64, 48), lambda p: _write(p, _jpeg_bytes(progressive=True)))
    case("garbage-after.jpg", OK, (64, 48), lambda p: _write(p, good + os.urandom(500)))
    case("bad-crc.png", EITHER, None, _png_with_bad_crc)
    case("one-pixel.png", OK, (1, 1), lambda p: _save(p, Image.new("RGB", (1, 1), "red")))
    case("wide.png", OK, (3000, 2), lambda p: _save(p, Image.new("RGB", (3000, 2), "blue")))
    case("photo.webp", OK, (30, 30), lambda p: _save(p, Image.new("RGB", (30, 30), "green")))
    case("photo.tiff", OK, (30, 10), lambda p: _save(p, Image.new("RGB", (30, 10), "green")))
    case(
        "float.tif",
        OK,
        (12, 12),
        lambda p: _save(
            p, Image.fromarray(np.linspace(0, 1, 144, dtype=np.float32).reshape(12, 12))
        ),
    )
    case("photo.bmp", OK, (30, 30), lambda p: _save(p, Image.new("RGB", (30, 30), "white")))
    case("UPPER.JPG", OK, (64, 48), lambda p: _write(p, good))
    case("jpeg-named.png", OK, (64, 48), lambda p: _write(p, good))
    case("ünïcødé 日本 🌅.jpg", OK, (64, 48), lambda p: _write(p, good))
    case("with spaces  and  tabs\t.jpg", OK, (64, 48), lambda p: _write(p, good))
    case("new\nline.jpg", OK, (64, 48), lambda p: _write(p, good))
    case("x" * 240 + ".jpg", OK, (64, 48), lambda p: _write(p, good))
    deep = os.path.join(*(["d" * 100] * 14), "deep.jpg")  # a path of ~1,500 characters
    case(deep, OK, (64, 48), lambda p: _write(p, good))
    case("folder.jpg/inside.jpg", OK, (64, 48), lambda p: _write(p, good))  # a dir named .jpg
    case("folder.jpg", ABSENT)
    case(".hidden.jpg", ABSENT, None, lambda p: _write(p, good))
    case("notes.txt", ABSENT, None, lambda p: p.write_text("hello"))
    case("dangling.jpg", ABSENT, None, lambda p: os.symlink(root / "nowhere.jpg", p))
    case("link.jpg", OK, (64, 48), lambda p: os.symlink(root / "plain.jpg", p))
    case("loop", ABSENT, None, lambda p: os.symlink(root, p))  # a folder linking to its parent
    case("fifo.jpg", ABSENT, None, lambda p: os.mkfifo(p))
    # --- names whose bytes are not UTF-8 (old Windows archives, camera cards)
    case(os.fsdecode(b"bad-\xff\xfe-name.jpg"), OK, (64, 48), lambda p: _write(p, good))
    case(os.fsdecode(b"latin1-caf\xe9.jpg"), OK, (64, 48), lambda p: _write(p, good))
    case(os.fsdecode(b"dir-\xff\xfe/inside.jpg"), OK, (64, 48), lambda p: _write(p, good))
    case(
        os.fsdecode(b"half-utf8-\xe6\x97.png"),
        OK,
        (30, 30),
        lambda p: _save(p, Image.new("RGB", (30, 30), "red")),
    )
    case(os.fsdecode(b"bad-\xff-not-an-image.jpg"), FAILED, None, lambda p: p.write_text("no"))
    # --- odd but valid names
    case("y" * 251 + ".jpg", OK, (64, 48), lambda p: _write(p, good))  # 255 bytes: the maximum
    case("control-\x01\x7f-chars.jpg", OK, (64, 48), lambda p: _write(p, good))
    case(" leading space.jpg", OK, (64, 48), lambda p: _write(p, good))
    case("back\\slash:colon*star?.jpg", OK, (64, 48), lambda p: _write(p, good))
    case("double.jpg.png", OK, (64, 48), lambda p: _write(p, good))
    case("hardlink.jpg", OK, (64, 48), lambda p: os.link(root / "plain.jpg", p))
    # --- things that are not regular files, behind a photo's name
    case(
        "fifo-link.jpg",
        ABSENT,
        None,
        lambda p: (os.mkfifo(root / "fifo-target"), os.symlink(root / "fifo-target", p)),
    )
    case("dev-zero.jpg", ABSENT, None, lambda p: os.symlink("/dev/zero", p))
    case("dev-null.jpg", ABSENT, None, lambda p: os.symlink("/dev/null", p))
    case("socket.jpg", ABSENT, None, _unix_socket)
    case("empty-folder.png", ABSENT, None, lambda p: p.mkdir())
    # --- huge files that must not be read in full
    case(
        "sparse-20gb.jpg",
        FAILED,
        None,
        lambda p: write_sparse(p, 20 * 10**9),
        why="over the 2.0 GB limit",
    )
    case("sparse-1gb-zeros.jpg", FAILED, None, lambda p: write_sparse(p, 10**9), why="not an image")
    case("good-then-zeros.jpg", OK, (64, 48), lambda p: write_sparse(p, 3 * 2**20, good))
    # --- headers that claim more than they hold (MAX_PIXELS is 1,000,000 in this test)
    case("sixteen-bit-large.png", OK, (1000, 900), lambda p: write_flat_png(p, 1000, 900))
    case(
        "sixteen-bit-over.png",
        FAILED,
        None,
        lambda p: write_flat_png(p, 1100, 1000),
        why="safety limit",
    )
    case("rgba-16bit.png", OK, (300, 200), lambda p: write_flat_png(p, 300, 200, colour_type=6))
    case(
        "one-by-huge.png",
        FAILED,
        None,
        lambda p: _write(p, _png_claiming(1, 100_000_000)),
        why="safety limit",
    )
    case("zero-size.png", FAILED, None, lambda p: _write(p, _png_claiming(0, 0)))
    case("gif-huge-screen.gif", FAILED, None, _gif_with_huge_screen, why="safety limit")
    case("bmp-huge-header.bmp", FAILED, None, _bmp_claiming_huge, why="safety limit")
    case("many-scans-small.jpg", OK, (256, 256), lambda p: write_many_scans_jpeg(p, 256, 400))
    case("big-exif.jpg", OK, (64, 48), _jpeg_with_big_exif)
    if os.geteuid() != 0:  # root reads everything, so the case means nothing there
        case("unreadable.jpg", FAILED, None, lambda p: (_write(p, good), p.chmod(0)))
    return cases


def _bytes_read() -> int:
    """Bytes this process has read through system calls so far (Linux /proc/self/io)."""
    with open("/proc/self/io") as io_stats:
        return int(next(line for line in io_stats if line.startswith("rchar:")).split()[1])


def _unix_socket(path: Path) -> None:
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.close()  # the socket file stays


def _gif_with_huge_screen(path: Path) -> None:
    buffer = io.BytesIO()
    Image.new("P", (4, 4), 1).save(buffer, "GIF")
    data = bytearray(buffer.getvalue())
    data[6:10] = struct.pack("<HH", 65535, 65535)  # logical screen: 4.3 gigapixels
    _write(path, bytes(data))


def _bmp_claiming_huge(path: Path) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), "red").save(buffer, "BMP")
    data = bytearray(buffer.getvalue())
    data[18:26] = struct.pack("<ii", 50_000, 50_000)
    _write(path, bytes(data))


def _jpeg_with_big_exif(path: Path) -> None:
    exif = Image.Exif()
    exif[0x010E] = "x" * 60_000  # ImageDescription: a 60 KB APP1 segment
    make_photo(path, "red", size=(64, 48), exif=exif.tobytes())


def _palette_with_transparency(path: Path) -> None:
    image = Image.new("P", (20, 20), 0)
    image.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    image.paste(1, (5, 5, 15, 15))
    _save(path, image, transparency=0)


def _animated_gif(path: Path) -> None:
    frames = [Image.new("RGB", (32, 32), c) for c in ("red", "green", "blue")]
    path.parent.mkdir(parents=True, exist_ok=True)
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)


def _exif_rotated(path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise when shown
    make_photo(path, "red", size=(60, 40), exif=exif.tobytes())


def _png_with_bad_crc(path: Path) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (20, 20), "red").save(buffer, "PNG")
    data = bytearray(buffer.getvalue())
    data[-20] ^= 0xFF  # inside the IDAT chunk
    _write(path, bytes(data))


def test_every_bad_input_is_indexed_or_recorded(
    library: Library, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr("photosearch.files.imaging.MAX_PIXELS", 1_000_000)
    root = tmp_path / "corpus"
    root.mkdir()
    cases = build_corpus(root)
    assert len(cases) >= 70
    library.add_folder(root)
    read_before = _bytes_read()
    report = library.index()  # must not raise
    assert _bytes_read() - read_before < 100 * 2**20  # 21 GB of sparse files are not read
    assert report.encoding.encoded >= 1
    with library.catalog.session() as session:
        rows = {p.path: p for p in session.scalars(select(Photo).where(Photo.present())).all()}
        vectors = set(session.scalars(select(Vector.photo_id)).all())
    problems = []
    for case in cases:
        row = rows.get(str(root / case.name))
        if case.expect == ABSENT:
            if row is not None:
                problems.append(f"{case.name!r}: catalogued but should be left out")
            continue
        if row is None:
            problems.append(f"{case.name!r}: missing from the catalog")
            continue
        if row.status == "ok":
            if case.expect == FAILED:
                problems.append(f"{case.name!r}: indexed but should have failed")
            if row.id not in vectors or not (row.width and row.height):
                problems.append(f"{case.name!r}: ok without a vector or a size")
            if case.size is not None and (row.width, row.height) != case.size:
                problems.append(f"{case.name!r}: size {(row.width, row.height)} != {case.size}")
        else:
            if case.expect == OK:
                problems.append(f"{case.name!r}: failed: {row.error}")
            reason = row.error or ""
            if not reason or "Traceback" in reason or len(reason) > 300:
                problems.append(f"{case.name!r}: unreadable reason {reason!r}")
            if case.why and case.why not in reason:
                problems.append(f"{case.name!r}: reason {reason!r} lacks {case.why!r}")
    assert not problems, "\n".join(problems)
    assert library.status().pending == 0
    again = library.index()  # a second run is a no-op, failures are not retried forever
    assert again.encoding.encoded == 0 and not again.scan.changes.any


def test_file_deleted_between_scan_and_decode(library: Library, tmp_path: Path):
    root = tmp_path / "photos"
    keep = make_photo(root / "keep.jpg", "red")
    doomed = make_photo(root / "doomed.jpg", "blue")
    library.add_folder(root)
    library.scan()
    doomed.unlink()
    result = encode_pending(library.catalog, library.store, library.encoder, library.model_id)
    assert (result.encoded, result.vanished, result.failed) == (1, 1, 0)
    with library.catalog.session() as session:
        assert session.scalars(select(Photo.path).where(Photo.present())).all() == [str(keep)]


def test_file_deleted_between_walk_and_hash(library: Library, tmp_path: Path):
    root = tmp_path / "photos"
    root.mkdir()
    library.add_folder(root)
    ghost = str(root / "ghost.jpg")
    with library.catalog.session() as session:
        folders = list(session.scalars(select(Folder)).all())
        for folder in folders:
            session.expunge(folder)
    changes = reconcile(library.catalog.session, {ghost: FileStat(ghost, 100, 1)}, folders)
    assert not changes.any and not changes.added


# --- limits on what one photo may cost -------------------------------------------------------

TINY_PRE = Preprocessing(size=32, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))


@pytest.fixture(scope="session")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Costly files, written once per session and only when a test asks for them."""
    root = tmp_path_factory.mktemp("hostile")
    made: dict[str, Path] = {}

    class Lazy(dict):
        def __missing__(self, key: str) -> Path:
            writers = {
                "bomb16": lambda p: write_flat_png(p, 9400, 9400),  # 177 MB decoded, ~180 KB
                "slow": lambda p: write_many_scans_jpeg(p, 4096, 6000),  # several seconds
                "mp100": lambda p: write_large_jpeg(p, 10_000, 10_000),  # 100 Mpx
            }
            suffix = ".png" if key == "bomb16" else ".jpg"
            made[key] = writers[key](root / f"{key}{suffix}")
            return made[key]

    return Lazy()


def test_sixteen_bit_bomb_png_costs_its_decoded_bytes_not_its_file_size(hostile):
    path = hostile["bomb16"]
    assert path.stat().st_size < 400_000
    cost = decode_cost(path, 224)
    assert cost >= 9400 * 9400 * 2  # the memory the decode takes, known from the header


def test_decode_over_the_memory_limit_is_refused_with_a_reason(hostile):
    limits = DecodeLimits.current().with_changes(memory_bytes=100 * 2**20)
    with pytest.raises(DecodeRefused, match=r"would need 1\d\d MB of memory .* 105 MB limit"):
        load_image(hostile["bomb16"], min_size=224, limits=limits)


def test_sixteen_bit_bomb_png_decodes_reduced_within_the_budget(hostile):
    image, info = load_image(hostile["bomb16"], min_size=224)
    assert (info.width, info.height) == (9400, 9400)
    assert image.mode == "RGB" and 224 <= min(image.size) < 9400  # never converted full size


def test_concurrent_decodes_share_one_memory_budget(tmp_path: Path):
    """Four 16-bit PNGs decoded by four threads: the memory held at once stays under the
    budget, so they wait for each other instead of decoding together."""
    paths = [write_flat_png(tmp_path / f"p{i}.png", 3000, 3000) for i in range(4)]  # 18 MB each
    cost = decode_cost(paths[0], 224)
    budget = DecodeBudget(total_bytes=int(cost * 1.5))  # room for one at a time
    peak = []
    original_reserve = budget.reserve

    def watched(nbytes: int):
        peak.append(budget.used_bytes + nbytes)
        return original_reserve(nbytes)

    budget.reserve = watched  # type: ignore[method-assign]
    with ThreadPoolExecutor(4) as pool:
        images = list(pool.map(lambda p: load_image(p, 224, budget=budget)[0], paths))
    assert len(images) == 4 and budget.used_bytes == 0
    assert max(peak) > cost  # the threads did meet: some had to wait
    with budget.reserve(cost), budget.reserve(0):
        assert budget.used_bytes == cost


def test_decode_pool_holds_the_memory_while_the_worker_decodes(hostile):
    path = hostile["bomb16"]
    cost = decode_cost(path, TINY_PRE.size)
    budget = DecodeBudget(total_bytes=cost)  # exactly one such photo at a time
    with DecodePool(2, TINY_PRE, budget=budget) as pool:
        first, second = pool.submit(str(path)), pool.submit(str(path))
        deadline = time.monotonic() + 20
        while budget.used_bytes == 0 and time.monotonic() < deadline:
            time.sleep(0.005)
        held = []
        while not second.done():  # sampled while the two decodes run, one after the other
            held.append(budget.used_bytes)
            time.sleep(0.005)
        assert len(held) > 20 and max(held) == cost
        assert held.count(0) < len(held) / 5  # held during the decodes, not just while queued
        assert first.result().pixels.shape == second.result().pixels.shape == (3, 32, 32)
    assert budget.used_bytes == 0


def test_budget_makes_a_second_decode_wait_until_the_first_is_done():
    budget = DecodeBudget(total_bytes=100)
    order: list[str] = []
    with budget.reserve(80):
        waiter = threading.Thread(
            target=lambda: (budget.reserve(80).__enter__(), order.append("second"))
        )
        waiter.start()
        waiter.join(0.3)
        assert waiter.is_alive() and order == []  # blocked: 80 + 80 > 100
        order.append("first done")
    waiter.join(5)
    assert order == ["first done", "second"]


def test_pixel_limit_is_the_documented_one_in_every_thread(hostile):
    """A 100 Mpx photo is under the 180 Mpx limit: it decodes in draft mode every time, from
    eight threads at once (it was refused at random when the limit used warning filters)."""
    path = hostile["mp100"]
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: load_image(path, min_size=224)[1], range(8)))
    assert all((info.width, info.height) == (10_000, 10_000) for info in results)
    assert DecodeLimits.current().max_pixels == 180_000_000


def test_100_megapixel_jpeg_is_indexed(library: Library, hostile, tmp_path: Path):
    folder = tmp_path / "camera"
    folder.mkdir()
    os.symlink(hostile["mp100"], folder / "P1000001.jpg")
    make_photo(folder / "small.jpg")
    library.add_folder(folder)
    report = library.index()
    assert (report.encoding.encoded, report.encoding.failed) == (2, 0)
    with library.catalog.session() as session:
        assert (10_000, 10_000) in session.execute(select(Photo.width, Photo.height)).all()


@pytest.mark.timeout(120)
def test_slow_photo_is_recorded_with_a_reason_and_the_run_goes_on(
    library: Library, hostile, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("PHOTOSEARCH_DECODE_SECONDS", "1.5")
    folder = tmp_path / "photos"
    os.makedirs(folder)
    os.symlink(hostile["slow"], folder / "6000-scans.jpg")
    for colour in ("red", "green", "blue"):
        make_photo(folder / f"{colour}.jpg", colour)
    library.add_folder(folder)
    started = time.monotonic()
    report = library.index()
    assert time.monotonic() - started < 60
    assert (report.encoding.encoded, report.encoding.failed) == (3, 1)
    assert dict(library.status().failures)[str(folder / "6000-scans.jpg")] == (
        "took longer than 1.5 s to decode"
    )


@pytest.mark.parametrize("draft", [True, False], ids=["draft", "full-size"])
@pytest.mark.timeout(120)
def test_time_limit_holds_with_and_without_draft_mode(hostile, draft: bool):
    limits = DecodeLimits.current().with_changes(seconds=1.0)
    started = time.monotonic()
    with DecodePool(1, TINY_PRE, limits, draft=draft) as pool:
        slow = pool.submit(str(hostile["slow"])).result()
        assert isinstance(slow, DecodeRefused) and "longer than 1 s" in str(slow)
        assert time.monotonic() - started < 30
        quick = pool.submit(str(make_photo(hostile["slow"].parent / "ok.jpg"))).result()
    assert quick.pixels.shape == (3, 32, 32)  # a fresh worker took over after the kill


# --- FIFOs, devices, files swapped mid-run ---------------------------------------------------


@pytest.mark.timeout(60)
def test_photo_swapped_for_a_fifo_during_index_does_not_hang(library: Library, tmp_path: Path):
    folder = tmp_path / "photos"
    keep = make_photo(folder / "keep.jpg", "red")
    swapped = make_photo(folder / "swapped.jpg", "blue")
    library.add_folder(folder)
    library.scan()
    swapped.unlink()
    os.mkfifo(swapped)  # nobody will ever write to it
    result = encode_pending(library.catalog, library.store, library.encoder, library.model_id)
    assert (result.encoded, result.failed) == (1, 1)
    reasons = dict(library.status().failures)
    assert reasons == {str(swapped): "not a photo: the path is a FIFO (named pipe)"}
    assert str(keep) not in reasons


@pytest.mark.timeout(60)
def test_photo_swapped_for_a_fifo_before_hashing_does_not_hang(library: Library, tmp_path: Path):
    folder = tmp_path / "photos"
    folder.mkdir()
    library.add_folder(folder)
    fifo = folder / "was-a-photo.jpg"
    os.mkfifo(fifo)
    with library.catalog.session() as session:
        folders = list(session.scalars(select(Folder)).all())
        for row in folders:
            session.expunge(row)
    changes = reconcile(library.catalog.session, {str(fifo): FileStat(str(fifo), 5000, 1)}, folders)
    assert changes.errors == [(str(fifo), "not a photo: the path is a FIFO (named pipe)")]


@pytest.mark.parametrize("target", ["/dev/zero", "/dev/null", "fifo"])
@pytest.mark.timeout(30)
def test_opening_a_non_regular_file_never_blocks(tmp_path: Path, target: str):
    if target == "fifo":
        target = str(tmp_path / "pipe")
        os.mkfifo(target)
    link = tmp_path / "photo.jpg"
    os.symlink(target, link)
    with pytest.raises(NotAPhotoFile, match="not a photo: the path is a"):
        load_image(link)
    with pytest.raises(NotAPhotoFile):
        content_hash(str(link))


def test_twenty_gb_sparse_file_is_refused_without_reading_it(tmp_path: Path):
    path = write_sparse(tmp_path / "huge.jpg", 20 * 10**9, b"\xff\xd8\xff\xe0")
    before = _bytes_read()
    with pytest.raises(NotAPhotoFile, match="20.0 GB, over the 2.0 GB limit"):
        content_hash(str(path))
    with pytest.raises(NotAPhotoFile, match="over the"):
        load_image(path)
    assert _bytes_read() - before < 2**20


def test_large_non_image_is_hashed_by_its_first_megabyte(tmp_path: Path):
    one = write_sparse(tmp_path / "one.jpg", 10**9)
    two = write_sparse(tmp_path / "two.jpg", 10**9 + 1)
    before = _bytes_read()
    assert content_hash(str(one)) != content_hash(str(two))  # the size is part of it
    assert _bytes_read() - before < 4 * 2**20


def test_decoding_stops_at_the_end_of_the_image(tmp_path: Path):
    path = write_sparse(tmp_path / "tail.jpg", 1500 * 2**20, _jpeg_bytes())
    before = _bytes_read()
    image, _ = load_image(path, min_size=32)
    assert image.size == (64, 48)
    assert _bytes_read() - before < 16 * 2**20


# --- paths that cannot be opened by name -----------------------------------------------------


def test_photo_below_path_max_is_reported_as_skipped_in_status(
    library: Library, tmp_path: Path, capsys: pytest.CaptureFixture
):
    root = tmp_path / "deep"
    make_photo(root / "shallow.jpg")
    deep = make_deep_photo(root, depth=20, name_length=250, photo=_jpeg_bytes())
    assert len(deep) > 4096
    library.add_folder(root)
    report = library.index()
    assert report.encoding.encoded == 1
    ((skipped, reason),) = library.status().skipped
    assert deep.startswith(skipped + os.sep) and reason.startswith("path too long to open")


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_photo_at_the_bottom_of_a_10000_deep_tree(library: Library, tmp_path: Path):
    root = tmp_path / "tree"
    try:
        make_deep_photo(root, depth=10_000, name_length=1, photo=_jpeg_bytes())
        make_photo(root / "top.jpg")
        library.add_folder(root)
        assert library.index().encoding.encoded == 1
        ((_, reason),) = library.status().skipped
        assert reason.startswith("path too long to open")
    finally:
        remove_deep_tree(root)


# --- names that are not UTF-8 ----------------------------------------------------------------


def test_catalog_keeps_non_utf8_paths_exactly(library: Library, tmp_path: Path):
    folder = tmp_path / os.fsdecode(b"f\xe9tes")
    photo = make_photo(folder / os.fsdecode(b"bad-\xff\xfe-name.jpg"), "red")
    library.add_folder(folder)
    library.index()
    (result,) = library.search(SearchQuery(text="red", k=1))
    assert os.fsencode(result.path) == os.fsencode(str(photo))
    assert Path(result.path).read_bytes() == photo.read_bytes()  # opens by the stored path
    with sqlite3.connect(library.directory / "catalog.sqlite") as raw:
        kinds = dict(raw.execute("SELECT path, typeof(path) FROM photos").fetchall())
    assert list(kinds.values()) == ["blob"]  # stored as its bytes; UTF-8 paths stay text
    assert library.folders()[0].path == str(folder)
    assert (
        library.search(SearchQuery(text="red", k=1, folder=folder))[0].photo_id == result.photo_id
    )


def test_display_path_shows_bad_bytes_and_shortens():
    name = os.fsdecode(b"/photos/bad-\xff\xfe-name.jpg")
    assert display_path(name) == "/photos/bad-\\xff\\xfe-name.jpg"
    shown = display_path("/" + "d/" * 3000 + "deep.jpg", limit=160)
    assert len(shown) <= 160 and shown.startswith("/d/") and shown.endswith("deep.jpg")


# --- the command line, as a user runs it -----------------------------------------------------

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    models = tmp_path_factory.mktemp("cli-models")
    build_tiny_bundle(models / "tiny")
    return models


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    env.update(extra)
    return env


def _run(library: Path, models: Path, *args: str | bytes, timeout: float = 120):
    return subprocess.run(
        photosearch_command(library, models, *args),
        capture_output=True,
        env=_env(),
        timeout=timeout,
    )


def _one_line_error(result: subprocess.CompletedProcess) -> str:  # type: ignore[type-arg]
    err = result.stderr.decode("utf-8", "backslashreplace").strip()
    assert result.returncode != 0, err
    assert b"Traceback" not in result.stderr and len(err.splitlines()) == 1, err
    return err


def test_cli_indexes_searches_and_opens_a_non_utf8_name(tmp_path: Path, tiny_models: Path):
    folder = tmp_path / "photos"
    bad = os.fsencode(folder) + b"/bad-\xff\xfe-name.jpg"
    make_photo(folder / "blue.jpg", "blue")
    make_photo(Path(os.fsdecode(bad)), "red")
    library = tmp_path / "lib"
    assert _run(library, tiny_models, "folders", "add", str(folder)).returncode == 0
    index = _run(library, tiny_models, "index")
    assert index.returncode == 0 and b"Traceback" not in index.stderr, index.stderr
    found = _run(library, tiny_models, "search", "red", "-k", "1")
    assert found.returncode == 0 and bad in found.stdout  # printed as the file's own bytes
    listed = _run(library, tiny_models, "search", "red", "-k", "1", "--json")
    (hit,) = json.loads(listed.stdout)
    assert os.fsencode(hit["path"]) == bad and Path(hit["path"]).is_file()
    like = _run(library, tiny_models, "search", "--like", bad, "-k", "1")
    assert like.returncode == 0 and b"blue.jpg" in like.stdout  # itself is left out
    status = _run(library, tiny_models, "status")
    assert status.returncode == 0 and b"2 indexed" in status.stdout


@pytest.mark.timeout(120)
def test_watch_indexes_a_non_utf8_name(tmp_path: Path, tiny_models: Path):
    folder = tmp_path / "photos"
    make_photo(folder / "first.jpg", "blue")
    library = tmp_path / "lib"
    assert _run(library, tiny_models, "folders", "add", str(folder)).returncode == 0
    watch = subprocess.Popen(
        photosearch_command(library, tiny_models, "watch", "--settle", "0.2"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=_env(),
    )
    try:
        lines = []
        for line in watch.stdout:  # type: ignore[union-attr]
            lines.append(line)
            if b"caught up" in line:
                break
        bad = os.fsencode(folder) + b"/caf\xe9-\xff.jpg"
        make_photo(Path(os.fsdecode(bad)), "red")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and watch.poll() is None:
            with sqlite3.connect(library / "catalog.sqlite", timeout=10) as raw:
                rows = raw.execute(
                    "SELECT count(*) FROM vectors JOIN photos ON "
                    "photos.id = vectors.photo_id WHERE photos.path = ?",
                    (bad,),
                ).fetchone()[0]
            if rows:
                break
            time.sleep(0.2)
        assert watch.poll() is None, b"".join(lines)
        assert rows == 1
    finally:
        watch.send_signal(signal.SIGINT)
        rest, _ = watch.communicate(timeout=60)
    assert watch.returncode == 0 and b"Traceback" not in rest, rest


@pytest.mark.timeout(60)
def test_search_like_a_fifo_answers_at_once(tmp_path: Path, tiny_models: Path):
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    result = _run(tmp_path / "lib", tiny_models, "search", "--like", str(fifo), timeout=50)
    assert "not a photo: the path is a FIFO" in _one_line_error(result)


def test_query_with_bytes_that_are_not_utf8(tmp_path: Path, tiny_models: Path):
    result = _run(tmp_path / "lib", tiny_models, "search", b"caf\xe9 -\xff")
    assert "not UTF-8" in _one_line_error(result)


@pytest.mark.timeout(120)
def test_two_ctrl_c_stop_an_index_stuck_in_a_slow_photo(tmp_path: Path, tiny_models: Path):
    folder = tmp_path / "photos"
    write_many_scans_jpeg(folder / "slow.jpg", 4096, 30_000)  # a minute or more to decode
    library = tmp_path / "lib"
    assert _run(library, tiny_models, "folders", "add", str(folder)).returncode == 0
    index = subprocess.Popen(
        photosearch_command(library, tiny_models, "index"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_env(PHOTOSEARCH_DECODE_SECONDS="300"),
        start_new_session=True,
    )
    time.sleep(4)  # scanned, and decoding the slow photo
    assert index.poll() is None
    os.killpg(index.pid, signal.SIGINT)  # as a terminal's Ctrl-C: the whole process group
    time.sleep(0.5)
    os.killpg(index.pid, signal.SIGINT)
    started = time.monotonic()
    _, err = index.communicate(timeout=60)
    assert time.monotonic() - started < 10
    assert index.returncode == 130 and b"Traceback" not in err, err


CLI_MISTAKES = {
    "only spaces": (["search", "   "], "give some text"),
    "only negative terms": (["search", "-dog -snow"], "only excluded terms"),
    "only negative terms after --": (["search", "--", "-dog -snow"], "only excluded terms"),
    "only --not": (["search", "", "--not", "dog"], "only excluded terms"),
    "k zero": (["search", "dog", "-k", "0"], "at least 1, not 0"),
    "k negative": (["search", "dog", "-k", "-1"], "at least 1, not -1"),
    "k not a number": (["search", "dog", "-k", "many"], "not a whole number"),
    "batch size negative": (["index", "--batch-size", "-5"], "at least 1, not -5"),
    "batch size zero": (["index", "--batch-size", "0"], "at least 1, not 0"),
    "threads zero": (["index", "--threads", "0"], "at least 1, not 0"),
    "wait negative": (["index", "--wait", "-1"], "0 or more"),
    "settle negative": (["watch", "--settle", "-2"], "0 or more"),
    "folder missing": (["search", "dog", "--folder", "/no/such/folder"], "no such folder"),
    "like missing": (["search", "--like", "/no/such/photo.jpg"], "no such file"),
    "demo k zero": (["demo", "-k", "0"], "at least 1"),
}


@pytest.mark.parametrize("argv, message", CLI_MISTAKES.values(), ids=CLI_MISTAKES.keys())
def test_cli_mistake_gets_one_line_and_a_nonzero_exit(
    argv: list[str],
    message: str,
    tmp_path: Path,
    tiny_models: Path,
    capsys: pytest.CaptureFixture,
):
    try:
        code = cli_main(
            [
                "--library",
                str(tmp_path / "lib"),
                "--models-dir",
                str(tiny_models),
                "--model",
                "tiny",
                *argv,
            ]
        )
    except SystemExit as exit_:  # argparse's way out: the process would exit with this code
        code = exit_.code
    out, err = capsys.readouterr()
    assert code != 0 and message in err and len(err.strip().splitlines()) == 1, err


def test_empty_query_is_a_photosearch_error(library: Library):
    for text in ("", "   ", "-dog -snow"):
        with pytest.raises(EmptyQuery):
            check_query(SearchQuery(text=text))
    with pytest.raises(EmptyQuery):
        library.search(SearchQuery(text="-dog"))
    assert issubclass(EmptyQuery, PhotosearchError)
    assert check_query(SearchQuery(text="-dog", like=Path("x.jpg"))).negatives == ("dog",)
