"""Tiny random-weight bundles in the exact layout of Immich's published CLIP repositories.

Follows Immich's exporter (machine-learning/export/immich_model_exporter, read for the layout;
see ../shared/docs/IMMICH-BUNDLES.md): ``config.json`` is the open_clip model config (no
photosearch section, no file hashes), ``visual/model.onnx`` takes ``image`` float32
[1, 3, S, S] with the batch fixed at 1 and returns an L2-normalised ``embedding``,
``visual/preprocess_cfg.json`` is open_clip's preprocess config, ``textual/model.onnx`` takes
``text`` int32 [1, context_length] (or ``input_ids`` + ``attention_mask`` for M-CLIP towers), and
``textual/`` holds what ``AutoTokenizer.save_pretrained`` writes (tokenizer.json,
tokenizer_config.json with its ``pad_token``, special_tokens_map.json).

Variants cover what a user meets on the hub: older uploads with a dynamic batch axis, M-CLIP's
two-input text tower, SigLIP's ``tokenizer_kwargs.clean = "canonicalize"``, NLLB's language
prefix, and weights stored as ONNX external data (one file per tensor beside model.onnx).

Graphs are built with ``onnx.helper`` (no torch, milliseconds). The image tower average-pools a
32x32 input into a 4x4 colour grid and projects it; the text tower sums word embeddings, with
colour words placed near the image of that colour, so searches have a predictable answer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from tokenizers import AddedToken, Tokenizer, models, normalizers, pre_tokenizers, processors

from tests.support.tiny_bundle import opset17_model

IMMICH_DIM = 16
IMMICH_SIZE = 32
OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)
COLOUR_RGB = {
    "red": (230, 20, 20),
    "green": (20, 200, 20),
    "blue": (20, 20, 230),
    "white": (250, 250, 250),
    "black": (5, 5, 5),
    "yellow": (240, 230, 20),
}
WORDS = [*COLOUR_RGB, "a", "photo", "of", "car", "sky", "dog", "frisbee", "catching", "the"]
PUNCTUATION = [",", ".", "!", "?", "'", "-"]
# FLORES-200 codes an NLLB tokenizer carries as added special tokens (a few of its 202)
FLORES_CODES = ["eng_Latn", "fra_Latn", "deu_Latn", "spa_Latn", "zho_Hans", "jpn_Jpan"]


@dataclass(frozen=True)
class ImmichSpec:
    """One kind of Immich upload. ``batch=None`` is the older dynamic ``batch_size`` axis."""

    name: str
    batch: int | None = 1
    text_tower: str = "openclip"  # "openclip": input `text`; "mclip": input_ids + attention_mask
    tokenizer: str = "clip"  # "clip": CLIP BPE-like word level; "sentencepiece": Unigram
    canonicalize: bool = False  # text_cfg.tokenizer_kwargs.clean == "canonicalize" (SigLIP)
    nllb: bool = False  # FLORES-200 language codes as special tokens (NLLB-CLIP)
    external_data: bool = False  # every initializer in its own file beside model.onnx
    id_type: str = "int32"  # what the text graph declares: "int32" (Immich) or "int64"
    context_length: int = 77
    resize_mode: str = "shortest"
    mean: tuple[float, float, float] = OPENAI_MEAN
    std: tuple[float, float, float] = OPENAI_STD


VARIANTS: dict[str, ImmichSpec] = {
    # every current upload: visual and text batch fixed at 1, text ids int32
    "clip": ImmichSpec("ViT-B-32__openai"),
    # older uploads exported with a dynamic batch axis
    "dynamic": ImmichSpec("ViT-B-32__laion2b_e16", batch=None),
    # M-CLIP: XLM-R text tower with mean pooling, two int32 inputs
    "mclip": ImmichSpec(
        "XLM-Roberta-Large-Vit-B-16Plus", text_tower="mclip", tokenizer="sentencepiece"
    ),
    # SigLIP/SigLIP2: canonicalize cleaning, context length 64, squash resize, 0.5 mean/std
    "siglip": ImmichSpec(
        "ViT-B-16-SigLIP2__webli",
        tokenizer="sentencepiece",
        canonicalize=True,
        context_length=64,
        resize_mode="squash",
        mean=(0.5, 0.5, 0.5),
        std=(0.5, 0.5, 0.5),
    ),
    # NLLB-CLIP: the query is prefixed with a FLORES-200 code such as eng_Latn
    "nllb": ImmichSpec("nllb-clip-base-siglip__v1", tokenizer="sentencepiece", nllb=True),
    # large towers: ONNX external data, one file per tensor
    "external": ImmichSpec("ViT-H-14-378-quickgelu__dfn5b", external_data=True),
}


def build_immich_bundle(
    target: Path, spec: ImmichSpec | str = "clip", *, seed: int = 0, extras: bool = False
) -> Path:
    """Write an Immich-layout bundle into ``target`` (created) and return it.

    ``spec`` is an ImmichSpec or a key of VARIANTS. With ``extras`` the files a hub repository
    also holds and the runtime must ignore are written too (ARM NN, RKNN, README, .gitattributes).
    """
    spec = VARIANTS[spec] if isinstance(spec, str) else spec
    visual, textual = target / "visual", target / "textual"
    visual.mkdir(parents=True, exist_ok=True)
    textual.mkdir(parents=True, exist_ok=True)
    _write_json(target / "config.json", open_clip_config(spec))
    _write_json(
        visual / "preprocess_cfg.json",
        {
            "size": [IMMICH_SIZE, IMMICH_SIZE],
            "mode": "RGB",
            "mean": list(spec.mean),
            "std": list(spec.std),
            "interpolation": "bicubic",
            "resize_mode": spec.resize_mode,
            "fill_color": 0,
        },
    )
    _save(_visual_model(spec, seed), visual / "model.onnx", spec.external_data)
    tokenizer, pad_token, specials = _tokenizer(spec)
    tokenizer.save(str(textual / "tokenizer.json"))
    _write_json(
        textual / "tokenizer_config.json",
        {
            "pad_token": pad_token,
            "model_max_length": spec.context_length,
            **specials,
            "tokenizer_class": (
                "CLIPTokenizer" if spec.tokenizer == "clip" else "PreTrainedTokenizerFast"
            ),
        },
    )
    _write_json(textual / "special_tokens_map.json", {"pad_token": pad_token, **specials})
    if spec.tokenizer == "clip":  # CLIPTokenizer.save_pretrained writes these too
        _write_json(textual / "vocab.json", tokenizer.get_vocab())
        (textual / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
    _save(_textual_model(spec, tokenizer, seed), textual / "model.onnx", spec.external_data)
    if extras:
        _write_extras(target)
    return target


def build_all_variants(root: Path, *, seed: int = 0) -> dict[str, Path]:
    """Every variant under ``root/<bundle name>``, keyed like VARIANTS."""
    return {
        key: build_immich_bundle(root / spec.name, spec, seed=seed)
        for key, spec in VARIANTS.items()
    }


def with_changes(spec: ImmichSpec | str, **changes: object) -> ImmichSpec:
    """A variant with some fields changed, e.g. ``with_changes("clip", id_type="int64")``."""
    spec = VARIANTS[spec] if isinstance(spec, str) else spec
    return replace(spec, **changes)  # type: ignore[arg-type]


def open_clip_config(spec: ImmichSpec) -> dict:
    """config.json as the exporter saves it: open_clip's model config, unchanged."""
    text_cfg: dict = {
        "context_length": spec.context_length,
        "vocab_size": 64,
        "width": 8,
        "heads": 1,
        "layers": 1,
    }
    if spec.canonicalize:
        text_cfg.update(
            hf_tokenizer_name="timm/ViT-B-16-SigLIP2", tokenizer_kwargs={"clean": "canonicalize"}
        )
    elif spec.nllb:
        text_cfg.update(
            hf_model_name="facebook/nllb-200-distilled-600M",
            hf_tokenizer_name="facebook/nllb-200-distilled-600M",
            hf_proj_type="linear",
            hf_pooler_type="cls_pooler",
        )
    return {
        "embed_dim": IMMICH_DIM,
        "vision_cfg": {"image_size": IMMICH_SIZE, "layers": 1, "width": 8, "patch_size": 8},
        "text_cfg": text_cfg,
    }


def image_embedding(
    rgb: tuple[int, int, int], spec: ImmichSpec | str = "clip", seed: int = 0
) -> np.ndarray:
    """What the visual tower returns for a flat image of one colour (unit length)."""
    spec = VARIANTS[spec] if isinstance(spec, str) else spec
    value = (np.asarray(rgb, np.float32) / 255.0 - np.asarray(spec.mean, np.float32)) / np.asarray(
        spec.std, np.float32
    )
    grid = np.repeat(value[:, None], 16, axis=1).reshape(48)  # channel-major 3x4x4
    vector = grid @ _projection(seed)
    return vector / np.linalg.norm(vector)


def _projection(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((48, IMMICH_DIM)).astype(np.float32)


def _batch(spec: ImmichSpec) -> int | str:
    return spec.batch if spec.batch is not None else "batch_size"


def _l2_normalise(nodes: list, source: str, target: str) -> None:
    nodes.append(helper.make_node("ReduceL2", [source], [f"{source}_norm"], axes=[1], keepdims=1))
    nodes.append(helper.make_node("Div", [source, f"{source}_norm"], [target]))


def _visual_model(spec: ImmichSpec, seed: int) -> onnx.ModelProto:
    nodes = [
        helper.make_node("AveragePool", ["image"], ["pooled"], kernel_shape=[8, 8], strides=[8, 8]),
        helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
        helper.make_node("MatMul", ["flat", "visual.proj"], ["projected"]),
    ]
    _l2_normalise(nodes, "projected", "embedding")
    graph = helper.make_graph(
        nodes,
        "main_graph",
        [
            helper.make_tensor_value_info(
                "image", TensorProto.FLOAT, [_batch(spec), 3, IMMICH_SIZE, IMMICH_SIZE]
            )
        ],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, [_batch(spec), IMMICH_DIM])],
        [numpy_helper.from_array(_projection(seed), "visual.proj")],
    )
    return _model(graph)


def _word_table(spec: ImmichSpec, tokenizer: Tokenizer, seed: int) -> np.ndarray:
    """Token embeddings: colour words near their colour's image, padding zero, others random."""
    vocab = tokenizer.get_vocab()
    rng = np.random.default_rng(seed + 1)
    table = rng.standard_normal((len(vocab), IMMICH_DIM)).astype(np.float32) * 0.1
    for word, rgb in COLOUR_RGB.items():
        token = f"▁{word}" if spec.tokenizer == "sentencepiece" else word
        table[vocab[token]] = image_embedding(rgb, spec, seed) * 3.0
    table[vocab[_pad_token(spec)]] = 0.0
    return table


def _textual_model(spec: ImmichSpec, tokenizer: Tokenizer, seed: int) -> onnx.ModelProto:
    id_type = TensorProto.INT32 if spec.id_type == "int32" else TensorProto.INT64
    shape = [_batch(spec), spec.context_length]
    table = numpy_helper.from_array(_word_table(spec, tokenizer, seed), "token_embedding.weight")
    ids_name = "text" if spec.text_tower == "openclip" else "input_ids"
    nodes = [helper.make_node("Gather", ["token_embedding.weight", ids_name], ["tokens"])]
    inputs = [helper.make_tensor_value_info(ids_name, id_type, shape)]
    initializers = [table]
    if spec.text_tower == "openclip":
        nodes.append(helper.make_node("ReduceSum", ["tokens", "sum_axes"], ["pooled"], keepdims=0))
    else:  # M-CLIP: mean over the attention mask, then a linear layer
        inputs.append(helper.make_tensor_value_info("attention_mask", id_type, shape))
        noise = np.random.default_rng(seed + 2).standard_normal((IMMICH_DIM, IMMICH_DIM))
        linear = (noise * 0.1 + np.eye(IMMICH_DIM)).astype(np.float32)
        initializers += [
            numpy_helper.from_array(linear, "LinearTransformation.weight"),
            numpy_helper.from_array(np.asarray([2], np.int64), "mask_axes"),
        ]
        nodes += [
            helper.make_node("Cast", ["attention_mask"], ["mask_f"], to=TensorProto.FLOAT),
            helper.make_node("Unsqueeze", ["mask_f", "mask_axes"], ["mask3"]),
            helper.make_node("Mul", ["tokens", "mask3"], ["masked"]),
            helper.make_node("ReduceSum", ["masked", "sum_axes"], ["summed"], keepdims=0),
            helper.make_node("ReduceSum", ["mask_f", "sum_axes"], ["count"], keepdims=1),
            helper.make_node("Div", ["summed", "count"], ["mean"]),
            helper.make_node("MatMul", ["mean", "LinearTransformation.weight"], ["pooled"]),
        ]
    initializers.append(numpy_helper.from_array(np.asarray([1], np.int64), "sum_axes"))
    _l2_normalise(nodes, "pooled", "embedding")
    graph = helper.make_graph(
        nodes,
        "main_graph",
        inputs,
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, [_batch(spec), IMMICH_DIM])],
        initializers,
    )
    return _model(graph)


def _pad_token(spec: ImmichSpec) -> str:
    return "<|endoftext|>" if spec.tokenizer == "clip" else "<pad>"


def _tokenizer(spec: ImmichSpec) -> tuple[Tokenizer, str, dict[str, str]]:
    """A real tokenizer.json like the model family's; returns it, the pad token, the specials."""
    if spec.tokenizer == "clip":
        # CLIP: lower-cased, punctuation split off, wrapped in start/end; pad = <|endoftext|>
        vocab = {w: i for i, w in enumerate([*WORDS, *PUNCTUATION])}
        for token in ("<|startoftext|>", "<|endoftext|>"):
            vocab[token] = len(vocab)
        tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="<|endoftext|>"))
        tokenizer.normalizer = normalizers.Sequence(
            [normalizers.NFC(), normalizers.Replace(r"\s+", " "), normalizers.Lowercase()]
        )
        tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
        tokenizer.post_processor = processors.TemplateProcessing(
            single="<|startoftext|> $A <|endoftext|>",
            special_tokens=[
                ("<|startoftext|>", vocab["<|startoftext|>"]),
                ("<|endoftext|>", vocab["<|endoftext|>"]),
            ],
        )
        tokenizer.add_special_tokens(["<|startoftext|>", "<|endoftext|>"])
        specials = {
            "bos_token": "<|startoftext|>",
            "eos_token": "<|endoftext|>",
            "unk_token": "<|endoftext|>",
        }
        return tokenizer, "<|endoftext|>", specials
    # SentencePiece-like (XLM-R, SigLIP, NLLB): Unigram pieces with the ▁ word marker,
    # case-sensitive and with no whitespace normalisation, so doubled spaces and capitals
    # change the ids, as they do with the real tokenizers.
    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -3.0)]
    pieces += [(f"▁{w}", -1.0) for w in WORDS]
    pieces += [(p, -2.0) for p in PUNCTUATION]
    pieces += [(c, -6.0) for c in "abcdefghijklmnopqrstuvwxyz"]
    tokenizer = Tokenizer(models.Unigram(pieces, unk_id=2, byte_fallback=False))
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="$A </s>", special_tokens=[("</s>", 1)]
    )
    tokenizer.add_special_tokens(["<pad>", "</s>", "<unk>"])
    if spec.nllb:
        tokenizer.add_special_tokens([AddedToken(code, special=True) for code in FLORES_CODES])
    specials = {"eos_token": "</s>", "unk_token": "<unk>"}
    return tokenizer, "<pad>", specials


def _model(graph: onnx.GraphProto) -> onnx.ModelProto:
    model = opset17_model(graph, producer_name="pytorch")
    onnx.checker.check_model(model)
    return model


def _save(model: onnx.ModelProto, path: Path, external_data: bool) -> None:
    if external_data:  # like torch.onnx.export of a >2 GB tower: one file per weight tensor
        onnx.save_model(
            model,
            str(path),
            save_as_external_data=True,
            all_tensors_to_one_file=False,
            size_threshold=256,
        )
    else:
        onnx.save_model(model, str(path))


def _write_extras(target: Path) -> None:
    for rel in (
        "visual/fp16/model.armnn",
        "textual/fp16/model.armnn",
        "visual/rknpu/rk3588/model.rknn",
        "textual/rknpu/rk3588/model.rknn",
    ):
        (target / rel).parent.mkdir(parents=True, exist_ok=True)
        (target / rel).write_bytes(b"not for this runtime\n")
    (target / "README.md").write_text(f"# {target.name}\n", encoding="utf-8")
    (target / ".gitattributes").write_text(
        "*.onnx filter=lfs diff=lfs merge=lfs -text\n", encoding="utf-8"
    )


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
