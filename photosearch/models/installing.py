"""Putting a complete bundle into the models directory: manifest, validation, atomic rename.

Shared by `models pull` (hub downloads) and `models import` (directories, archives, converted
checkpoints). A bundle is assembled in a dot-directory inside the models directory, which the
registry never lists, and appears under its name in one rename once every file is checked.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from photosearch.errors import BundleError
from photosearch.models.bundle import (
    MANIFEST_FILE,
    TEXTUAL_MODEL,
    VISUAL_MODEL,
    read_bundle_config,
    sha256_file,
)

# Files a bundle never needs at run time (Immich's ARM NN / RKNN builds, hub bookkeeping).
SKIPPED_DIRS = ("fp16", "rknpu")
SKIPPED_SUFFIXES = (".armnn", ".rknn", ".md", ".lock", ".incomplete", ".part")
SKIPPED_NAMES = (".gitattributes", MANIFEST_FILE)


def is_runtime_file(rel: str) -> bool:
    """True for files the runtime reads: config.json and the direct children of the towers.

    External-data weights sit beside model.onnx, so they are kept; fp16/ and rknpu/ builds,
    READMEs, .gitattributes and cache folders are not.
    """
    parts = rel.split("/")
    if any(part.startswith(".") for part in parts) or parts[-1] in SKIPPED_NAMES:
        return False
    if parts[-1].endswith(SKIPPED_SUFFIXES):
        return False
    if len(parts) == 1:
        return parts[0] == "config.json"
    return len(parts) == 2 and parts[0] in ("visual", "textual")


def safe_dir_name(name: str) -> str:
    """A directory name for a model name: letters, digits and -_.@ only."""
    return "".join(ch if ch.isalnum() or ch in "-_.@" else "_" for ch in name)


def write_manifest(
    bundle_dir: Path, name: str, source: dict[str, Any], known_sha256: dict[str, str] | None = None
) -> dict[str, Any]:
    """Record size, mtime and sha256 of every runtime file, so identity covers all of them.

    ``known_sha256`` holds hashes already checked while downloading (not computed twice).
    """
    known_sha256 = known_sha256 or {}
    files: dict[str, dict[str, Any]] = {}
    for path in sorted(p for p in bundle_dir.rglob("*") if p.is_file()):
        rel = path.relative_to(bundle_dir).as_posix()
        if not is_runtime_file(rel):
            continue
        stat = path.stat()
        files[rel] = {
            "size": stat.st_size,
            "mtime_ns": stat.st_mtime_ns,
            "sha256": known_sha256.get(rel) or sha256_file(path),
        }
    manifest = {"format": 1, "name": name, "installed_at": _now(), "source": source, "files": files}
    target = bundle_dir / MANIFEST_FILE
    target.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return manifest


def describe_bundle(bundle_dir: Path) -> dict[str, Any]:
    """What `models info` shows: dims, tokenizer, graph inputs/outputs, files and hashes."""
    import onnxruntime as ort

    config = read_bundle_config(bundle_dir)
    towers = {}
    for tower, rel in (("visual", VISUAL_MODEL), ("textual", TEXTUAL_MODEL)):
        session = ort.InferenceSession(str(bundle_dir / rel), providers=["CPUExecutionProvider"])
        towers[tower] = {
            "inputs": [
                {"name": i.name, "shape": i.shape, "type": i.type} for i in session.get_inputs()
            ],
            "outputs": [
                {"name": o.name, "shape": o.shape, "type": o.type} for o in session.get_outputs()
            ],
        }
    files = {}
    for path in sorted(p for p in bundle_dir.rglob("*") if p.is_file()):
        rel = path.relative_to(bundle_dir).as_posix()
        files[rel] = {"size": path.stat().st_size, "sha256": config.file_hashes.get(rel)}
    tokenizer = _tokenizer_summary(bundle_dir)
    return {
        "name": config.name,
        "path": str(bundle_dir),
        "embed_dim": config.embed_dim,
        "context_length": config.context_length,
        "image_size": config.preprocessing.size,
        "pad_token": config.pad_token,
        "tokenizer": tokenizer,
        "towers": towers,
        "files": files,
        "size": sum(f["size"] for f in files.values()),
        "source": config.provenance,
    }


def validate_bundle(bundle_dir: Path, label: str | None = None) -> None:
    """Load both towers and encode one image and one text; raises BundleError when unusable.

    Catches what a file listing cannot: graphs that do not load, outputs of the wrong size,
    a tokenizer the text graph does not accept.
    """
    from photosearch.models.runtime import Encoder

    label = label or bundle_dir.name
    try:
        encoder = Encoder(bundle_dir, threads=1)
        size = encoder.config.preprocessing.size
        image = encoder.encode_images(np.zeros((1, 3, size, size), np.float32))
        text = encoder.encode_texts(["a photo of a dog"])
    except Exception as exc:  # onnxruntime and tokenizers raise their own types
        raise BundleError(f"model {label} does not work: {exc}") from exc
    dim = encoder.embed_dim
    if image.shape != (1, dim) or text.shape != (1, dim):
        raise BundleError(
            f"model {label}: towers give {image.shape[1]}- and "
            f"{text.shape[1]}-dimensional vectors, config.json says {dim}"
        )


def staging_dir(models_dir: Path, key: str) -> Path:
    """A fixed dot-directory for one install, so an interrupted one is found and resumed."""
    return models_dir / f".staging-{safe_dir_name(key)}"


def new_staging_dir(models_dir: Path, key: str) -> Path:
    """A fresh dot-directory for an install that cannot be resumed (imports)."""
    models_dir.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".staging-{safe_dir_name(key)}.", dir=models_dir))


def install_staged(staging: Path, target: Path, replace: bool = False) -> Path:
    """Rename a complete, checked staging directory to its final name in one step."""
    if target.exists():
        if not replace:
            raise BundleError(f"a model is already installed at {target}; remove it first")
        retired = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=target.parent))
        os.replace(target, retired / target.name)
        os.replace(staging, target)
        shutil.rmtree(retired, ignore_errors=True)
    else:
        os.replace(staging, target)
    return target


def _tokenizer_summary(bundle_dir: Path) -> dict[str, Any]:
    path = bundle_dir / "textual" / "tokenizer.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    model = data.get("model") or {}
    vocab = model.get("vocab")
    return {"type": model.get("type"), "vocab_size": len(vocab) if vocab is not None else None}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
