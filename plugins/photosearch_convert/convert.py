"""Convert an OpenCLIP checkpoint into a bundle in Immich's layout (the entry point).

The towers are exported with torch's TorchScript ONNX exporter (``dynamo=False``: the dynamo
exporter of torch 2.13 wrote an invalid text graph, see docs/IMMICH-BUNDLES pitfalls), with
a dynamic batch axis, int32 token ids named ``text`` like Immich's, and L2-normalised outputs
named ``embedding``. Weights are read with safetensors or ``torch.load(weights_only=True)``:
no arbitrary pickle is ever executed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from photosearch.errors import BundleError

OPSET = 17


def convert(
    checkpoint: Path, target: Path, *, arch: str, progress: Callable[[str], None] | None = None
) -> None:
    """Write a complete bundle for ``arch`` with ``checkpoint``'s weights into ``target``."""
    import open_clip

    say = progress or (lambda message: None)
    config = open_clip.get_model_config(arch)
    if config is None:
        raise BundleError(
            f"open_clip has no architecture {arch!r} "
            f"(known: {', '.join(open_clip.list_models()[:8])}, ...)"
        )
    if config.get("text_cfg", {}).get("hf_tokenizer_name"):
        raise BundleError(
            f"{arch} uses a Hugging Face tokenizer; the converter only handles "
            "open_clip's CLIP tokenizer (pull the Immich bundle instead)"
        )
    say(f"loading {checkpoint.name} into open_clip {arch}")
    model = open_clip.create_model(arch, pretrained=None)
    model.load_state_dict(load_state_dict(checkpoint), strict=True)
    export_bundle(model, config, target, say)


def load_state_dict(checkpoint: Path) -> dict:
    """Tensors only: safetensors, or torch.load with weights_only=True."""
    import torch

    if checkpoint.name.endswith(".safetensors"):
        from safetensors.torch import load_file

        state = load_file(str(checkpoint))
    else:
        try:
            state = torch.load(str(checkpoint), map_location="cpu", weights_only=True)
        except Exception as exc:  # pickle errors of every kind
            raise BundleError(f"{checkpoint} is not a weights-only checkpoint: {exc}") from exc
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise BundleError(f"{checkpoint} holds no state dict")
    return {(k[len("module.") :] if k.startswith("module.") else k): v for k, v in state.items()}


def export_bundle(
    model,  # noqa: ANN001 - an open_clip model (torch is imported lazily)
    config: dict,
    target: Path,
    say: Callable[[str], None],
) -> None:
    """Export both towers of an open_clip model plus its tokenizer and preprocessing."""
    import open_clip
    import torch

    from photosearch_convert.clip_tokenizer import END, build_clip_tokenizer

    model.eval()
    size = model.visual.image_size
    size = int(size[0] if isinstance(size, list | tuple) else size)
    context = int(config.get("text_cfg", {}).get("context_length", 77))
    (target / "visual").mkdir(parents=True, exist_ok=True)
    (target / "textual").mkdir(parents=True, exist_ok=True)

    class Visual(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, image: torch.Tensor) -> torch.Tensor:
            return self.model.encode_image(image, normalize=True)

    class Textual(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, text: torch.Tensor) -> torch.Tensor:
            return self.model.encode_text(text.long(), normalize=True)

    # the fused attention fast path (aten::_native_multi_head_attention) has no ONNX symbolic;
    # Immich's exporter turns it off the same way
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        _export_towers(Visual(), Textual(), size, context, target, say)
    except Exception as exc:  # the exporter raises many types; one line for the user
        first = str(exc).strip().splitlines()
        raise BundleError(f"exporting to ONNX failed: {first[0] if first else exc}") from exc
    finally:
        torch.backends.mha.set_fastpath_enabled(True)
    preprocess = getattr(model.visual, "preprocess_cfg", {}) or {}
    _write(
        target / "visual" / "preprocess_cfg.json",
        {
            "size": [size, size],
            "mode": "RGB",
            "mean": list(preprocess.get("mean", open_clip.OPENAI_DATASET_MEAN)),
            "std": list(preprocess.get("std", open_clip.OPENAI_DATASET_STD)),
            "interpolation": preprocess.get("interpolation", "bicubic"),
            "resize_mode": preprocess.get("resize_mode", "shortest"),
            "fill_color": preprocess.get("fill_color", 0),
        },
    )
    bpe = Path(open_clip.__file__).parent / "bpe_simple_vocab_16e6.txt.gz"
    build_clip_tokenizer(bpe, target / "textual" / "tokenizer.json")
    _write(target / "textual" / "tokenizer_config.json", {"pad_token": END})
    _write(target / "config.json", config)


def _export_towers(
    visual,  # noqa: ANN001 - torch modules (torch is imported lazily)
    textual,  # noqa: ANN001
    size: int,
    context: int,
    target: Path,
    say: Callable[[str], None],
) -> None:
    import torch

    with torch.no_grad():
        say(f"exporting the image tower ({size} px)")
        torch.onnx.export(
            visual,
            (torch.zeros(1, 3, size, size),),
            str(target / "visual" / "model.onnx"),
            input_names=["image"],
            output_names=["embedding"],
            opset_version=OPSET,
            dynamo=False,
            dynamic_axes={"image": {0: "batch"}, "embedding": {0: "batch"}},
        )
        say(f"exporting the text tower ({context} tokens)")
        torch.onnx.export(
            textual,
            (torch.zeros(1, context, dtype=torch.int32),),
            str(target / "textual" / "model.onnx"),
            input_names=["text"],
            output_names=["embedding"],
            opset_version=OPSET,
            dynamo=False,
            dynamic_axes={"text": {0: "batch"}, "embedding": {0: "batch"}},
        )


def _write(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
