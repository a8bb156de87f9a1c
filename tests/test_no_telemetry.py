"""photosearch makes no network request the user did not ask for. ONNX Runtime's official wheels
(1.32 here) queue usage telemetry for Microsoft's collector and keep a device id under
~/.cache/Microsoft unless ORT_DISABLE_TELEMETRY is set before onnxruntime loads; importing
photosearch sets it. Real processes with a fresh HOME and none of the variables that would turn
the telemetry off on their own (this test process has it set, since it imported photosearch)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.plugin_paths import subprocess_env
from tests.support.tiny_bundle import build_tiny_bundle

# the opt-out itself, and the variables under which ONNX Runtime sends nothing anyway (its CI
# detection: the names in its library; with CI=true, as .ci/run sets, a bare session wrote nothing)
_QUIETING = (
    "ORT_DISABLE_TELEMETRY",
    "CI",
    "TF_BUILD",
    "GITHUB_ACTIONS",
    "GITLAB_CI",
    "CIRCLECI",
    "TRAVIS",
    "JENKINS_URL",
    "CODEBUILD_BUILD_ID",
    "BUILDKITE",
    "TEAMCITY_VERSION",
    "APPVEYOR",
    "BITBUCKET_BUILD_NUMBER",
)


def _fresh_env(home: Path) -> dict[str, str]:
    env = subprocess_env(HOME=str(home))
    for name in (*_QUIETING, "XDG_CACHE_HOME", "XDG_DATA_HOME", "XDG_CONFIG_HOME"):
        env.pop(name, None)
    return env


def _telemetry_files(home: Path) -> list[str]:
    return sorted(str(p.relative_to(home)) for p in (home / ".cache" / "Microsoft").rglob("*"))


def _run(env: dict[str, str], *argv: str) -> subprocess.CompletedProcess:
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    return done


def test_index_and_search_leave_no_telemetry(tmp_path: Path, photo_dir: Path):
    """The real CLI indexes and searches with real ONNX Runtime sessions: no device id, no
    queued events; and the same ONNX Runtime used without photosearch does write them, so this
    test fails if the opt-out is lost."""
    models = tmp_path / "models"
    build_tiny_bundle(models / "tiny")
    home = tmp_path / "home"
    env = _fresh_env(home)
    common = [sys.executable, "-m", "photosearch", "--library", str(tmp_path / "lib")]
    common += ["--models-dir", str(models), "--model", "tiny"]
    _run(env, *common, "folders", "add", str(photo_dir))
    _run(env, *common, "index")
    assert "red.jpg" in _run(env, *common, "search", "red", "-k", "1").stdout
    assert _telemetry_files(home) == []

    bare_home = tmp_path / "bare-home"
    bare = (
        "import onnxruntime as ort, sys; "
        "ort.InferenceSession(sys.argv[1], providers=['CPUExecutionProvider'])"
    )
    _run(_fresh_env(bare_home), sys.executable, "-c", bare, str(models / "tiny/textual/model.onnx"))
    if not _telemetry_files(bare_home):
        pytest.skip("this onnxruntime keeps no telemetry files: nothing to turn off")
    assert any(name.endswith("deviceid") for name in _telemetry_files(bare_home))
