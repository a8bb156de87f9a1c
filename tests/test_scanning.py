"""Walking folders: what is found, what is skipped, and loops that must end."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from photosearch.files.scanning import IgnoreRules, content_hash, stat_photo, walk_photos
from tests.conftest import make_photo


def _names(root: Path, rules: IgnoreRules | None = None, errors=None) -> set[str]:
    found = walk_photos(
        root,
        rules or IgnoreRules(),
        on_error=(lambda p, r: errors.append((p, r))) if errors is not None else None,
    )
    return {os.path.relpath(f.path, root) for f in found}


def test_finds_photos_recursively_with_supported_extensions(tmp_path: Path):
    make_photo(tmp_path / "a.jpg")
    make_photo(tmp_path / "B.JPEG", fmt="JPEG")
    make_photo(tmp_path / "deep" / "er" / "c.png")
    (tmp_path / "notes.txt").write_text("not a photo")
    (tmp_path / "movie.mp4").write_bytes(b"\0" * 10)
    assert _names(tmp_path) == {"a.jpg", "B.JPEG", os.path.join("deep", "er", "c.png")}


def test_file_stat_matches_disk(tmp_path: Path):
    path = make_photo(tmp_path / "a.jpg")
    (found,) = list(walk_photos(tmp_path, IgnoreRules()))
    st = path.stat()
    assert (found.path, found.size, found.mtime_ns) == (str(path), st.st_size, st.st_mtime_ns)
    assert stat_photo(str(path)) == found
    assert stat_photo(str(tmp_path / "gone.jpg")) is None
    assert stat_photo(str(tmp_path)) is None


def test_skips_hidden_and_system_folders(tmp_path: Path):
    make_photo(tmp_path / "keep.jpg")
    make_photo(tmp_path / ".hidden.jpg")
    make_photo(tmp_path / ".secret" / "a.jpg")
    make_photo(tmp_path / ".thumbnails" / "t.jpg")
    make_photo(tmp_path / "@eaDir" / "syno.jpg")
    make_photo(tmp_path / "@EADIR" / "upper.jpg")
    make_photo(tmp_path / "lost+found" / "x.jpg")
    assert _names(tmp_path) == {"keep.jpg"}


def test_ignore_patterns_and_excluded_dirs(tmp_path: Path):
    make_photo(tmp_path / "keep.jpg")
    make_photo(tmp_path / "skip_me.jpg")
    make_photo(tmp_path / "raw" / "a.jpg")
    make_photo(tmp_path / "library" / "thumb.jpg")
    rules = IgnoreRules(patterns=("skip_*", "raw"), excluded_dirs=(str(tmp_path / "library"),))
    assert _names(tmp_path, rules) == {"keep.jpg"}


def test_symlink_loop_terminates(tmp_path: Path):
    make_photo(tmp_path / "a" / "one.jpg")
    os.symlink(tmp_path, tmp_path / "a" / "loop")  # a/loop -> root -> a -> ...
    os.symlink(tmp_path / "a", tmp_path / "a" / "self")
    names = _names(tmp_path)
    assert names == {os.path.join("a", "one.jpg")}


def test_symlinked_file_is_followed(tmp_path: Path):
    target = make_photo(tmp_path / "elsewhere" / "real.jpg")
    root = tmp_path / "root"
    root.mkdir()
    os.symlink(target, root / "link.jpg")
    os.symlink(tmp_path / "missing.jpg", root / "dangling.jpg")
    errors: list[tuple[str, str]] = []
    assert _names(root, errors=errors) == {"link.jpg"}
    assert [os.path.basename(p) for p, _ in errors] == ["dangling.jpg"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads unreadable folders anyway")
def test_unreadable_folder_is_reported_not_fatal(tmp_path: Path):
    make_photo(tmp_path / "ok.jpg")
    locked = tmp_path / "locked"
    make_photo(locked / "x.jpg")
    locked.chmod(0)
    try:
        errors: list[tuple[str, str]] = []
        assert _names(tmp_path, errors=errors) == {"ok.jpg"}
        assert errors == [(str(locked), "permission denied")]
    finally:
        locked.chmod(0o755)


def test_content_hash_follows_content_not_name_or_time(tmp_path: Path):
    a = make_photo(tmp_path / "a.jpg", "red")
    b = tmp_path / "b.jpg"
    b.write_bytes(a.read_bytes())
    os.utime(b, (1_000_000, 1_000_000))
    c = make_photo(tmp_path / "c.jpg", "blue")
    assert content_hash(str(a)) == content_hash(str(b)) != content_hash(str(c))
    assert len(content_hash(str(a))) == 32
