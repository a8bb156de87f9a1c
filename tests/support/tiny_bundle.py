"""Tiny but real model bundles for tests: ONNX graphs built with onnx.helper, a real tokenizer.

The image tower average-pools a 32x32 input into a 4x4 colour grid and projects it with a fixed
random matrix; the text tower averages word embeddings. Similar colours give similar vectors,
so searches have a predictable answer, and a bundle builds in milliseconds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers

from photosearch.models.bundle import Preprocessing, write_bundle_config
from photosearch.models.providers import ModelOffer

# Opset 17 needs IR 8; onnx would write its own newest IR, which an older ONNX Runtime beside a
# newer onnx (as on some GPU machines' images) refuses to load.
IR_VERSION = 8


def opset17_model(graph: onnx.GraphProto, **fields: str) -> onnx.ModelProto:
    """``graph`` as a model any supported ONNX Runtime loads."""
    return helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=IR_VERSION, **fields
    )


TINY_DIM = 16
TINY_SIZE = 32
COLOUR_WORDS = ["red", "green", "blue", "white", "black", "yellow"]
VOCAB = ["[PAD]", "[UNK]", *COLOUR_WORDS, "photo", "of", "a", "car", "sky", "dog"]
COLOUR_RGB = {
    "red": (230, 20, 20),
    "green": (20, 200, 20),
    "blue": (20, 20, 230),
    "white": (250, 250, 250),
    "black": (5, 5, 5),
    "yellow": (240, 230, 20),
}


def _projection(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((48, TINY_DIM)).astype(np.float32)


def tiny_image_embedding(rgb: tuple[int, int, int], seed: int = 0) -> np.ndarray:
    """What the tiny image tower returns for a flat image of one colour (before L2 norm)."""
    pre = Preprocessing(size=TINY_SIZE, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    value = (np.asarray(rgb, np.float32) / 255.0 - np.asarray(pre.mean)) / np.asarray(pre.std)
    grid = np.repeat(value[:, None], 16, axis=1).reshape(48)  # channel-major 3x4x4
    return grid @ _projection(seed)


def build_tiny_bundle(
    target: Path, name: str = "tiny", seed: int = 0, provenance: dict | None = None
) -> Path:
    """Write a complete bundle into ``target`` and return it."""
    (target / "visual").mkdir(parents=True, exist_ok=True)
    (target / "textual").mkdir(parents=True, exist_ok=True)
    _visual_graph(seed, target / "visual" / "model.onnx")
    _textual_graph(seed, target / "textual" / "model.onnx")
    _tokenizer(target / "textual" / "tokenizer.json")
    write_bundle_config(
        target,
        name=name,
        embed_dim=TINY_DIM,
        context_length=16,
        preprocessing=Preprocessing(
            size=TINY_SIZE,
            mean=(0.5, 0.5, 0.5),
            std=(0.5, 0.5, 0.5),
            interpolation="bilinear",
            resize_mode="shortest",
        ),
        pad_token="[PAD]",
        description="tiny test bundle",
        provenance={"seed": seed, **(provenance or {})},
    )
    return target


def _visual_graph(seed: int, path: Path) -> None:
    pool = helper.make_node(
        "AveragePool", ["image"], ["pooled"], kernel_shape=[8, 8], strides=[8, 8]
    )
    flat = helper.make_node("Flatten", ["pooled"], ["flat"], axis=1)
    proj = numpy_helper.from_array(_projection(seed), "projection")
    matmul = helper.make_node("MatMul", ["flat", "projection"], ["embedding"])
    graph = helper.make_graph(
        [pool, flat, matmul],
        "tiny_visual",
        [
            helper.make_tensor_value_info(
                "image", TensorProto.FLOAT, ["batch", 3, TINY_SIZE, TINY_SIZE]
            )
        ],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", TINY_DIM])],
        [proj],
    )
    onnx.save(opset17_model(graph), str(path))


def _textual_graph(seed: int, path: Path) -> None:
    rng = np.random.default_rng(seed + 1)
    table = rng.standard_normal((len(VOCAB), TINY_DIM)).astype(np.float32)
    # colour words embed close to the image of that colour, so text search has a right answer
    for word in COLOUR_WORDS:
        table[VOCAB.index(word)] = tiny_image_embedding(COLOUR_RGB[word], seed) * 3.0
    table[0] = 0.0
    embeddings = numpy_helper.from_array(table, "word_embeddings")
    gather = helper.make_node("Gather", ["word_embeddings", "input_ids"], ["tokens"])
    mask = helper.make_node("Cast", ["attention_mask"], ["mask_f"], to=TensorProto.FLOAT)
    axes = numpy_helper.from_array(np.asarray([2], np.int64), "axes")
    unsq = helper.make_node("Unsqueeze", ["mask_f", "axes"], ["mask3"])
    mul = helper.make_node("Mul", ["tokens", "mask3"], ["masked"])
    sum_axes = numpy_helper.from_array(np.asarray([1], np.int64), "sum_axes")
    reduce = helper.make_node("ReduceSum", ["masked", "sum_axes"], ["embedding"], keepdims=0)
    graph = helper.make_graph(
        [gather, mask, unsq, mul, reduce],
        "tiny_textual",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "length"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "length"]),
        ],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", TINY_DIM])],
        [embeddings, axes, sum_axes],
    )
    onnx.save(opset17_model(graph), str(path))


def _tokenizer(path: Path) -> None:
    tokenizer = Tokenizer(models.WordLevel({w: i for i, w in enumerate(VOCAB)}, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.Lowercase()
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.save(str(path))


class TinyProvider:
    """A model provider like any plugin's, building tiny bundles on request."""

    def __init__(self, names: tuple[str, ...] = ("tiny",)):
        self.names = names
        self.builds = 0

    def offers(self) -> list[ModelOffer]:
        return [
            ModelOffer(name=n, description="tiny test model", provider="tiny", default=(i == 0))
            for i, n in enumerate(self.names)
        ]

    def build(self, name: str, target_dir: Path, progress=None) -> None:
        self.builds += 1
        build_tiny_bundle(target_dir, name=name, seed=self.names.index(name))
