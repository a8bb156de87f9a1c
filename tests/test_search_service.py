"""`photosearch search` answered by a process that has the library open, over a real Unix
socket, with real CLI subprocesses on both sides of the comparison."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from photosearch.cli.main import main, serve_searches
from photosearch.cli.search_service import DISABLE_ENV, SearchServer, socket_path
from photosearch.library.facade import Library
from photosearch.models.providers import ModelRegistry
from tests.support.tiny_bundle import build_tiny_bundle

pytestmark = pytest.mark.skipif(not hasattr(socket, "AF_UNIX"), reason="no Unix sockets here")
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def indexed(tmp_path: Path, photo_dir: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    models = tmp_path / "models"
    build_tiny_bundle(models / "tiny")
    build_tiny_bundle(models / "tiny2", name="tiny2", seed=1)
    common = ["--library", str(tmp_path / "lib"), "--models-dir", str(models), "--model", "tiny"]
    assert main([*common, "folders", "add", str(photo_dir)]) == 0
    assert main([*common, "index"]) == 0
    return common


def _cli(*argv: str, served: bool = True) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "plugins")]))
    if not served:
        env[DISABLE_ENV] = "1"
    return subprocess.run(
        [sys.executable, "-m", "photosearch", *argv],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _open(tmp_path: Path) -> Library:
    return Library(
        tmp_path / "lib", registry=ModelRegistry(tmp_path / "models"), model="tiny", threads=1
    )


def test_a_running_process_answers_the_same_search(indexed: list[str], tmp_path: Path):
    with _open(tmp_path) as library:
        server = serve_searches(library)
        assert server is not None
        try:
            path = socket_path(tmp_path / "lib")
            assert path is not None and stat.S_IMODE(path.stat().st_mode) == 0o600
            assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700

            served = _cli(*indexed, "search", "red", "-k", "3", "--json")
            assert served.returncode == 0, served.stderr
            assert server.served == 1
            alone = _cli(*indexed, "search", "red", "-k", "3", "--json", served=False)
            assert server.served == 1
            assert json.loads(served.stdout) == json.loads(alone.stdout)
            assert Path(json.loads(served.stdout)[0]["path"]).name == "red.jpg"

            # another model than the serving process's: searched in-process, with that model
            other = _cli(*indexed[:-1], "tiny2", "search", "red", "-k", "1")
            assert server.served == 1 and other.returncode == 1
            assert "not with the model tiny2" in other.stderr

            # the served command's own messages and exit status come back as they are
            only_not = _cli(*indexed, "search", "red", "--folder", str(tmp_path / "lib"))
            assert only_not.returncode == 0 and server.served == 2
            assert "no matches" in only_not.stdout
        finally:
            server.close()
        assert not path.exists()


def test_one_server_per_library_and_stale_sockets_are_replaced(indexed: list[str], tmp_path: Path):
    path = socket_path(tmp_path / "lib")
    assert path is not None
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(os.fspath(path))
    dead.close()  # what a killed process leaves behind: a file nobody listens on
    assert path.exists()

    def run(_command: str, _arguments: dict) -> int:
        print("served")
        return 0

    first = SearchServer(tmp_path / "lib", run, frozenset({"search"}))
    assert first.start()
    second = SearchServer(tmp_path / "lib", run, frozenset({"search"}))
    assert not second.start()
    first.close()
    assert not path.exists()


def test_a_folder_others_can_enter_is_never_used(
    indexed: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "photosearch").mkdir(mode=0o755)
    os.chmod(shared / "photosearch", 0o755)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(shared))
    assert socket_path(tmp_path / "lib") is None
    with _open(tmp_path) as library:
        assert serve_searches(library) is None
    result = _cli(*indexed, "search", "red", "-k", "1")
    assert result.returncode == 0 and "red.jpg" in result.stdout
