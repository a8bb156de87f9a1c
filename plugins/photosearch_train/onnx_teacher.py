"""Any installed bundle as a teacher, run through the app's own ONNX runtime.

Distillation only needs the teacher's vectors, so an ONNX bundle (Immich's fixed-batch
uploads, a pulled or trained bundle) teaches as well as a torch model: its image vectors of
the user's photos and its text vectors of a text corpus are computed once by
``photosearch.models.runtime.Encoder`` (the code the app searches with) and kept on disk in
the run folder, in chunks keyed by the bundle's identity and the chunk's items, so an
interrupted run resumes with what it had computed and a changed photo is encoded again.

The teacher cannot be fine-tuned (no T'), and its towers take no gradients: stages read its
vectors through ``Workspace.cached_images`` / ``cached_texts``. The student's text tower is
MiniLM's (see ``teachers.make_student``): a teacher's tokenizer is not a torch module.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from photosearch.errors import BundleError, UnsupportedImage
from photosearch.files.imaging import decode_for_model
from photosearch.models.bundle import TEXTUAL_TOKENIZER
from photosearch.models.runtime import Encoder
from photosearch_train.app_paths import default_models_dir
from photosearch_train.config import ConfigError
from photosearch_train.dual_encoder import DualEncoder
from photosearch_train.files import save_array

ONNX_TEACHER = "onnx"  # TeacherConfig.kind and the DualEncoder's provenance["teacher"]
CACHE_FOLDER = "onnx-teacher"
CHUNK = 256  # items per cache file: what an interruption can lose

log = logging.getLogger(__name__)


def resolve_bundle(name_or_path: str, models_dir: Path | None = None) -> Path:
    """A bundle folder given as a path, or as the name of an installed bundle."""
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return path.resolve()
    folder = models_dir or default_models_dir()
    if (folder / name_or_path).is_dir():
        return (folder / name_or_path).resolve()
    installed = sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
    raise ConfigError(
        f"teacher bundle {name_or_path!r} is neither a folder nor installed in {folder} "
        f"(installed: {', '.join(installed) or 'none'})"
    )


class VectorCache:
    """Vectors of one bundle on disk, ``CHUNK`` items per .npy file named by a hash of the
    kind and the items, so a resumed run computes only the chunks it had not finished."""

    def __init__(self, folder: Path, chunk: int = CHUNK) -> None:
        self.folder = folder
        self.chunk = chunk
        self.computed_chunks = 0  # chunks this object computed (the rest were read)

    def vectors(
        self, kind: str, keys: Sequence[str], compute: Callable[[int, int], np.ndarray]
    ) -> np.ndarray:
        """[len(keys), D] for ``keys``; ``compute(start, stop)`` encodes items start:stop."""
        parts = []
        for start in range(0, len(keys), self.chunk):
            stop = min(len(keys), start + self.chunk)
            digest = hashlib.sha256(repr((kind, list(keys[start:stop]))).encode()).hexdigest()
            path = self.folder / f"{kind}-{digest[:20]}.npy"
            if path.is_file():
                parts.append(np.load(path))
                continue
            value = np.asarray(compute(start, stop), dtype=np.float32)
            save_array(path, value)
            self.computed_chunks += 1
            parts.append(value)
        return np.concatenate(parts) if parts else np.zeros((0, 0), np.float32)


class OnnxTower(nn.Module):
    """A teacher tower that lives in an ONNX graph: no parameters, no gradients; ``vectors``
    gives its (cached) vectors of whole items, which is how every stage reads a teacher."""

    def __init__(self, encoder: Encoder, cache: VectorCache) -> None:
        super().__init__()
        self.encoder = encoder
        self.cache = cache

    def vectors(self, items: Sequence) -> np.ndarray:
        raise NotImplementedError


class OnnxImageTower(OnnxTower):
    """Pixels (the bundle's own preprocessing) -> the bundle's unit vectors."""

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        out = self.encoder.encode_images(pixels.detach().float().cpu().numpy())
        return torch.from_numpy(out).to(pixels.device)

    def vectors(self, items: Sequence[Path]) -> np.ndarray:
        paths = [Path(p) for p in items]
        return self.cache.vectors("img", [_photo_key(p) for p in paths], self._encode(paths))

    def _encode(self, paths: list[Path]) -> Callable[[int, int], np.ndarray]:
        pre = self.encoder.config.preprocessing

        def encode(start: int, stop: int) -> np.ndarray:
            pixels = []
            for path in paths[start:stop]:
                try:
                    pixels.append(decode_for_model(path, pre).pixels)
                except UnsupportedImage as exc:
                    raise ConfigError(f"{path}: {exc} (fix or remove it to distil on it)") from exc
            return self.encoder.encode_images(np.stack(pixels))

        return encode


class OnnxTextTower(OnnxTower):
    """Texts -> the bundle's unit vectors, each text encoded alone as a search query is."""

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        raise TypeError(
            "an ONNX teacher's text tower reads texts with its own tokenizer: use .vectors(texts)"
        )

    def vectors(self, items: Sequence[str]) -> np.ndarray:
        texts = [str(t) for t in items]
        return self.cache.vectors(
            "txt", texts, lambda start, stop: self.encoder.encode_texts(texts[start:stop])
        )


def _photo_key(path: Path) -> str:
    """Path, size and mtime: a photo edited since is encoded again."""
    try:
        stat = path.stat()
    except OSError as exc:
        raise ConfigError(f"cannot read photo {path}: {exc}") from exc
    return f"{path}|{stat.st_size}|{stat.st_mtime_ns}"


def load_onnx_teacher(bundle: str | None, cache_dir: Path) -> DualEncoder:
    """The bundle as a DualEncoder whose towers are OnnxTowers (vectors cached under
    ``cache_dir/onnx-teacher/<bundle identity>``)."""
    if not bundle:
        raise ConfigError("an ONNX teacher needs a bundle: --teacher-bundle NAME|PATH")
    path = resolve_bundle(bundle)
    try:
        encoder = Encoder(path)
    except BundleError as exc:
        raise ConfigError(f"teacher bundle {path}: {exc}") from exc
    cfg = encoder.config
    folder = (
        cache_dir
        / CACHE_FOLDER
        / "".join(c if c.isalnum() or c in "-_.@" else "_" for c in encoder.identity)
    )
    cache = VectorCache(folder)
    return DualEncoder(
        name=cfg.name,
        visual=OnnxImageTower(encoder, cache),
        textual=OnnxTextTower(encoder, cache),
        tokenizer_file=path / TEXTUAL_TOKENIZER,
        preprocessing=cfg.preprocessing,
        context_length=cfg.context_length,
        embed_dim=cfg.embed_dim,
        pad_token=cfg.pad_token or "[PAD]",
        provenance={"teacher": ONNX_TEACHER, "bundle": str(path), "identity": encoder.identity},
    )


def onnx_bundle(dual: DualEncoder) -> Path | None:
    """The bundle folder of an ONNX teacher (it is its own export), else None."""
    if dual.provenance.get("teacher") == ONNX_TEACHER:
        return Path(dual.provenance["bundle"])
    return None


def is_onnx_tower(module: object) -> bool:
    return isinstance(module, OnnxTower)
