"""One encoder runtime for every bundle: ONNX Runtime sessions plus a `tokenizers` tokenizer.

Sessions are created lazily and separately, so a one-shot text search never pays for loading the
image tower. Each graph's inputs (names, shapes, element types) are read when its session is
created, and every call is shaped to them here, so no caller needs to know a bundle's quirks:

- a graph whose batch axis is fixed (Immich's current uploads: 1) is fed exactly that many rows
  per run, whatever batch the caller passes (index, watch, GUI, eval, demo, training reports);
- pixels go to ``image`` (or the model's only input); token ids to ``input_ids``/``text``, plus
  ``attention_mask`` and ``token_type_ids`` when the graph has them, as int32 or int64 as it
  declares, padded to the sequence length it fixes;
- query text is cleaned as Immich does (photosearch.models.text), with the FLORES-200 language
  prefix for NLLB models.

Outputs are L2-normalised here, whatever the bundle does.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
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
from photosearch.models.text import (
    clean_text,
    flores_code,
    query_language,
    with_language_prefix,
)

log = logging.getLogger(__name__)

_ID_NAMES = ("input_ids", "text", "input", "ids")
_ELEMENT_TYPES = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(double)": np.float64,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(uint8)": np.uint8,
}


@dataclass(frozen=True)
class GraphInput:
    """One input of an ONNX graph as its session declares it; ``None`` marks a free axis."""

    name: str
    element_type: str  # ONNX Runtime's spelling, e.g. "tensor(int32)"
    shape: tuple[int | None, ...]

    @property
    def dtype(self) -> type | None:
        return _ELEMENT_TYPES.get(self.element_type)

    @property
    def fixed_batch(self) -> int | None:
        """The batch size the graph demands, or None when any batch is accepted."""
        return self.shape[0] if self.shape and self.shape[0] else None

    def fixed_axis(self, axis: int) -> int | None:
        return self.shape[axis] if len(self.shape) > axis and self.shape[axis] else None

    def describe(self) -> str:
        dims = ", ".join("?" if d is None else str(d) for d in self.shape)
        return f"{self.name} {self.element_type[7:-1]} [{dims}]"


def graph_inputs(session: Any) -> tuple[GraphInput, ...]:
    """The inputs of an ONNX Runtime session, symbolic or unknown axes as None."""
    return tuple(
        GraphInput(
            spec.name,
            spec.type,
            tuple(d if isinstance(d, int) and d > 0 else None for d in spec.shape),
        )
        for spec in session.get_inputs()
    )


@dataclass(frozen=True)
class _Graph:
    session: Any
    inputs: tuple[GraphInput, ...]

    @property
    def fixed_batch(self) -> int | None:
        batches = {i.fixed_batch for i in self.inputs}
        return next((b for b in batches if b), None)


def run_in_fixed_batches(
    rows: np.ndarray, batch: int | None, run: Callable[[np.ndarray], np.ndarray]
) -> np.ndarray:
    """``run`` over ``rows`` in slices of exactly ``batch`` rows (all at once when None).

    A last partial slice is topped up with copies of its last row and the extra outputs
    dropped: copies, not zeros, so a dynamically quantised graph sees no new value range.
    """
    if batch is None or len(rows) == batch:
        return run(rows)
    outputs = []
    for start in range(0, len(rows), batch):
        chunk = rows[start : start + batch]
        count = len(chunk)
        if count < batch:
            chunk = np.concatenate([chunk, np.repeat(chunk[-1:], batch - count, axis=0)])
        outputs.append(np.asarray(run(chunk))[:count])
    return np.concatenate(outputs)


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
    """Encodes images and texts with one model bundle. Thread-safe after construction.

    ``language``: the FLORES-200 code or locale tag NLLB queries are prefixed with; None reads
    the setting when first needed (photosearch.models.text.query_language).
    """

    def __init__(
        self,
        bundle_dir: Path,
        *,
        threads: int | None = None,
        providers: Sequence[str] | None = None,
        language: str | None = None,
        optimize_graphs: bool = True,
    ) -> None:
        """``optimize_graphs`` False: sessions skip ONNX Runtime's graph optimisation, for a
        process that encodes one query and exits (the default model's text session: 47-50
        instead of 63-69 ms to create, 1.5 ms more a query; vectors within 1e-7)."""
        self.bundle_dir = bundle_dir
        self.config: BundleConfig = read_bundle_config(bundle_dir)
        self.identity = bundle_identity(bundle_dir, self.config)
        self.threads = threads or max(1, os.cpu_count() or 1)
        self.providers = list(providers) if providers else ["CPUExecutionProvider"]
        self.optimize_graphs = optimize_graphs
        self._language = language
        self._lock = threading.RLock()
        self._visual: _Graph | None = None
        self._textual: _Graph | None = None
        self._tokenizer: Any = None
        self._prefix: str | None = None

    @property
    def embed_dim(self) -> int:
        return self.config.embed_dim

    def visual_inputs(self) -> tuple[GraphInput, ...]:
        """The image graph's inputs as declared (loads the image tower)."""
        return self._visual_graph().inputs

    def textual_inputs(self) -> tuple[GraphInput, ...]:
        """The text graph's inputs as declared (loads the text tower)."""
        return self._textual_graph().inputs

    def encode_images(self, pixels: np.ndarray) -> np.ndarray:
        """[N, 3, H, W] float32 model inputs -> [N, D] unit vectors, any N: a graph with a
        fixed batch is run as many times as it takes."""
        if len(pixels) == 0:
            return np.zeros((0, self.embed_dim), dtype=np.float32)
        graph = self._visual_graph()
        spec = graph.inputs[0]
        if spec.dtype not in (np.float32, np.float16, np.float64):
            raise BundleError(
                f"visual model input {spec.describe()} is not a float pixel "
                "tensor; this app feeds normalised float pixels"
            )
        pixels = np.ascontiguousarray(pixels, dtype=spec.dtype)
        self._check_pixels(spec, pixels.shape)

        def run(batch: np.ndarray) -> np.ndarray:
            return graph.session.run(None, {spec.name: batch})[0]

        return _normalise(
            run_in_fixed_batches(pixels, spec.fixed_batch, run), self.embed_dim, "visual"
        )

    def release_memory(self) -> None:
        """Give back the visual session's memory arena after a batch run.

        ONNX Runtime keeps the largest batch's activations (about 700 MB for 32 photos with
        the default model: benchmarks/bench_memory.py) for the life of the session; a
        long-running app would hold them while idle. One tiny run with arena shrinkage frees
        every chunk not in use.
        """
        import onnxruntime as ort

        with self._lock:
            graph = self._visual
        if graph is None:
            return
        spec = graph.inputs[0]
        size = self.config.preprocessing.size
        shape = (
            spec.fixed_batch or 1,
            spec.fixed_axis(1) or 3,
            spec.fixed_axis(2) or size,
            spec.fixed_axis(3) or size,
        )
        options = ort.RunOptions()
        options.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
        try:
            graph.session.run(None, {spec.name: np.zeros(shape, spec.dtype or np.float32)}, options)
        except Exception as exc:  # only memory is at stake: never fail the caller for it
            log.warning("could not release the encoder's memory: %s", exc)

    def close_image_session(self) -> None:
        """Drop the image tower's session while nothing is left to encode (about 50 MB with
        the default model: benchmarks/bench_app_memory.py); the next encode creates it again."""
        with self._lock:
            self._visual = None

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Texts -> [N, D] unit vectors, each text run through the graph on its own.

        Why not in one batch: a dynamically quantised (int8) graph scales its activations by
        the range of the whole batch, padding included, so a text's vector would depend on
        what it was encoded with (cosine 0.98 to itself alone, with the trained int8 student).
        A search encodes its query alone; evaluation must measure exactly that vector.
        """
        if not texts:
            return np.zeros((0, self.embed_dim), dtype=np.float32)
        graph = self._textual_graph()
        tokenizer = self._get_tokenizer()
        rows = []
        for text in texts:  # tokenised alone too: batch padding would enter the range
            encoding = tokenizer.encode(self.prepare_text(text))
            feeds = self._text_feeds(graph, encoding.ids, encoding.attention_mask)
            rows.append(graph.session.run(None, feeds)[0][:1])
        return _normalise(np.concatenate(rows), self.embed_dim, "textual")

    def prepare_text(self, text: str) -> str:
        """The string the tokenizer sees for a query: Immich's cleaning, then the NLLB
        language prefix for NLLB models."""
        text = clean_text(text, canonicalize=self.config.canonicalize)
        if self.config.language_prefix:
            text = with_language_prefix(text, self._language_code())
        return text

    def tokenize(self, text: str) -> list[int]:
        """The token ids a query is fed to the text graph with (padding included)."""
        return list(self._get_tokenizer().encode(self.prepare_text(text)).ids)

    def warm_up(self, images: bool = True, texts: bool = True) -> None:
        """Create sessions now (e.g. in a background thread) instead of on first use."""
        if images:
            self._visual_graph()
        if texts:
            self._textual_graph()
            self._get_tokenizer()

    def _check_pixels(self, spec: GraphInput, shape: tuple[int, ...]) -> None:
        expected = [spec.fixed_axis(axis) for axis in (1, 2, 3)]
        if len(shape) != 4 or any(
            e is not None and e != got for e, got in zip(expected, shape[1:], strict=True)
        ):
            wanted = "x".join("?" if e is None else str(e) for e in expected)
            raise BundleError(
                f"visual model {self.bundle_dir / VISUAL_MODEL} takes {wanted} pixels but was "
                f"given {'x'.join(map(str, shape[1:]))}: its preprocess_cfg.json size "
                f"({self.config.preprocessing.size}) does not fit the graph"
            )

    def _text_feeds(self, graph: _Graph, ids: list[int], mask: list[int]) -> dict[str, Any]:
        rows = {"ids": np.asarray([ids]), "mask": np.asarray([mask])}
        batch = graph.fixed_batch or 1  # one query per run; a fixed batch gets copies of it
        feeds: dict[str, np.ndarray] = {}
        for spec in graph.inputs:
            if spec.name in _ID_NAMES:
                source = rows["ids"]
            elif spec.name == "attention_mask":
                source = rows["mask"]
            elif spec.name == "token_type_ids":
                source = np.zeros_like(rows["ids"])
            else:
                raise BundleError(f"textual model input {spec.name!r} is not one this app feeds")
            if spec.dtype not in (np.int32, np.int64):
                raise BundleError(
                    f"textual model input {spec.describe()} is not an integer id tensor"
                )
            feeds[spec.name] = np.repeat(source, batch, axis=0).astype(spec.dtype)
        return feeds

    def _language_code(self) -> str:
        with self._lock:
            if self._prefix is None:
                code = flores_code(self._language) if self._language else query_language()
                if self._get_tokenizer().token_to_id(code) is None:
                    raise BundleError(
                        f"model {self.config.name} has no language code {code}; give a "
                        f"FLORES-200 code it knows (e.g. eng_Latn)"
                    )
                self._prefix = code
            return self._prefix

    def _visual_graph(self) -> _Graph:
        with self._lock:
            if self._visual is None:
                self._visual = self._make_graph(self.bundle_dir / VISUAL_MODEL)
            return self._visual

    def _textual_graph(self) -> _Graph:
        with self._lock:
            if self._textual is None:
                self._textual = self._make_graph(self.bundle_dir / TEXTUAL_MODEL)
            return self._textual

    def _get_tokenizer(self) -> Any:
        with self._lock:
            if self._tokenizer is None:
                self._tokenizer = self._load_tokenizer()
            return self._tokenizer

    def _make_graph(self, path: Path) -> _Graph:
        session = self._make_session(path)
        inputs = graph_inputs(session)
        log.info("%s: inputs %s", path, "; ".join(i.describe() for i in inputs))
        return _Graph(session, inputs)

    def _make_session(self, path: Path) -> Any:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = (
            ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            if self.optimize_graphs
            else ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        )
        options.log_severity_level = 3
        # ONNX Runtime's worker threads spin while idle by default, which starves the decode
        # threads that run beside the encoder (and burns CPU in a long-lived GUI process).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        # Weight prepacking and the memory arena stay on (measured 2026-11-29 on the default
        # model's int8 text session after queries): without prepacking it holds as much (41 MB);
        # without the arena 5 MB less, but a query took 27-46 ms instead of 17-19.
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
        fixed = self._fixed_text_length()
        tokenizer.enable_truncation(max_length=fixed or self.config.context_length)
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
        for spec in self._textual_graph().inputs:
            if spec.name in _ID_NAMES and len(spec.shape) == 2:
                return spec.fixed_axis(1)
        return None


def _normalise(array: np.ndarray, embed_dim: int, tower: str) -> np.ndarray:
    array = np.asarray(array, dtype=np.float32)
    if array.ndim != 2 or array.shape[1] != embed_dim:
        raise BundleError(f"{tower} model returned shape {array.shape}, expected [N, {embed_dim}]")
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    return array / np.maximum(norms, 1e-12)
