"""A trained dual encoder -> an ONNX model bundle the app loads (same format as the built-in
models: the towers go through ``photosearch_conse.onnx_export``, as the default model's do),
optional dynamic int8 quantisation (MatMul/Gemm only, never Conv), installation."""

from __future__ import annotations

import contextlib
import copy
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import torch
import torch.nn.functional as F
from photosearch_conse.onnx_export import export_image_tower, export_metadata, export_text_tower
from torch import nn

from photosearch.models.bundle import (
    TEACHER_BUNDLE,
    TEXTUAL_MODEL,
    TEXTUAL_TOKENIZER,
    VISUAL_MODEL,
    read_bundle_config,
    rewrite_bundle_config,
    write_bundle_config,
)
from photosearch_train.app_paths import default_models_dir
from photosearch_train.config import ExportConfig, TeacherConfig
from photosearch_train.dual_encoder import DualEncoder


def export_bundle(
    dual: DualEncoder, target: Path, description: str = "", provenance: dict | None = None
) -> Path:
    """Write ``target`` (replaced if present) with both towers in float32 ONNX."""
    target = Path(target)
    if target.exists():
        shutil.rmtree(target)
    ids, mask = dual.tokenize(["a dog runs on the grass", "two people"])
    with _on_cpu(dual.visual, dual.textual) as (visual, textual):
        export_image_tower(_exportable(visual), dual.preprocessing.size, target / VISUAL_MODEL)
        export_text_tower(_exportable(textual), ids, mask, target / TEXTUAL_MODEL)
    shutil.copyfile(dual.tokenizer_file, target / TEXTUAL_TOKENIZER)
    write_bundle_config(
        target,
        name=dual.name,
        embed_dim=dual.embed_dim,
        context_length=dual.context_length,
        preprocessing=dual.preprocessing,
        pad_token=dual.pad_token,
        description=description,
        provenance={
            **dual.provenance,
            **(provenance or {}),
            "export": export_metadata(),
        },
    )
    return target


@contextlib.contextmanager
def _on_cpu(*towers: nn.Module) -> Iterator[tuple[nn.Module, ...]]:
    """The towers on the CPU in eval mode for the exporter, then back on the device they
    trained on, in the mode they were in: a run goes on using them after an export (the
    ablation rows, T' teaching its student)."""
    places = [(_device_of(t), t.training) for t in towers]
    try:
        yield tuple(t.cpu().eval() for t in towers)
    finally:
        for tower, (device, training) in zip(towers, places, strict=True):
            tower.to(device).train(training)


def _device_of(module: nn.Module) -> torch.device:
    param = next(module.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


class _ExportableAttention(nn.Module):
    """nn.MultiheadAttention's math (packed q/k/v projections, scaled dot product, output
    projection) written with shape-free reshapes: the module itself exports with batch and
    sequence sizes baked in as constants, and in eval mode takes a fused op the exporter cannot
    write. OpenCLIP towers are built from it."""

    def __init__(self, attention: nn.MultiheadAttention) -> None:
        super().__init__()
        self.attention = attention

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        key_padding_mask: torch.Tensor | None = None,
        need_weights: bool = False,
        attn_mask: torch.Tensor | None = None,
        **_: object,
    ) -> tuple[torch.Tensor, None]:
        m = self.attention
        if not m.batch_first:  # [sequence, batch, width] -> [batch, sequence, width]
            query, key, value = (x.transpose(0, 1) for x in (query, key, value))
        w_q, w_k, w_v = m.in_proj_weight.chunk(3)
        b_q, b_k, b_v = m.in_proj_bias.chunk(3) if m.in_proj_bias is not None else (None,) * 3

        def heads(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
            return F.linear(x, w, b).unflatten(-1, (m.num_heads, -1)).transpose(1, 2)

        mask = attn_mask
        if key_padding_mask is not None:
            pad = key_padding_mask[:, None, None, :]
            pad = torch.zeros_like(pad, dtype=query.dtype).masked_fill(pad, float("-inf"))
            mask = pad if mask is None else mask + pad
        out = F.scaled_dot_product_attention(
            heads(query, w_q, b_q), heads(key, w_k, b_k), heads(value, w_v, b_v), attn_mask=mask
        )
        out = m.out_proj(out.transpose(1, 2).flatten(2))
        return (out if m.batch_first else out.transpose(0, 1)), None


DEFAULT_TEACHER_BUNDLE = "conse-lite0-minilm"  # the bundle the built-in ConSE teacher installs as


def teacher_reference(teacher: TeacherConfig, name: str | None = None) -> dict[str, str]:
    """Provenance naming the installed bundle a student learnt from (``TEACHER_BUNDLE``), so the
    app re-ranks the student's results with it by default; ``name`` for a teacher this run
    exports itself (a fine-tuned T'). Empty for teachers that are no bundle (open_clip, tests)."""
    if name is None and teacher.kind == "onnx" and teacher.bundle:
        name = Path(teacher.bundle).name
    elif name is None and teacher.kind == "conse":
        name = DEFAULT_TEACHER_BUNDLE
    return {TEACHER_BUNDLE: name} if name else {}


def _exportable(module: nn.Module) -> nn.Module:
    """A copy of ``module`` with every packed nn.MultiheadAttention swapped for
    _ExportableAttention (same weights, same outputs)."""
    module = copy.deepcopy(module)
    for child in list(module.modules()):
        for attr, grandchild in list(child.named_children()):
            if isinstance(grandchild, nn.MultiheadAttention) and grandchild._qkv_same_embed_dim:
                setattr(child, attr, _ExportableAttention(grandchild))
    return module


def quantize_bundle(
    source: Path,
    target: Path,
    name: str,
    embeddings: bool = False,
    towers: tuple[str, ...] = ("visual", "textual"),
    per_channel: bool = True,
) -> Path:
    """A copy of ``source`` with both graphs' MatMul/Gemm weights in dynamic int8 (and, with
    ``embeddings``, the Gather tables: stored int8, dequantised when looked up). With
    ``per_channel`` each output channel of a weight gets its own scale, which keeps far more
    of a transformer's precision than one scale per tensor.

    Convolutions stay float: int8 ConvInteger is slow or missing on many CPUs' ORT builds.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    ops = ["MatMul", "Gemm"] + (["Gather"] if embeddings else [])

    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target)
    unknown = set(towers) - {"visual", "textual"}
    if unknown:
        raise ValueError(f"int8 towers must be 'visual' and/or 'textual', not {sorted(unknown)}")
    for rel in [{"visual": VISUAL_MODEL, "textual": TEXTUAL_MODEL}[t] for t in towers]:
        quantize_dynamic(
            str(source / rel),
            str(target / rel),
            op_types_to_quantize=ops,
            weight_type=QuantType.QInt8,
            per_channel=per_channel,
        )
    config = read_bundle_config(source)
    rewrite_bundle_config(
        target,
        config,
        name=name,
        description=config.description + f" (int8 {'/'.join(ops)} in {'+'.join(towers)})",
        provenance={
            **config.provenance,
            "quantization": {
                "method": "onnxruntime dynamic int8",
                "ops": ops,
                "towers": towers,
                "per_channel": per_channel,
            },
        },
        identity_files=None,
    )
    return target


def install_bundle(bundle: Path, models_dir: Path, name: str) -> Path:
    """Copy ``bundle`` into ``models_dir/name`` (replacing an older one) via a staging dir."""
    models_dir.mkdir(parents=True, exist_ok=True)
    final = models_dir / name
    staging = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=models_dir))
    shutil.rmtree(staging)
    shutil.copytree(bundle, staging)
    if final.exists():
        shutil.rmtree(final)
    staging.replace(final)
    return final


def quantize_as_configured(bundle: Path, bundles_dir: Path, export: ExportConfig) -> Path:
    """The int8 copy of ``bundle`` the ``export`` settings ask for, as
    ``bundles_dir/<name>-int8``."""
    return quantize_bundle(
        bundle,
        bundles_dir / f"{export.name}-int8",
        export.name,
        embeddings=export.int8_embeddings,
        towers=tuple(export.int8_towers),
        per_channel=export.int8_per_channel,
    )


def install_chosen(bundle: Path, export: ExportConfig) -> str | None:
    """Install ``bundle`` as ``export.name`` when ``export.install`` (into
    ``export.models_dir``, else the app's models folder); the installed path, or None."""
    if not export.install:
        return None
    models_dir = Path(export.models_dir) if export.models_dir else default_models_dir()
    return str(install_bundle(bundle, models_dir, export.name))
