"""A run's files are written whole or not at all: a write killed half-way (Ctrl-C, a full disk)
leaves the previous file, or none, so the next run resumes instead of failing on a truncated
cache or checkpoint."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from photosearch_train import files  # noqa: E402
from photosearch_train.data import cached  # noqa: E402


def _half_written_then(exc: BaseException):
    """A writer that puts some bytes on disk and then fails, as a kill or a full disk would."""

    def write(handle) -> None:
        handle.write(b"\x93NUMPY half of a file")
        handle.flush()
        raise exc

    return write


def test_an_interrupted_cache_write_leaves_no_file_and_the_next_run_recomputes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "cache" / "teacher-train.npy"
    real_save = np.save

    def killed_save(file, arr, **kwargs) -> None:
        if isinstance(file, (str, Path)):  # np.save given the path itself writes in place
            with open(file, "wb") as handle:
                handle.write(b"\x93NUMPY")
            raise KeyboardInterrupt
        file.write(b"\x93NUMPY")  # the header is out, the data is not
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "save", killed_save)
    with pytest.raises(KeyboardInterrupt):
        cached(target, lambda: np.ones((4, 3), np.float32))
    assert not target.exists()
    assert list(target.parent.iterdir()) == []  # no partial file left behind either

    monkeypatch.setattr(np, "save", real_save)
    calls = []
    value = cached(target, lambda: calls.append(1) or np.full((4, 3), 2.0, np.float32))
    assert calls == [1] and np.array_equal(np.load(target), value)
    assert np.array_equal(cached(target, lambda: calls.append(2)), value)  # loaded, not recomputed
    assert calls == [1]


def test_a_checkpoint_overwrite_that_fails_keeps_the_previous_checkpoint(tmp_path: Path) -> None:
    target = tmp_path / "last.pt"
    files.save_torch(target, {"step": 3, "weights": torch.arange(5.0)})
    with pytest.raises(OSError) as raised:
        files.write_atomically(
            target, _half_written_then(OSError(errno.ENOSPC, "No space left on device"))
        )
    assert raised.value.errno == errno.ENOSPC
    state = torch.load(target, weights_only=True)
    assert state["step"] == 3 and torch.equal(state["weights"], torch.arange(5.0))
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_done_markers_and_logs_are_complete_json(tmp_path: Path) -> None:
    done = files.save_json(tmp_path / "phase" / "done.json", {"finished": True, "steps": 7})
    assert json.loads(done.read_text(encoding="utf-8")) == {"finished": True, "steps": 7}
    with pytest.raises(KeyboardInterrupt):
        files.write_atomically(done, _half_written_then(KeyboardInterrupt()))
    assert json.loads(done.read_text(encoding="utf-8")) == {"finished": True, "steps": 7}
