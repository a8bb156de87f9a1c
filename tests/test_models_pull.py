"""`photosearch models pull` against a stand-in hub: the real CLI, in subprocesses, over HTTP."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import make_photo
from tests.support.fake_hub import FakeHub, immich_style_bundle, runtime_files, wait_for

ROOT = Path(__file__).resolve().parent.parent
REPO = "immich-app/ViT-B-32__openai"  # a catalogue name, served by the stand-in with tiny weights
NAME = "ViT-B-32__openai"
BALLAST = 1_000_000  # an external-data file big enough to be cut mid-transfer


@pytest.fixture(scope="module")
def hosted_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return immich_style_bundle(tmp_path_factory.mktemp("hosted") / "bundle", ballast_bytes=BALLAST)


@pytest.fixture
def hub(hosted_bundle: Path):
    with FakeHub() as fake:
        fake.add_bundle(REPO, hosted_bundle)
        yield fake


def _env(tmp_path: Path, hub: FakeHub, **extra: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.upper().startswith(("HF_", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"))
    }
    env.update(
        PYTHONPATH=f"{ROOT}{os.pathsep}{ROOT / 'plugins'}",
        HF_ENDPOINT=hub.endpoint,
        HF_HOME=str(tmp_path / "hf-home"),
        HF_HUB_DISABLE_TELEMETRY="1",
        NO_PROXY="127.0.0.1,localhost",
        PHOTOSEARCH_MODELS=str(tmp_path / "models"),
        PHOTOSEARCH_LIBRARY=str(tmp_path / "library"),
    )
    env.update(extra)
    return env


def _cli(
    tmp_path: Path, hub: FakeHub, *argv: str, timeout: float = 120, **extra: str
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "photosearch", *argv],
        capture_output=True,
        text=True,
        env=_env(tmp_path, hub, **extra),
        timeout=timeout,
    )


def _installed(tmp_path: Path) -> list[str]:
    models = tmp_path / "models"
    return (
        sorted(p.name for p in models.iterdir() if not p.name.startswith("."))
        if models.is_dir()
        else []
    )


def _ballast_part(tmp_path: Path) -> Path:
    return tmp_path / "models" / ".staging-immich-app_ViT-B-32__openai" / "visual" / "ballast.part"


def test_pull_installs_only_runtime_files_with_a_manifest(
    tmp_path: Path, hub: FakeHub, hosted_bundle: Path
):
    done = _cli(tmp_path, hub, "models", "pull", NAME)
    assert done.returncode == 0, done.stderr
    bundle = tmp_path / "models" / NAME
    files = sorted(p.relative_to(bundle).as_posix() for p in bundle.rglob("*") if p.is_file())
    assert files == sorted([*runtime_files(hosted_bundle), "manifest.json"])
    assert "visual/ballast" in files and "textual/tokenizer_config.json" in files
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["source"]["repository"] == REPO
    assert manifest["source"]["hub"] == hub.endpoint
    assert manifest["files"]["visual/ballast"]["sha256"] == hub.file(REPO, "visual/ballast").sha256
    assert not any(p.name.startswith(".") for p in (tmp_path / "models").iterdir())
    listed = _cli(tmp_path, hub, "models", "list", "--json")
    assert NAME in [m["name"] for m in json.loads(listed.stdout)["installed"]]
    again = _cli(tmp_path, hub, "models", "pull", NAME)
    assert again.returncode == 0 and "already installed" in again.stdout


def test_cut_connection_is_resumed_with_a_range_request(tmp_path: Path, hub: FakeHub):
    hub.faults.cut["visual/ballast"] = (600_000, 1)
    done = _cli(tmp_path, hub, "models", "pull", REPO)
    assert done.returncode == 0, done.stderr
    gets = hub.requests_for(hub.file(REPO, "visual/ballast").sha256)
    assert [g.range for g in gets] == [None, "bytes=524288-"]
    assert gets[1].bytes_sent == BALLAST - 524288  # only the rest was fetched again


def test_ctrl_c_keeps_the_partial_file_and_the_next_pull_resumes(tmp_path: Path, hub: FakeHub):
    hub.faults.stall["visual/ballast"] = 600_000
    process = subprocess.Popen(
        [sys.executable, "-m", "photosearch", "models", "pull", NAME],
        env=_env(tmp_path, hub),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # as from a terminal: a suite started in the background (`pytest &`) hands its children
        # an ignored SIGINT, and Python then never raises KeyboardInterrupt
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        part = _ballast_part(tmp_path)
        assert wait_for(lambda: part.is_file() and part.stat().st_size >= 524288, timeout=60)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 130
    assert "interrupted" in stderr.splitlines()[-1]
    assert _installed(tmp_path) == []  # nothing half-installed is visible
    kept = part.stat().st_size
    hub.faults.stall.clear()
    hub.release_stalls()
    done = _cli(tmp_path, hub, "models", "pull", NAME)
    assert done.returncode == 0, done.stderr
    resumed = hub.requests_for(hub.file(REPO, "visual/ballast").sha256)[-1]
    assert resumed.range == f"bytes={kept}-"
    assert resumed.bytes_sent == BALLAST - kept
    assert _installed(tmp_path) == [NAME]


def test_a_file_that_does_not_match_the_hub_sha256_is_refused(tmp_path: Path, hub: FakeHub):
    hub.faults.corrupt.add("visual/ballast")
    done = _cli(tmp_path, hub, "models", "pull", NAME)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert "visual/ballast" in lines[-1] and "does not match the hub's hash" in lines[-1]
    assert _installed(tmp_path) == []
    assert not _ballast_part(tmp_path).exists()  # the bad bytes are not kept for a "resume"
    hub.faults.corrupt.clear()
    assert _cli(tmp_path, hub, "models", "pull", NAME).returncode == 0


def test_a_full_disk_stops_with_one_line_and_resumes_later(tmp_path: Path, hub: FakeHub):
    """The write limit of RLIMIT_FSIZE (EFBIG) stands in for a full disk (ENOSPC): both are a
    failed write of the .part file, handled by the same code."""
    limit = 700_000

    def limit_file_size() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    process = subprocess.run(
        [sys.executable, "-m", "photosearch", "models", "pull", NAME],
        env=_env(tmp_path, hub),
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=limit_file_size,
    )
    assert process.returncode == 1
    last = process.stderr.strip().splitlines()[-1]
    assert last.startswith("photosearch: no room to write in") and "resume" in last
    assert _installed(tmp_path) == []
    assert _ballast_part(tmp_path).stat().st_size > 0  # kept for the resume
    done = _cli(tmp_path, hub, "models", "pull", NAME)
    assert done.returncode == 0, done.stderr
    assert hub.requests_for(hub.file(REPO, "visual/ballast").sha256)[-1].range is not None


def test_remove_deletes_an_unfinished_download_and_nothing_outside(tmp_path: Path, hub: FakeHub):
    def limit_file_size() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (700_000, 700_000))

    subprocess.run(
        [sys.executable, "-m", "photosearch", "models", "pull", NAME],
        env=_env(tmp_path, hub),
        capture_output=True,
        timeout=120,
        preexec_fn=limit_file_size,
    )
    assert _ballast_part(tmp_path).is_file()
    for bad in ("..", ".staging-immich-app_ViT-B-32__openai", "../models"):
        refused = _cli(tmp_path, hub, "models", "remove", bad, "--yes")
        assert refused.returncode == 1, bad
    assert _ballast_part(tmp_path).is_file() and (tmp_path / "models").is_dir()
    removed = _cli(tmp_path, hub, "models", "remove", NAME, "--yes")
    assert removed.returncode == 0 and "unfinished download" in removed.stdout
    assert list((tmp_path / "models").iterdir()) == []


def test_offline_mode_refuses_with_one_line(tmp_path: Path, hub: FakeHub):
    done = _cli(tmp_path, hub, "models", "pull", NAME, HF_HUB_OFFLINE="1")
    assert done.returncode == 1
    assert done.stderr.strip().count("\n") == 0
    assert "offline mode is on" in done.stderr
    assert hub.log == []  # not one request reached the hub
    assert _installed(tmp_path) == []


def test_unknown_repository_and_no_network(tmp_path: Path, hub: FakeHub):
    unknown = _cli(tmp_path, hub, "models", "pull", "immich-app/no-such-model")
    assert unknown.returncode == 1
    assert unknown.stderr.strip() == (
        f"photosearch: no repository immich-app/no-such-model on {hub.endpoint} (check the "
        "name; `photosearch models catalogue` lists known models)"
    )
    closed = _cli(tmp_path, hub, "models", "pull", NAME, HF_ENDPOINT="http://127.0.0.1:9")
    assert closed.returncode == 1
    assert closed.stderr.strip().count("\n") == 0
    assert "cannot reach http://127.0.0.1:9" in closed.stderr
    assert _installed(tmp_path) == []


def test_an_http_proxy_is_honoured(tmp_path: Path, hub: FakeHub):
    """HF_ENDPOINT names a host that does not resolve; only the proxy (a stand-in hub that
    answers absolute-URI requests, as a forward proxy receives them) can serve it."""
    done = _cli(
        tmp_path,
        hub,
        "models",
        "pull",
        NAME,
        HF_ENDPOINT="http://hub.invalid",
        HTTP_PROXY=hub.endpoint,
        http_proxy=hub.endpoint,
        NO_PROXY="",
        no_proxy="",
    )
    assert done.returncode == 0, done.stderr
    assert _installed(tmp_path) == [NAME]
    assert hub.log[0].path == f"/api/models/{REPO}"
    manifest = json.loads((tmp_path / "models" / NAME / "manifest.json").read_text())
    assert manifest["source"]["hub"] == "http://hub.invalid"


def test_a_truncated_file_is_refused_at_load(tmp_path: Path, hub: FakeHub):
    assert _cli(tmp_path, hub, "models", "pull", NAME).returncode == 0
    weights = tmp_path / "models" / NAME / "visual" / "ballast"
    weights.write_bytes(weights.read_bytes()[:1000])
    info = _cli(tmp_path, hub, "models", "info", NAME)
    assert info.returncode == 1
    assert "visual/ballast is 1000 bytes" in info.stderr and "truncated" in info.stderr


def test_an_altered_file_of_the_same_size_is_refused_at_load(tmp_path: Path, hub: FakeHub):
    assert _cli(tmp_path, hub, "models", "pull", NAME).returncode == 0
    weights = tmp_path / "models" / NAME / "visual" / "ballast"
    data = bytearray(weights.read_bytes())
    data[10] ^= 0xFF
    weights.write_bytes(bytes(data))
    info = _cli(tmp_path, hub, "models", "info", NAME)
    assert info.returncode == 1
    assert "does not match the sha256 recorded at install" in info.stderr


def test_pulled_model_indexes_and_searches_then_info_and_remove(tmp_path: Path, hub: FakeHub):
    assert _cli(tmp_path, hub, "models", "pull", NAME).returncode == 0
    for colour in ("red", "green", "blue"):
        make_photo(tmp_path / "photos" / f"{colour}.jpg", colour)
    assert _cli(tmp_path, hub, "folders", "add", str(tmp_path / "photos")).returncode == 0
    used = _cli(tmp_path, hub, "models", "use", NAME)
    assert used.returncode == 0, used.stderr
    indexed = _cli(tmp_path, hub, "index", "--json")
    assert indexed.returncode == 0, indexed.stderr
    found = _cli(tmp_path, hub, "search", "red", "-k", "1", "--json")
    assert found.returncode == 0, found.stderr
    assert Path(json.loads(found.stdout)[0]["path"]).name == "red.jpg"

    info = _cli(tmp_path, hub, "models", "info", NAME, "--json")
    assert info.returncode == 0, info.stderr
    described = json.loads(info.stdout)
    assert described["embed_dim"] == 16
    assert described["towers"]["visual"]["inputs"][0]["shape"] == [1, 3, 32, 32]  # batch 1
    assert described["towers"]["textual"]["inputs"][0]["type"] == "tensor(int32)"
    assert described["source"]["repository"] == REPO
    assert described["files"]["visual/ballast"]["sha256"] == hub.file(REPO, "visual/ballast").sha256
    assert described["towers"]["visual"]["inputs"][0]["name"] == "image"

    refused = _cli(tmp_path, hub, "models", "remove", NAME, "--yes")
    assert refused.returncode == 1 and "is the model of library" in refused.stderr
    assert _installed(tmp_path) == [NAME]
    assert _cli(tmp_path, hub, "models", "use", "tiny-other").returncode == 1  # not installed
    unconfirmed = _cli(
        tmp_path, hub, "models", "remove", NAME, PHOTOSEARCH_LIBRARY=str(tmp_path / "other-library")
    )
    assert unconfirmed.returncode == 1 and "--yes" in unconfirmed.stderr
    removed = _cli(
        tmp_path,
        hub,
        "models",
        "remove",
        NAME,
        "--yes",
        PHOTOSEARCH_LIBRARY=str(tmp_path / "other-library"),
    )
    assert removed.returncode == 0, removed.stderr
    assert _installed(tmp_path) == []


@pytest.mark.parametrize("variant", ["mclip", "siglip", "nllb", "dynamic"])
def test_pull_every_kind_of_immich_upload(tmp_path: Path, variant: str):
    """M-CLIP's two-input text tower, SigLIP's canonicalize config, NLLB's language codes and
    an older dynamic-batch upload: each pulls, passes the test encode, and describes itself."""
    repository = f"someone/{variant}-model"
    with FakeHub() as hub:
        hub.add_bundle(repository, immich_style_bundle(tmp_path / "hosted", variant))
        done = _cli(tmp_path, hub, "models", "pull", repository)
        assert done.returncode == 0, done.stderr
        info = _cli(tmp_path, hub, "models", "info", f"{variant}-model", "--json")
    assert info.returncode == 0, info.stderr
    described = json.loads(info.stdout)
    assert described["source"]["repository"] == repository
    assert all(
        entry["sha256"] for rel, entry in described["files"].items() if rel != "manifest.json"
    )


PLUGIN = """
from tests.support.tiny_bundle import build_tiny_bundle
from photosearch.models.providers import ModelOffer

class RemoteProvider:
    def offers(self):
        return [ModelOffer("remote-model", "a model its plugin downloads", "remote",
                           needs_network=True)]

    def build(self, name, target_dir, progress=None):
        build_tiny_bundle(target_dir, name=name)
"""


def test_the_pull_a_download_model_message_is_true(tmp_path: Path, hub: FakeHub):
    """A plugin's download-only model says `run photosearch models pull NAME`; doing so works."""
    site = tmp_path / "site"
    (site / "remote_plugin-1.0.dist-info").mkdir(parents=True)
    (site / "remote_plugin-1.0.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: remote-plugin\nVersion: 1.0\n"
    )
    (site / "remote_plugin-1.0.dist-info" / "entry_points.txt").write_text(
        "[photosearch.models]\nremote = remote_plugin:RemoteProvider\n"
    )
    (site / "remote_plugin.py").write_text(PLUGIN)
    path = f"{ROOT}{os.pathsep}{ROOT / 'plugins'}{os.pathsep}{site}"
    asked = _cli(tmp_path, hub, "search", "red", "--model", "remote-model", PYTHONPATH=path)
    assert asked.returncode == 1
    assert "run `photosearch models pull remote-model`" in asked.stderr
    pulled = _cli(tmp_path, hub, "models", "pull", "remote-model", PYTHONPATH=path)
    assert pulled.returncode == 0, pulled.stderr
    assert _installed(tmp_path) == ["remote-model"]
    assert hub.log == []  # the plugin fetched it; the hub was not asked
