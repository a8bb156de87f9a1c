"""`photosearch models import PATH`: a bundle directory, a bundle archive, or a checkpoint.

Directories and archives (.zip, .tar, .tar.gz/.tgz, .tar.bz2, .tar.xz) are copied or extracted
into a staging directory, validated (both towers load, dims match config.json, one image and
one text encode) and renamed into place with a manifest of every file's sha256. Archive members
with absolute paths, ``..``, links or device files are refused before anything is written.

OpenCLIP checkpoints are converted by a plugin registered under the entry-point group
``photosearch.converters`` (the ``convert`` extra: open_clip + torch), so the everyday app
never imports torch.
"""

from __future__ import annotations

import logging
import shutil
import stat
import tarfile
import zipfile
from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path, PurePosixPath

from photosearch.errors import BundleError
from photosearch.models.bundle import CONFIG_FILE, read_bundle_config
from photosearch.models.installing import (
    install_staged,
    is_runtime_file,
    new_staging_dir,
    safe_dir_name,
    validate_bundle,
    write_manifest,
)

CONVERTER_GROUP = "photosearch.converters"
ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors", ".ckpt")
log = logging.getLogger(__name__)

Progress = Callable[[str], None]


def import_model(
    source: Path,
    models_dir: Path,
    *,
    name: str | None = None,
    arch: str | None = None,
    replace: bool = False,
    progress: Progress | None = None,
) -> Path:
    """Install ``source`` into ``models_dir``; returns the installed bundle directory."""
    source = source.expanduser()
    if not source.exists():
        raise BundleError(f"{source} does not exist")
    lowered = source.name.lower()
    staging = new_staging_dir(models_dir, name or source.name)
    try:
        if source.is_dir():
            _copy_bundle(source, staging)
            kind = "directory"
        elif lowered.endswith(ARCHIVE_SUFFIXES):
            _extract_bundle(source, staging)
            kind = "archive"
        elif lowered.endswith(CHECKPOINT_SUFFIXES):
            _convert_checkpoint(source, staging, arch, progress)
            kind = "checkpoint"
        else:
            raise BundleError(
                f"{source} is not a bundle directory, an archive "
                f"({', '.join(ARCHIVE_SUFFIXES)}) or a checkpoint "
                f"({', '.join(CHECKPOINT_SUFFIXES)})"
            )
        config = read_bundle_config(staging)
        model_name = name or (config.name if config.name != staging.name else _stem(source))
        target = models_dir / safe_dir_name(model_name)
        if target.exists() and not replace:
            raise BundleError(
                f"a model named {model_name} is already installed at {target}; "
                "pass --name to install this one beside it, or --force"
            )
        if progress:
            progress(f"checking {model_name}: loading both towers and encoding a test input")
        write_manifest(staging, model_name, {"imported_from": str(source.resolve()), "kind": kind})
        validate_bundle(staging, model_name)
        return install_staged(staging, target, replace=replace)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _copy_bundle(source: Path, staging: Path) -> None:
    root = _bundle_root(source)
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_file() and is_runtime_file(rel):
            (staging / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, staging / rel)


def _extract_bundle(archive: Path, staging: Path) -> None:
    """Extract into a scratch folder after checking every member, then copy the bundle out."""
    scratch = staging / ".extract"
    scratch.mkdir()
    try:
        if archive.name.lower().endswith(".zip"):
            with zipfile.ZipFile(archive) as zipped:
                for info in zipped.infolist():
                    _check_member(archive, info.filename)
                    mode = info.external_attr >> 16
                    if mode and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                        raise BundleError(
                            f"{archive}: {info.filename} is a link or special file; refused"
                        )
                zipped.extractall(scratch)
        else:
            with tarfile.open(archive) as tarred:
                for member in tarred.getmembers():
                    _check_member(archive, member.name)
                    if not (member.isfile() or member.isdir()):
                        raise BundleError(
                            f"{archive}: {member.name} is a link or special file; refused"
                        )
                tarred.extractall(scratch, filter="data")
    except (zipfile.BadZipFile, tarfile.TarError, EOFError) as exc:
        raise BundleError(f"{archive} is not a readable archive: {exc}") from exc
    _copy_bundle(scratch, staging)
    shutil.rmtree(scratch)


def _check_member(archive: Path, member: str) -> None:
    path = PurePosixPath(member.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or (path.parts and ":" in path.parts[0]):
        raise BundleError(
            f"{archive} holds an unsafe path {member!r} (absolute or with ..); "
            "refused, nothing was extracted"
        )


def _bundle_root(folder: Path) -> Path:
    """The folder itself, or its one subfolder, holding config.json."""
    if (folder / CONFIG_FILE).is_file():
        return folder
    candidates = [
        child for child in folder.iterdir() if child.is_dir() and (child / CONFIG_FILE).is_file()
    ]
    if len(candidates) == 1:
        return candidates[0]
    raise BundleError(f"no model bundle (config.json, visual/, textual/) found in {folder}")


def _convert_checkpoint(
    checkpoint: Path, staging: Path, arch: str | None, progress: Progress | None
) -> None:
    converters = {entry.name: entry for entry in entry_points(group=CONVERTER_GROUP)}
    if "open_clip" not in converters:
        raise BundleError(
            "converting a checkpoint needs the convert extra (open_clip and torch): "
            "pip install 'photosearch[convert]'"
        )
    if not arch:
        raise BundleError(
            "a checkpoint does not say its architecture: pass --arch "
            "(an open_clip model name such as ViT-B-32)"
        )
    try:
        convert = converters["open_clip"].load()
    except ImportError as exc:
        raise BundleError(
            f"the open_clip converter cannot load: {exc}; install the convert "
            "extra: pip install 'photosearch[convert]'"
        ) from exc
    convert(checkpoint, staging, arch=arch, progress=progress)


def _stem(source: Path) -> str:
    name = source.name
    for suffix in (*ARCHIVE_SUFFIXES, *CHECKPOINT_SUFFIXES):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name
