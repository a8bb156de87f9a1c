"""One encoder runtime for every bundle: ONNX Runtime sessions plus a `tokenizers` tokenizer.

Sessions are created lazily and separately, so a one-shot text search never pays for loading the
image tower. Inputs are fed by name: ``image`` (or the model's only input) for pixels;
``input_ids``/``text``, ``attention_mask`` and ``token_type_ids`` for text, in whatever integer
type the graph declares. Outputs are L2-normalised here, whatever the bundle does.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from photosearch.errors import BundleError
from photosearch.models.bundle import (
    TEXTUAL_MODEL,
    TEXTUAL_TOKENIZER,
    VISUAL_MODEL,
    BundleConfig,
    bundle_identity,
    read_bundle_config,
)

log = logging.getLogger(__name__)

_ID_NAMES = ("input_ids", "text", "input", "ids")
_INT_TYPES = {"tensor(int64)": np.int64, "tensor(int32)": np.int32}


def available_providers() -> list[str]:
    """Execution providers this onnxruntime build offers, in its preference order."""
    import onnxruntime as ort

    return list(ort.get_available_providers())


# Runs inferences on a remote endpoint: never used, the app makes no network request of its own.
REMOTE_PROVIDERS = frozenset({"AzureExecutionProvider"})
AUTO_PROVIDER = "auto"


def local_providers() -> list[str]:
    """The execution providers that run on this machine, best first (CPU always last)."""
    return [p for p in available_providers() if p not in REMOTE_PROVIDERS]


def providers_for(choice: str) -> list[str]:
    """The session's provider list for a user's choice: "auto" = every local one, best first;
    a named one falls back to CPU for operators it does not support."""
    if choice == AUTO_PROVIDER:
        return local_providers()
    return [choice] if choice == "CPUExecutionProvider" else [choice, "CPUExecutionProvider"]


class Encoder:
    """Encodes images and texts with one model bundle. Thread-safe after construction."""

    def __init__(
        self,
        bundle_dir: Path,
        *,
        threads: int | None = None,
        providers: Sequence[str] | None = None,
    ):
        self.bundle_dir = bundle_dir
        self.config: BundleConfig = read_bundle_config(bundle_dir)
        self.identity = bundle_identity(bundle_dir, self.config)
        self.threads = threads or max(1, os.cpu_count() or 1)
        self.providers = list(providers) if providers else ["CPUExecutionProvider"]
        self._lock = threading.RLock()
        self._visual: Any = None
        self._textual: Any = None
        self._tokenizer: Any = None

    @property
    def embed_dim(self) -> int:
        return self.config.embed_dim

    def encode_images(self, pixels: np.ndarray) -> np.ndarray:
        """[N, 3, H, W] float32 model inputs -> [N, D] unit vectors."""
        session = self._visual_session()
        input_name = session.get_inputs()[0].name
        output = session.run(None, {input_name: np.ascontiguousarray(pixels, dtype=np.float32)})
        return _normalise(output[0], self.embed_dim, "visual")

    def release_memory(self) -> None:
        """Give back the visual session's memory arena after a batch run.

        ONNX Runtime keeps the largest batch's activations (about 700 MB for 32 photos with
        the default model: benchmarks/bench_memory.py) for the life of the session; a
        long-running app would hold them while idle. One tiny run with arena shrinkage frees
        every chunk not in use.
        """
        import onnxruntime as ort

        with self._lock:
            session = self._visual
        if session is None:
            return
        size = self.config.preprocessing.size
        spec = session.get_inputs()[0]
        channels = spec.shape[1] if len(spec.shape) == 4 and isinstance(spec.shape[1], int) else 3
        options = ort.RunOptions()
        options.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
        try:
            session.run(None, {spec.name: np.zeros((1, channels, size, size), np.float32)},
                        options)
        except Exception as exc:  # only memory is at stake: never fail the caller for it
            log.warning("could not release the encoder's memory: %s", exc)

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Texts -> [N, D] unit vectors, each text run through the graph on its own.

        Why not in one batch: a dynamically quantised (int8) graph scales its activations by
        the range of the whole batch, padding included, so a text's vector would depend on
        what it was encoded with (cosine 0.98 to itself alone, with the trained int8 student).
        A search encodes its query alone; evaluation must measure exactly that vector.
        """
        if not texts:
            return np.zeros((0, self.embed_dim), dtype=np.float32)
        session = self._textual_session()
        tokenizer = self._get_tokenizer()
        inputs = session.get_inputs()
        rows = []
        for text in texts:  # tokenised alone too: batch padding would enter the range
            encoding = tokenizer.encode(text)
            ids = np.asarray([encoding.ids])
            mask = np.asarray([encoding.attention_mask])
            feeds: dict[str, np.ndarray] = {}
            for spec in inputs:
                dtype = _INT_TYPES.get(spec.type, np.int64)
                if spec.name in _ID_NAMES:
                    feeds[spec.name] = ids.astype(dtype)
                elif spec.name == "attention_mask":
                    feeds[spec.name] = mask.astype(dtype)
                elif spec.name == "token_type_ids":
                    feeds[spec.name] = np.zeros_like(ids, dtype=dtype)
                else:
                    raise BundleError(
                        f"textual model input {spec.name!r} is not one this app feeds"
                    )
            rows.append(session.run(None, feeds)[0])
        return _normalise(np.concatenate(rows), self.embed_dim, "textual")

    def warm_up(self, images: bool = True, texts: bool = True) -> None:
        """Create sessions now (e.g. in a background thread) instead of on first use."""
        if images:
            self._visual_session()
        if texts:
            self._textual_session()
            self._get_tokenizer()

    def _visual_session(self) -> Any:
        with self._lock:
            if self._visual is None:
                self._visual = self._make_session(self.bundle_dir / VISUAL_MODEL)
            return self._visual

    def _textual_session(self) -> Any:
        with self._lock:
            if self._textual is None:
                self._textual = self._make_session(self.bundle_dir / TEXTUAL_MODEL)
            return self._textual

    def _get_tokenizer(self) -> Any:
        with self._lock:
            if self._tokenizer is None:
                self._tokenizer = self._load_tokenizer()
            return self._tokenizer

    def _make_session(self, path: Path) -> Any:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        # ONNX Runtime's worker threads spin while idle by default, which starves the decode
        # threads that run beside the encoder (and burns CPU in a long-lived GUI process).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        wanted = [p for p in self.providers if p in ort.get_available_providers()]
        try:
            return ort.InferenceSession(
                str(path), sess_options=options, providers=wanted or ["CPUExecutionProvider"]
            )
        except Exception as exc:
            raise BundleError(f"cannot load ONNX model {path}: {exc}") from exc

    def _load_tokenizer(self) -> Any:
        from tokenizers import Tokenizer

        path = self.bundle_dir / TEXTUAL_TOKENIZER
        try:
            tokenizer = Tokenizer.from_file(str(path))
        except Exception as exc:
            raise BundleError(f"cannot load tokenizer {path}: {exc}") from exc
        length = self.config.context_length
        tokenizer.enable_truncation(max_length=length)
        fixed = self._fixed_text_length()
        pad_token = self.config.pad_token or "[PAD]"
        pad_id = tokenizer.token_to_id(pad_token)
        if pad_id is None:
            pad_id = 0
        if fixed:
            tokenizer.enable_padding(length=fixed, pad_id=pad_id, pad_token=pad_token)
        else:
            tokenizer.enable_padding(pad_id=pad_id, pad_token=pad_token)
        return tokenizer

    def _fixed_text_length(self) -> int | None:
        """The sequence length a textual graph demands, or None when it accepts any."""
        session = self._textual_session()
        for spec in session.get_inputs():
            if spec.name in _ID_NAMES and len(spec.shape) == 2 and isinstance(spec.shape[1], int):
                return int(spec.shape[1])
        return None


def _normalise(array: np.ndarray, embed_dim: int, tower: str) -> np.ndarray:
    array = np.asarray(array, dtype=np.float32)
    if array.ndim != 2 or array.shape[1] != embed_dim:
        raise BundleError(
            f"{tower} model returned shape {array.shape}, expected [N, {embed_dim}]"
        )
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    return array / np.maximum(norms, 1e-12)
