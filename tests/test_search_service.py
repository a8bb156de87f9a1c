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


def _cli(
    *argv: str, served: bool = True, python_options: bool = False
) -> subprocess.CompletedProcess:
    """The CLI in a subprocess; with ``python_options`` the arguments up to the command line's
    first "--library" go to Python itself (e.g. -X importtime)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "plugins")]))
    if not served:
        env[DISABLE_ENV] = "1"
    split = argv.index("--library") if python_options else 0
    return subprocess.run(
        [sys.executable, *argv[:split], "-m", "photosearch", *argv[split:]],
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


HEAVY = ("numpy", "sqlalchemy", "onnxruntime", "hnswlib", "PIL", "dateparser", "scipy")


def _imported(stderr: str) -> set[str]:
    """Top-level names of the modules a `python -X importtime` run imported."""
    return {
        line.split("|")[-1].strip().split(".")[0]
        for line in stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }


def test_a_served_search_imports_none_of_the_app_and_prints_the_same_bytes(
    indexed: list[str], tmp_path: Path
):
    with _open(tmp_path) as library:
        server = serve_searches(library)
        assert server is not None
        try:
            plain, filtered = [], ["--json", "--not", "green", "--after", "2000-01-01"]
            for options in (plain, filtered):
                search = [*indexed, "search", "red photo", "-k", "4", *options]
                served = _cli("-X", "importtime", *search, python_options=True)
                assert served.returncode == 0, served.stderr
                alone = _cli("-X", "importtime", *search, served=False, python_options=True)
                assert alone.returncode == 0, alone.stderr
                assert served.stdout == alone.stdout  # byte for byte, text and JSON
                assert "red.jpg" in served.stdout
                imported = _imported(served.stderr)
                assert "photosearch" in imported  # the importtime lines were read
                assert not imported & set(HEAVY), imported & set(HEAVY)
                # in-process, the same search does import them: the check above can fail
                # (SQLAlchemy only for filters: a plain search reads plain SQL, issue 18)
                heavy = {"numpy", "onnxruntime"} | ({"sqlalchemy"} if options else set())
                assert heavy <= _imported(alone.stderr)
            assert server.served == 2

            # what the served parse leaves to the full CLI gets the full CLI's answer
            asked = server.served
            bad = _cli(*indexed, "search", "red", "-k", "0")
            assert bad.returncode == 2 and "must be at least 1" in bad.stderr
            helped = _cli(*indexed, "search", "--help")
            assert helped.returncode == 0 and "--all-copies" in helped.stdout
            missing = _cli(*indexed, "search", "red", "--like", str(tmp_path / "nope.jpg"))
            assert missing.returncode == 1 and "--like: no such file" in missing.stderr
            assert server.served == asked
        finally:
            server.close()


def test_the_served_parse_reads_a_search_as_the_full_cli_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
):
    from photosearch.cli.main import build_parser
    from photosearch.cli.served_search import ask_running_process, parse_search

    argv = ["--library", str(tmp_path), "search", "beach -people", "--not", "sand", "-k", "7"]
    argv += ["--after", "2019-06", "--folder", str(tmp_path), "--json", "--all-copies"]
    full = vars(build_parser().parse_args(argv))
    assert full.pop("handler") is not None
    assert parse_search(argv) == full
    for other in (["status"], ["search", "-k", "x"], ["--version"], ["search", "--help"]):
        assert parse_search(other) is None

    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    asked: list[dict] = []

    def run(_command: str, arguments: dict) -> int:
        asked.append(arguments)
        print("served")
        return 0

    server = SearchServer(tmp_path, run, frozenset({"search"}))
    assert server.start()
    try:
        assert ask_running_process(parse_search(argv)) == 0
        assert capsys.readouterr().out == "served\n" and asked[0]["query"] == "beach -people"
        for not_served in (["--language", "fr"], ["--rerank", "off"], ["--rerank-depth", "9"]):
            search = parse_search(["--library", str(tmp_path), "search", "x", *not_served])
            assert search is not None and ask_running_process(search) is None  # run here
        assert len(asked) == 1
    finally:
        server.close()
