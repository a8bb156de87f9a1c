"""`photosearch models import`: directories and archives, validated; unsafe archives refused."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from tests.support.fake_hub import immich_style_bundle, runtime_files

ROOT = Path(__file__).resolve().parent.parent


def _cli(tmp_path: Path, *argv: str) -> subprocess.CompletedProcess:
    env = dict(
        os.environ,
        PYTHONPATH=f"{ROOT}{os.pathsep}{ROOT / 'plugins'}",
        PHOTOSEARCH_MODELS=str(tmp_path / "models"),
        PHOTOSEARCH_LIBRARY=str(tmp_path / "library"),
    )
    return subprocess.run(
        [sys.executable, "-m", "photosearch", *argv],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def _installed(tmp_path: Path) -> list[str]:
    models = tmp_path / "models"
    return sorted(p.name for p in models.iterdir()) if models.is_dir() else []


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return immich_style_bundle(tmp_path_factory.mktemp("src") / "my-model")


def test_import_a_directory_validates_and_records_every_file(tmp_path: Path, source: Path):
    done = _cli(tmp_path, "models", "import", str(source))
    assert done.returncode == 0, done.stderr
    bundle = tmp_path / "models" / "my-model"
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["name"] == "my-model"
    assert sorted(manifest["files"]) == runtime_files(source)  # no fp16/, rknpu/, README...
    assert "textual/token_embedding.weight" in manifest["files"]  # external data covered too
    assert _installed(tmp_path) == ["my-model"]
    again = _cli(tmp_path, "models", "import", str(source))
    assert again.returncode == 1 and "already installed" in again.stderr
    beside = _cli(tmp_path, "models", "import", str(source), "--name", "copy")
    assert beside.returncode == 0, beside.stderr
    assert _installed(tmp_path) == ["copy", "my-model"]


@pytest.mark.parametrize("suffix", [".zip", ".tar.gz"])
def test_import_an_archive(tmp_path: Path, source: Path, suffix: str):
    archive = tmp_path / f"packed{suffix}"
    files = [p for p in source.rglob("*") if p.is_file()]
    if suffix == ".zip":
        with zipfile.ZipFile(archive, "w") as zipped:
            for path in files:
                zipped.write(path, f"my-model/{path.relative_to(source).as_posix()}")
    else:
        with tarfile.open(archive, "w:gz") as tarred:
            tarred.add(source, arcname="my-model")
    done = _cli(tmp_path, "models", "import", str(archive))
    assert done.returncode == 0, done.stderr
    assert _installed(tmp_path) == ["packed"]
    listed = json.loads(_cli(tmp_path, "models", "list", "--json").stdout)
    assert "packed" in [m["name"] for m in listed["installed"]]


def test_path_traversal_archives_are_refused(tmp_path: Path, source: Path):
    evil_zip = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil_zip, "w") as zipped:
        for path in source.rglob("*"):
            if path.is_file():
                zipped.write(path, path.relative_to(source).as_posix())
        zipped.writestr("../../escaped.txt", "gotcha")
    done = _cli(tmp_path, "models", "import", str(evil_zip))
    assert done.returncode == 1
    assert "unsafe path '../../escaped.txt'" in done.stderr
    assert done.stderr.strip().count("\n") == 0

    evil_tar = tmp_path / "evil.tar"
    with tarfile.open(evil_tar, "w") as tarred:
        tarred.add(source, arcname="model")
        link = tarfile.TarInfo("model/visual/link")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tarred.addfile(link)
        absolute = tarfile.TarInfo("/tmp/absolute.txt")
        absolute.size = 2
        tarred.addfile(absolute, io.BytesIO(b"hi"))
    refused = _cli(tmp_path, "models", "import", str(evil_tar))
    assert refused.returncode == 1
    assert "link or special file" in refused.stderr or "unsafe path" in refused.stderr
    assert not (tmp_path.parent / "escaped.txt").exists()
    assert not (tmp_path / "escaped.txt").exists()
    assert _installed(tmp_path) == []  # and no staging folder left behind either


def test_a_bundle_whose_towers_disagree_with_its_config_is_refused(tmp_path: Path, source: Path):
    broken = tmp_path / "broken"
    import shutil

    shutil.copytree(source, broken)
    config = json.loads((broken / "config.json").read_text())
    config["embed_dim"] = 32
    (broken / "config.json").write_text(json.dumps(config))
    done = _cli(tmp_path, "models", "import", str(broken))
    assert done.returncode == 1
    assert "broken" in done.stderr and "32" in done.stderr
    assert _installed(tmp_path) == []


def test_not_a_bundle_and_a_checkpoint_without_arch(tmp_path: Path):
    empty = tmp_path / "empty"
    empty.mkdir()
    done = _cli(tmp_path, "models", "import", str(empty))
    assert done.returncode == 1 and "no model bundle" in done.stderr
    checkpoint = tmp_path / "weights.safetensors"
    checkpoint.write_bytes(b"\0" * 16)
    converted = _cli(tmp_path, "models", "import", str(checkpoint))
    assert converted.returncode == 1
    assert "convert extra" in converted.stderr or "--arch" in converted.stderr
    assert _installed(tmp_path) == []
