"""The on-disk model bundle: one directory format for every model.

Layout (compatible with the ONNX CLIP bundles Immich publishes)::

    <bundle>/config.json               embed_dim, text_cfg (context_length, tokenizer_kwargs),
                                       "photosearch" section
    <bundle>/visual/model.onnx         float32 NCHW pixels -> embedding
    <bundle>/visual/preprocess_cfg.json  size, mean, std, interpolation, resize_mode
    <bundle>/textual/model.onnx        token ids (+ attention mask) -> embedding
    <bundle>/textual/tokenizer.json    Hugging Face `tokenizers` format
    <bundle>/textual/tokenizer_config.json  pad_token (optional; defaults below)

The optional ``photosearch`` section of config.json carries the bundle's name, a description,
its provenance and the sha256 of every file, so a copied or half-downloaded bundle is caught.
A bundle's *identity* (name + a hash of its files' hashes) tags every vector it produces.
A text tower quantised from another (the default model's int8 MiniLM) may stand in the identity
for the float32 file it was made from (``identity_files``): the photos' vectors come from the
image tower alone and the query vectors land in the same space, so a library need not encode
every photo again because only the query side got smaller.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from photosearch.errors import BundleError

CONFIG_FILE = "config.json"
VISUAL_MODEL = "visual/model.onnx"
VISUAL_PREPROCESS = "visual/preprocess_cfg.json"
TEXTUAL_MODEL = "textual/model.onnx"
TEXTUAL_TOKENIZER = "textual/tokenizer.json"
TEXTUAL_TOKENIZER_CONFIG = "textual/tokenizer_config.json"
# Written by `models pull` / `models import`: size and sha256 of every file (external data too).
MANIFEST_FILE = "manifest.json"
REQUIRED_FILES = (CONFIG_FILE, VISUAL_MODEL, TEXTUAL_MODEL, TEXTUAL_TOKENIZER)
HASHED_FILES = (VISUAL_MODEL, VISUAL_PREPROCESS, TEXTUAL_MODEL, TEXTUAL_TOKENIZER)
# Files whose place in the identity a bundle may give to the file it was quantised from. Never
# the image tower or its preprocessing: they make the vectors a library stores.
STAND_IN_FILES = (TEXTUAL_MODEL,)


@dataclass(frozen=True)
class Preprocessing:
    """How to turn a decoded RGB photo into the visual model's input tensor."""

    size: int = 224
    mean: tuple[float, float, float] = (0.48145466, 0.4578275, 0.40821073)
    std: tuple[float, float, float] = (0.26862954, 0.26130258, 0.27577711)
    interpolation: str = "bicubic"
    resize_mode: str = "shortest"  # "shortest": resize short side then centre-crop; "squash"
    # JPEG draft decoding may shrink a photo while its short side stays >= this x ``size``;
    # None: the app's default (files.imaging.DRAFT_MARGIN). A bundle trained on draft-decoded
    # photos (a distilled student) may ask for 1: decoding a 500 px photo then costs half.
    draft_margin: int | None = None


@dataclass(frozen=True)
class BundleConfig:
    """Everything the runtime needs to know about a bundle, read from its files."""

    name: str
    embed_dim: int
    context_length: int
    preprocessing: Preprocessing
    pad_token: str | None = None
    description: str = ""
    provenance: dict[str, Any] = field(default_factory=dict)
    file_hashes: dict[str, str] = field(default_factory=dict)
    # Immich's text rules: canonicalize = strip punctuation + lower-case (SigLIP's
    # text_cfg.tokenizer_kwargs.clean); language_prefix = NLLB's FLORES-200 query prefix
    canonicalize: bool = False
    language_prefix: bool = False
    # config.json's "identity_files": the sha256 a STAND_IN_FILES file counts as in the identity
    identity_hashes: dict[str, str] = field(default_factory=dict)


def sha256_file(path: Path, chunk_size: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks so large models never sit in memory twice."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def hash_bundle_files(bundle_dir: Path) -> dict[str, str]:
    """sha256 of each hashed file that exists in the bundle, keyed by relative path."""
    return {
        rel: sha256_file(bundle_dir / rel) for rel in HASHED_FILES if (bundle_dir / rel).is_file()
    }


def write_bundle_config(
    bundle_dir: Path,
    *,
    name: str,
    embed_dim: int,
    context_length: int,
    preprocessing: Preprocessing,
    pad_token: str | None = None,
    description: str = "",
    provenance: dict[str, Any] | None = None,
    identity_files: dict[str, str] | None = None,
) -> Path:
    """Write config.json and visual/preprocess_cfg.json for a bundle whose ONNX files exist.

    Called last when building a bundle: it records the hashes of the files already written.
    ``identity_files``: for a quantised text tower, the sha256 of the float32 file it was made
    from, which the identity uses in its place (see ``bundle_identity``).
    """
    (bundle_dir / "visual").mkdir(parents=True, exist_ok=True)
    preprocess = {
        "size": [preprocessing.size, preprocessing.size],
        "mode": "RGB",
        "mean": list(preprocessing.mean),
        "std": list(preprocessing.std),
        "interpolation": preprocessing.interpolation,
        "resize_mode": preprocessing.resize_mode,
    }
    if preprocessing.draft_margin is not None:
        preprocess["draft_margin"] = preprocessing.draft_margin
    _write_json(bundle_dir / VISUAL_PREPROCESS, preprocess)
    if pad_token is not None:
        _write_json(bundle_dir / TEXTUAL_TOKENIZER_CONFIG, {"pad_token": pad_token})
    config = {
        "embed_dim": embed_dim,
        "vision_cfg": {"image_size": preprocessing.size},
        "text_cfg": {"context_length": context_length},
        "photosearch": {
            "format": 1,
            "name": name,
            "description": description,
            "provenance": provenance or {},
            "files": hash_bundle_files(bundle_dir),
            **({"identity_files": dict(identity_files)} if identity_files else {}),
        },
    }
    return _write_json(bundle_dir / CONFIG_FILE, config)


def rewrite_bundle_config(bundle_dir: Path, like: BundleConfig, **changes: Any) -> Path:
    """``write_bundle_config`` for ``bundle_dir`` keeping ``like``'s settings (its own config
    before a graph was replaced, or the bundle it was copied from) except ``changes`` (any of
    write_bundle_config's keywords); records the hashes of the files as they are now."""
    settings: dict[str, Any] = {
        "name": like.name,
        "embed_dim": like.embed_dim,
        "context_length": like.context_length,
        "preprocessing": like.preprocessing,
        "pad_token": like.pad_token,
        "description": like.description,
        "provenance": like.provenance,
        "identity_files": like.identity_hashes or None,
    }
    return write_bundle_config(bundle_dir, **{**settings, **changes})


# provenance key: the installed bundle this one was distilled from (written by the trainer).
# A library searching with a student re-ranks with its teacher by default
# (photosearch.search.rerank).
TEACHER_BUNDLE = "teacher_bundle"


def teacher_of(config: BundleConfig) -> str | None:
    """The name of the bundle ``config``'s model was distilled from, when it says so."""
    teacher = config.provenance.get(TEACHER_BUNDLE)
    return teacher if isinstance(teacher, str) and teacher else None


def read_bundle_config(bundle_dir: Path) -> BundleConfig:
    """Read and validate a bundle directory; raises BundleError with the reason when unusable."""
    missing = [rel for rel in REQUIRED_FILES if not (bundle_dir / rel).is_file()]
    if missing:
        raise BundleError(f"model bundle {bundle_dir} is missing {', '.join(missing)}")
    config = _read_json(bundle_dir / CONFIG_FILE)
    try:
        embed_dim = int(config["embed_dim"])
        text_cfg = dict(config.get("text_cfg") or {})
        context_length = int(text_cfg.get("context_length", 77))
        tokenizer_kwargs = dict(text_cfg.get("tokenizer_kwargs") or {})
    except (KeyError, TypeError, ValueError) as exc:
        raise BundleError(f"{bundle_dir / CONFIG_FILE}: bad or missing embed_dim ({exc})") from exc
    preprocessing = _read_preprocessing(bundle_dir, config)
    pad_token = None
    if (bundle_dir / TEXTUAL_TOKENIZER_CONFIG).is_file():
        pad_token = _read_json(bundle_dir / TEXTUAL_TOKENIZER_CONFIG).get("pad_token")
        if isinstance(pad_token, dict):  # HF sometimes stores AddedToken dicts
            pad_token = pad_token.get("content")
    section = config.get("photosearch", {})
    name = section.get("name")
    provenance = dict(section.get("provenance", {}))
    file_hashes = dict(section.get("files", {}))
    if (bundle_dir / MANIFEST_FILE).is_file():
        manifest = _read_json(bundle_dir / MANIFEST_FILE)
        check_manifest(bundle_dir, manifest)
        name = manifest.get("name") or name
        provenance = provenance or dict(manifest.get("source", {}))
        file_hashes = {rel: entry["sha256"] for rel, entry in manifest["files"].items()}
    name = str(name or bundle_dir.name)
    return BundleConfig(
        name=name,
        embed_dim=embed_dim,
        context_length=context_length,
        preprocessing=preprocessing,
        pad_token=pad_token,
        description=str(section.get("description", "")),
        provenance=provenance,
        file_hashes=file_hashes,
        canonicalize=tokenizer_kwargs.get("clean") == "canonicalize",
        language_prefix=_is_nllb(name, bundle_dir.name, text_cfg),
        identity_hashes=_identity_hashes(bundle_dir, section.get("identity_files")),
    )


def _identity_hashes(bundle_dir: Path, raw: Any) -> dict[str, str]:
    """config.json's ``identity_files``, checked: only STAND_IN_FILES, each a sha256."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise BundleError(f"{bundle_dir / CONFIG_FILE}: identity_files must be an object")
    for rel, digest in raw.items():
        if rel not in STAND_IN_FILES:
            raise BundleError(
                f"{bundle_dir / CONFIG_FILE}: identity_files may only name "
                f"{', '.join(STAND_IN_FILES)}, not {rel!r} (the image side makes the vectors)"
            )
        if not (isinstance(digest, str) and len(digest) == 64):
            raise BundleError(f"{bundle_dir / CONFIG_FILE}: identity_files[{rel!r}] is no sha256")
    return dict(raw)


def check_manifest(bundle_dir: Path, manifest: dict[str, Any]) -> None:
    """Refuse a bundle whose files differ from its manifest, cheaply on every load.

    Sizes are compared for every file (a truncated copy is caught at once); a file whose
    modification time changed since install is re-hashed, so an altered file is refused too
    while an untouched bundle costs one stat per file instead of hashing gigabytes.
    """
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        raise BundleError(f"{bundle_dir / MANIFEST_FILE} lists no files")
    for rel, entry in files.items():
        path = bundle_dir / rel
        try:
            stat = path.stat()
        except OSError:
            raise BundleError(
                f"model bundle {bundle_dir} is missing {rel}; pull or import it again"
            ) from None
        if stat.st_size != entry.get("size"):
            raise BundleError(
                f"model bundle {bundle_dir}: {rel} is {stat.st_size} bytes, not the "
                f"{entry.get('size')} recorded at install (truncated or altered); "
                "pull or import it again"
            )
        if stat.st_mtime_ns != entry.get("mtime_ns") and sha256_file(path) != entry.get("sha256"):
            raise BundleError(
                f"model bundle {bundle_dir}: {rel} does not match the sha256 recorded at install "
                "(altered or corrupt); pull or import it again"
            )


def _is_nllb(name: str, directory: str, text_cfg: dict[str, Any]) -> bool:
    """Immich prefixes queries for models whose name starts with "nllb"; a renamed copy is
    still recognised by its NLLB tokenizer."""
    names = (name, directory, str(text_cfg.get("hf_tokenizer_name", "")).split("/")[-1])
    return any(n.lower().startswith("nllb") for n in names)


def verify_bundle(bundle_dir: Path, config: BundleConfig | None = None) -> None:
    """Check every recorded file hash; raises BundleError naming the first file that differs."""
    config = config or read_bundle_config(bundle_dir)
    for rel, expected in config.file_hashes.items():
        path = bundle_dir / rel
        if not path.is_file():
            raise BundleError(f"model bundle {bundle_dir} is missing {rel}")
        if sha256_file(path) != expected:
            raise BundleError(f"model bundle file {path} does not match its recorded sha256")


def bundle_identity(bundle_dir: Path, config: BundleConfig | None = None) -> str:
    """A stable id for the vectors a bundle makes: name plus a short hash of its model files.

    Uses the hashes recorded in config.json when present (cheap), else hashes the files. A
    quantised text tower counts as the float32 file it was made from (``identity_files``).
    """
    config = config or read_bundle_config(bundle_dir)
    hashes = dict(config.file_hashes or hash_bundle_files(bundle_dir))
    hashes.update({rel: h for rel, h in config.identity_hashes.items() if rel in hashes})
    combined = hashlib.sha256()
    for rel in sorted(hashes):  # every recorded file, external-data weights included
        combined.update(f"{rel}={hashes[rel]}\n".encode())
    return f"{config.name}@{combined.hexdigest()[:12]}"


def _read_preprocessing(bundle_dir: Path, config: dict[str, Any]) -> Preprocessing:
    path = bundle_dir / VISUAL_PREPROCESS
    if not path.is_file():
        size = int(config.get("vision_cfg", {}).get("image_size", 224))
        return Preprocessing(size=size)
    raw = _read_json(path)
    size = raw.get("size", 224)
    size = int(size[0] if isinstance(size, list) else size)
    defaults = Preprocessing()
    resize_mode = str(raw.get("resize_mode", defaults.resize_mode))
    if resize_mode not in ("shortest", "squash"):
        raise BundleError(f"{path}: unsupported resize_mode {resize_mode!r}")
    draft_margin = raw.get("draft_margin")
    if draft_margin is not None and (not isinstance(draft_margin, int) or draft_margin < 1):
        raise BundleError(f"{path}: draft_margin must be a whole number >= 1, not {draft_margin!r}")
    return Preprocessing(
        size=size,
        mean=tuple(float(v) for v in raw.get("mean", defaults.mean)),  # type: ignore[arg-type]
        std=tuple(float(v) for v in raw.get("std", defaults.std)),  # type: ignore[arg-type]
        interpolation=str(raw.get("interpolation", defaults.interpolation)),
        resize_mode=resize_mode,
        draft_margin=draft_margin,
    )


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BundleError(f"cannot read {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise BundleError(f"{path} must hold a JSON object")
    return data


def _write_json(path: Path, data: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path
