"""The command line against a temporary library, through main(argv) as a user would type it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from photosearch.cli.main import main
from tests.support.tiny_bundle import build_tiny_bundle


@pytest.fixture
def cli(tmp_path: Path, capsys: pytest.CaptureFixture):
    """Run the CLI with a tiny model; returns (exit code, stdout, stderr)."""
    models = tmp_path / "models"
    build_tiny_bundle(models / "tiny")
    build_tiny_bundle(models / "tiny2", name="tiny2", seed=1)
    common = ["--library", str(tmp_path / "lib"), "--models-dir", str(models), "--model", "tiny"]

    def run(*argv: str, before: bool = True) -> tuple[int, str, str]:
        args = [*common, *argv] if before else [*argv, *common]
        code = main(args)
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_folders_add_list_remove(cli, photo_dir: Path, tmp_path: Path):
    code, out, _ = cli("folders", "add", str(photo_dir))
    assert code == 0 and str(photo_dir) in out
    code, out, _ = cli("folders", "list", "--json")
    assert code == 0
    assert json.loads(out) == [{"path": str(photo_dir), "online": True, "photos": 0, "failed": 0}]
    code, out, _ = cli("folders", "list")
    assert str(photo_dir) in out
    code, _, err = cli("folders", "add", str(photo_dir / "sub"))
    assert code == 1 and "already in the library" in err
    code, _, err = cli("folders", "add", str(tmp_path / "missing"))
    assert code == 1 and "not a folder" in err
    code, out, _ = cli("folders", "remove", str(photo_dir))
    assert code == 0 and "removed" in out
    code, out, _ = cli("folders", "list", "--json")
    assert json.loads(out) == []
    code, _, err = cli("folders", "remove", str(photo_dir))
    assert code == 1 and "not a library folder" in err


def test_index_search_status_json(cli, photo_dir: Path):
    assert cli("folders", "add", str(photo_dir))[0] == 0
    code, out, _ = cli("index", "--json")
    assert code == 0
    summary = json.loads(out)
    assert summary["added"] == 5 and summary["encoded"] == 5 and summary["failed"] == 0
    assert summary["stopped"] is False

    code, out, _ = cli("search", "red", "-k", "2", "--json")
    assert code == 0
    results = json.loads(out)
    assert len(results) == 2
    assert results[0]["path"] == str(photo_dir / "red.jpg")
    assert set(results[0]) == {
        "path",
        "score",
        "width",
        "height",
        "taken_at",
        "camera",
        "place",
        "reasons",
        "similar",
    }

    code, out, _ = cli("status", "--json")
    assert code == 0
    status = json.loads(out)
    assert (status["photos"], status["indexed"], status["pending"], status["failed"]) == (
        5,
        5,
        0,
        0,
    )
    assert status["model"] == "tiny" and status["model_identity"].startswith("tiny@")

    code, out, _ = cli("index", "--json")
    assert json.loads(out)["encoded"] == 0


def test_plain_text_output(cli, photo_dir: Path):
    (photo_dir / "broken.jpg").write_bytes(b"nope")
    cli("folders", "add", str(photo_dir))
    code, out, _ = cli("index")
    assert code == 0 and "encoded 5" in out and "1 failed" in out
    code, out, _ = cli("search", "blue", "-k", "1")
    # the file name holds the query's word, so the line says so after the path
    assert code == 0 and out.strip().endswith(
        f"{photo_dir / 'blue.jpg'}  [folder/file name: blue; looks like]"
    )
    code, out, _ = cli("status")
    assert "5 indexed" in out and "broken.jpg: not an image" in out


def test_library_option_before_or_after_the_command(cli, photo_dir: Path):
    assert cli("folders", "add", str(photo_dir), before=False)[0] == 0
    code, out, _ = cli("folders", "list", "--json", before=True)
    assert [f["path"] for f in json.loads(out)] == [str(photo_dir)]
    code, out, _ = cli("status", "--json", before=False)
    assert json.loads(out)["folders"][0]["path"] == str(photo_dir)


def test_search_filters_and_bad_date(cli, photo_dir: Path):
    cli("folders", "add", str(photo_dir))
    cli("index")
    code, out, _ = cli("search", "red", "--folder", str(photo_dir / "sub"), "--json")
    assert [Path(r["path"]).name for r in json.loads(out)] == ["white.png"]
    code, out, _ = cli("search", "red", "--after", "2999-01-01", "--json")
    assert code == 0 and json.loads(out) == []
    code, out, _ = cli("search", "--like", str(photo_dir / "red.jpg"), "-k", "1", "--json")
    assert code == 0 and Path(json.loads(out)[0]["path"]).name != "red.jpg"
    with pytest.raises(SystemExit) as exited:
        cli("search", "red", "--after", "last tuesday")
    assert exited.value.code == 2
    code, _, err = cli("search")
    assert code == 1 and "give some text" in err


def test_bad_date_message(cli, capsys: pytest.CaptureFixture):
    with pytest.raises(SystemExit):
        main(["search", "red", "--before", "31/07/2024"])
    err = capsys.readouterr().err
    assert "'31/07/2024' is not a date like 2024-07-31" in err


def test_model_mismatch_is_a_clear_error(cli, photo_dir: Path):
    cli("folders", "add", str(photo_dir))
    cli("index")
    code, _, err = cli("search", "red", "--model", "tiny2")  # overrides the root --model
    assert code == 1
    assert "photosearch: this library was indexed with tiny@" in err
    assert "photosearch models use tiny2" in err


def test_models_list_json(cli):
    code, out, _ = cli("models", "list", "--json")
    assert code == 0
    assert {"tiny", "tiny2"} <= {m["name"] for m in json.loads(out)["installed"]}


def test_version_and_help(capsys: pytest.CaptureFixture):
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.startswith("photosearch ")
    with pytest.raises(SystemExit):
        main(["search", "--help"])
    assert "--not" in capsys.readouterr().out


def test_models_provider_shows_saves_and_refuses_unknown(cli):
    code, out, _ = cli("models", "provider")
    assert code == 0 and "execution provider: auto" in out
    assert "CPUExecutionProvider" in out and "Azure" not in out
    assert cli("models", "provider", "CPUExecutionProvider")[0] == 0
    assert "execution provider: CPUExecutionProvider" in cli("models", "provider")[1]
    code, _, err = cli("models", "provider", "NoSuchExecutionProvider")
    assert code != 0 and "unknown execution provider" in err


def test_status_on_a_fresh_machine_never_builds_the_model(tmp_path: Path, photo_dir: Path):
    """A real process with a fresh HOME and no model installed: ``status`` answers from the
    catalog alone; the offered default model is named but not built (that takes minutes)."""
    import subprocess
    import sys

    from tests.support.plugin_paths import subprocess_env

    models = tmp_path / "models"
    env = subprocess_env(
        HOME=str(tmp_path / "home"),
        XDG_DATA_HOME=str(tmp_path / "data"),
        PHOTOSEARCH_LIBRARY=str(tmp_path / "lib"),
        PHOTOSEARCH_MODELS=str(models),
    )

    def photosearch(*argv: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "photosearch", *argv],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    assert photosearch("folders", "add", str(photo_dir)).returncode == 0
    done = photosearch("status")
    assert done.returncode == 0, done.stderr
    assert "model:    conse-lite0-minilm (not installed)" in done.stdout
    assert "photos:   0 (0 indexed" in done.stdout and str(photo_dir) in done.stdout
    assert not models.exists() or not any(models.iterdir())
    assert "building" not in done.stderr


def test_the_demo_finds_its_photos_in_a_checkout():
    """`photosearch demo` with no folder (README's first command): Flickr8k beside the checkout,
    else the bundled samples; found from the module's own place in the checkout."""
    from photosearch.cli.main import _sample_folder

    checkout = Path(__file__).resolve().parents[1]
    shared = checkout.parent / "shared" / "data" / "flickr8k-1k" / "images"
    expected = shared if shared.is_dir() else checkout / "resources" / "samples"
    folder = _sample_folder()
    assert folder == expected
    assert any(folder.glob("*.jpg"))
