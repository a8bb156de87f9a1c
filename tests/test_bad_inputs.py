"""A corpus of awkward files: each is indexed correctly or recorded with a readable reason,
and indexing never crashes. Built in one folder and indexed in one run, so it stays fast."""

from __future__ import annotations

import io
import os
import socket
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import select

from photosearch.catalog import Folder, Photo, Vector
from photosearch.indexing import encode_pending
from photosearch.library import Library
from photosearch.reconcile import reconcile
from photosearch.scanning import FileStat
from tests.conftest import make_photo
from tests.support.hostile_files import write_flat_png, write_many_scans_jpeg, write_sparse

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
    return struct.pack(">I", len(data)) + kind + data + struct.pack(
        ">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _png_claiming(width: int, height: int) -> bytes:
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header)
            + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + _png_chunk(b"IEND", b""))


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _save(path: Path, image: Image.Image, **save) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, **save)


def build_corpus(root: Path) -> list[Case]:
    cases: list[Case] = []

    def case(name: str, expect: str, size=None, make: Callable[[Path], object] | None = None,
             why: str | None = None):
        if make is not None:
            make(root / name)
        cases.append(Case(name, expect, size, why))

    good = _jpeg_bytes()
    case("plain.jpg", OK, (64, 48), lambda p: _write(p, good))
    case("truncated.jpg", EITHER, None, lambda p: _write(p, good[: len(good) // 2]))
    case("header-only.jpg", FAILED, None, lambda p: _write(p, good[:120]))
    case("empty.jpg", FAILED, None, lambda p: _write(p, b""))
    case("text.jpg", FAILED, None, lambda p: p.write_text("this is not a photo\n"))
    case("page.png", FAILED, None,
         lambda p: p.write_text("<!doctype html><html><body>404</body></html>"))
    case("random.jpg", FAILED, None, lambda p: _write(p, os.urandom(4096)))
    case("bomb-header.png", FAILED, None, lambda p: _write(p, _png_claiming(100_000, 100_000)))
    case("over-limit.png", FAILED, None, lambda p: _save(p, Image.new("L", (1200, 1000))))
    case("sixteen-bit.png", OK, (40, 30), lambda p: _save(
        p, Image.fromarray(np.arange(1200, dtype=np.uint16).reshape(30, 40) * 50)))
    case("cmyk.jpg", OK, (50, 40), lambda p: _save(p, Image.new("CMYK", (50, 40),
                                                                (0, 200, 200, 0))))
    case("grey.jpg", OK, (30, 20), lambda p: _save(p, Image.new("L", (30, 20), 128)))
    case("one-bit.png", OK, (33, 17), lambda p: _save(p, Image.new("1", (33, 17), 1)))
    case("palette-transparent.png", OK, (20, 20), _palette_with_transparency)
    case("rgba.png", OK, (25, 25), lambda p: _save(p, Image.new("RGBA", (25, 25),
                                                                (0, 255, 0, 100))))
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
    case("float.tif", OK, (12, 12), lambda p: _save(
        p, Image.fromarray(np.linspace(0, 1, 144, dtype=np.float32).reshape(12, 12))))
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
    case(os.fsdecode(b"half-utf8-\xe6\x97.png"), OK, (30, 30),
         lambda p: _save(p, Image.new("RGB", (30, 30), "red")))
    case(os.fsdecode(b"bad-\xff-not-an-image.jpg"), FAILED, None, lambda p: p.write_text("no"))
    # --- odd but valid names
    case("y" * 251 + ".jpg", OK, (64, 48), lambda p: _write(p, good))  # 255 bytes: the maximum
    case("control-\x01\x7f-chars.jpg", OK, (64, 48), lambda p: _write(p, good))
    case(" leading space.jpg", OK, (64, 48), lambda p: _write(p, good))
    case("back\\slash:colon*star?.jpg", OK, (64, 48), lambda p: _write(p, good))
    case("double.jpg.png", OK, (64, 48), lambda p: _write(p, good))
    case("hardlink.jpg", OK, (64, 48), lambda p: os.link(root / "plain.jpg", p))
    # --- things that are not regular files, behind a photo's name
    case("fifo-link.jpg", ABSENT, None, lambda p: (os.mkfifo(root / "fifo-target"),
                                                   os.symlink(root / "fifo-target", p)))
    case("dev-zero.jpg", ABSENT, None, lambda p: os.symlink("/dev/zero", p))
    case("dev-null.jpg", ABSENT, None, lambda p: os.symlink("/dev/null", p))
    case("socket.jpg", ABSENT, None, _unix_socket)
    case("empty-folder.png", ABSENT, None, lambda p: p.mkdir())
    # --- huge files that must not be read in full
    case("sparse-20gb.jpg", FAILED, None, lambda p: write_sparse(p, 20 * 10**9),
         why="over the 2.1 GB limit")
    case("sparse-1gb-zeros.jpg", FAILED, None, lambda p: write_sparse(p, 10**9),
         why="not an image")
    case("good-then-zeros.jpg", OK, (64, 48), lambda p: write_sparse(p, 3 * 2**20, good))
    # --- headers that claim more than they hold (MAX_PIXELS is 1,000,000 in this test)
    case("sixteen-bit-large.png", OK, (1000, 900), lambda p: write_flat_png(p, 1000, 900))
    case("sixteen-bit-over.png", FAILED, None, lambda p: write_flat_png(p, 1100, 1000),
         why="safety limit")
    case("rgba-16bit.png", OK, (300, 200),
         lambda p: write_flat_png(p, 300, 200, colour_type=6))
    case("one-by-huge.png", FAILED, None, lambda p: _write(p, _png_claiming(1, 100_000_000)),
         why="safety limit")
    case("zero-size.png", FAILED, None, lambda p: _write(p, _png_claiming(0, 0)))
    case("gif-huge-screen.gif", FAILED, None, _gif_with_huge_screen,
         why="safety limit")
    case("bmp-huge-header.bmp", FAILED, None, _bmp_claiming_huge,
         why="safety limit")
    case("many-scans-small.jpg", OK, (256, 256),
         lambda p: write_many_scans_jpeg(p, 256, 400))
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
    monkeypatch.setattr("photosearch.imaging.MAX_PIXELS", 1_000_000)
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
