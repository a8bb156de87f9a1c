"""Build a random-weight ViT-B-32 bundle in the exact shape of Immich's published uploads.

Follows Immich's exporter (immich-app/immich, machine-learning/export/immich_model_exporter:
``exporters/onnx/__init__.py`` and ``exporters/onnx/models/openclip.py``, read for this script):

- ``open_clip.create_model("ViT-B-32", ...)``, eval mode, gradients off, the fused attention
  fast path off (``torch.backends.mha.set_fastpath_enabled(False)``);
- ``visual/model.onnx``: ``model.forward = encode_image(normalize=True)``, exported from a
  ``torch.randn(1, 3, 224, 224)`` example, input ``image``, output ``embedding``, opset 19,
  no dynamic axes (Immich's are commented out), so the batch is fixed at 1;
- ``textual/model.onnx``: ``model.forward = encode_text(normalize=True)``, exported from
  ``torch.ones(1, 77, dtype=torch.int32)``, input ``text``, output ``embedding``, opset 19,
  batch fixed at 1;
- ``visual/preprocess_cfg.json`` = ``open_clip.get_model_preprocess_cfg(model)``, and
  ``config.json`` = ``open_clip.get_model_config("ViT-B-32")``, both written with ``json.dump``;
- weights inside each ``model.onnx``: Immich's exporter never asks for external data, and
  torch.onnx.export only switches to it for models over 2 GB (ViT-B-32 is ~350 MB).

Where this differs from Immich, and why:

- ``pretrained=None`` (random weights, seeded) instead of ``pretrained=<tag>,
  require_pretrained=True``: this machine has no network; speed and memory do not depend on
  the weight values, the graph is the same.
- ``dynamo=False`` is passed explicitly: Immich calls ``torch.onnx.export`` without it, which on
  the torch Immich pins meant the TorchScript exporter; on torch >= 2.9 the default became
  dynamo (whose text graph was invalid here, see docs/IMMICH-BUNDLES.md).
- The tokenizer: Immich runs ``AutoTokenizer.from_pretrained("openai/clip-vit-base-patch32")
  .save_pretrained(textual/)``, which needs the hub and transformers. Here the same CLIP BPE
  tokenizer is rebuilt offline from open_clip's ``bpe_simple_vocab_16e6.txt.gz`` (the convert
  plugin's ``build_clip_tokenizer``), and the other files ``save_pretrained`` writes
  (tokenizer_config.json with ``pad_token``, special_tokens_map.json, vocab.json, merges.txt)
  are written with the values the openai repository's tokenizer has.
- No README.md, RKNN or ARM NN files (the runtime ignores them).

Run with a venv that has torch, open_clip and onnx (not the app's), from the repository root:

    PYTHONPATH=.:plugins /tmp/ps-convert-venv/bin/python benchmarks/build_immich_vit_b32.py \\
        /tmp/measure/models/ViT-B-32__random
"""

from __future__ import annotations

import argparse
import gzip
import json
import time
import warnings
from pathlib import Path
from typing import Any

ARCH = "ViT-B-32"
OPSET = 19  # Immich's exporters/onnx export(opset_version=19)
START, END = "<|startoftext|>", "<|endoftext|>"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("target", type=Path, help="bundle directory to create")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    started = time.perf_counter()
    build(args.target, seed=args.seed)
    size = sum(p.stat().st_size for p in args.target.rglob("*") if p.is_file())
    print(f"{args.target}: {size / 1e6:.1f} MB in {time.perf_counter() - started:.0f} s")
    for path in sorted(p for p in args.target.rglob("*") if p.is_file()):
        print(f"  {path.relative_to(args.target)}  {path.stat().st_size:,} bytes")


def build(target: Path, *, seed: int = 0) -> Path:
    """Export both towers, configs and tokenizer files into ``target``."""
    import open_clip
    import torch

    torch.manual_seed(seed)
    torch.backends.mha.set_fastpath_enabled(False)
    model = open_clip.create_model(ARCH, pretrained=None, jit=False)
    config = open_clip.get_model_config(ARCH)
    model.eval()
    for param in model.parameters():
        param.requires_grad_(False)
    image_size = config["vision_cfg"]["image_size"]
    sequence_length = config["text_cfg"].get("context_length", 77)

    visual, textual = target / "visual", target / "textual"
    visual.mkdir(parents=True, exist_ok=True)
    textual.mkdir(parents=True, exist_ok=True)
    _save_config(open_clip.get_model_preprocess_cfg(model), visual / "preprocess_cfg.json")
    _save_config(config, target / "config.json")

    def encode_image(image: torch.Tensor) -> torch.Tensor:
        return model.encode_image(image, normalize=True)

    model.forward = encode_image
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        torch.onnx.export(
            model,
            (torch.randn(1, 3, image_size, image_size),),
            (visual / "model.onnx").as_posix(),
            input_names=["image"],
            output_names=["embedding"],
            opset_version=OPSET,
            dynamo=False,
        )

    _save_tokenizer(
        Path(open_clip.__file__).parent / "bpe_simple_vocab_16e6.txt.gz", textual, sequence_length
    )

    def encode_text(text: torch.Tensor) -> torch.Tensor:
        return model.encode_text(text, normalize=True)

    model.forward = encode_text
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        torch.onnx.export(
            model,
            (torch.ones(1, sequence_length, dtype=torch.int32),),
            (textual / "model.onnx").as_posix(),
            input_names=["text"],
            output_names=["embedding"],
            opset_version=OPSET,
            dynamo=False,
        )
    return target


def _save_tokenizer(bpe: Path, textual: Path, max_length: int) -> None:
    """The files CLIPTokenizerFast.save_pretrained writes, rebuilt from open_clip's BPE list."""
    from photosearch_convert.clip_tokenizer import build_clip_tokenizer

    build_clip_tokenizer(bpe, textual / "tokenizer.json")
    vocab = json.loads((textual / "tokenizer.json").read_text(encoding="utf-8"))["model"]["vocab"]
    _save_config(vocab, textual / "vocab.json")
    with gzip.open(bpe) as packed:
        lines = packed.read().decode("utf-8").split("\n")
    merges = lines[1 : 49152 - 256 - 2 + 1]
    (textual / "merges.txt").write_text(
        "#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8"
    )
    specials = {"bos_token": START, "eos_token": END, "unk_token": END, "pad_token": END}
    _save_config(specials, textual / "special_tokens_map.json")
    _save_config(
        {
            **specials,
            "add_prefix_space": False,
            "do_lower_case": True,
            "errors": "replace",
            "model_max_length": max_length,
            "clean_up_tokenization_spaces": False,
            "tokenizer_class": "CLIPTokenizer",
        },
        textual / "tokenizer_config.json",
    )


def _save_config(config: Any, path: Path) -> None:
    """Immich's save_config: plain json.dump."""
    with path.open("w") as handle:
        json.dump(config, handle)


if __name__ == "__main__":
    main()
