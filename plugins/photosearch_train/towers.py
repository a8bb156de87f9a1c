"""Torch towers the trainer builds: the student image net, the student text tower (a subset of
the teacher's text layers) and the tiny CLIP-like model used as a test teacher.

Every tower maps its input to L2-normalised embeddings, exports to ONNX (opset 17) without
custom ops, and exposes what the recipe needs: text towers a ``layers`` ModuleList and a
``token_states(ids, mask)`` method (for the VLDeformer pooling head).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from photosearch_conse.efficientnet import (
    STAGES,
    EfficientNetLite0,
    MBConv,
    SameConv2d,
    _bn,
    checkpoint_path,
    load_efficientnet_lite0,
)
from torch import nn


def masked_mean(states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    weights = mask.to(states.dtype).unsqueeze(-1)
    return (states * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1e-9)


# ---------------------------------------------------------------------------------------------
# Student image tower


def _scaled(channels: int, width: float) -> int:
    return max(8, int(round(channels * width / 8)) * 8)


class StudentImageNet(nn.Module):
    """The first ``blocks`` MBConv blocks of EfficientNet-Lite0's layout (channels times
    ``width``), global average pooling, an optional tanh (VLDeformer head), a linear projection
    to the shared space, L2 norm. Parameter names match the Lite0 checkpoint so width 1.0
    can start from its ImageNet weights."""

    def __init__(
        self,
        embed_dim: int,
        blocks: int = 11,
        image_size: int = 160,
        width: float = 1.0,
        tanh_head: bool = False,
    ) -> None:
        super().__init__()
        stem = _scaled(32, width)
        self._conv_stem = SameConv2d(3, stem, 3, 2, image_size)
        self._bn0 = _bn(stem)
        size, layers = self._conv_stem.out_size, []
        cin = stem
        for repeats, kernel, stride, expand, _, cout in STAGES:
            for i in range(repeats):
                if len(layers) == blocks:
                    break
                out = _scaled(cout, width)
                layers.append(MBConv(cin, out, kernel, stride if i == 0 else 1, expand, size))
                size, cin = layers[-1].out_size, out
        self._blocks = nn.ModuleList(layers)
        self.tanh_head = tanh_head
        self.feature_dim = cin
        self.projection = nn.Linear(cin, embed_dim)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = F.relu6(self._bn0(self._conv_stem(image)))
        for block in self._blocks:
            x = block(x)
        pooled = x.mean(dim=(2, 3))
        if self.tanh_head:
            pooled = torch.tanh(pooled)
        return F.normalize(self.projection(pooled), dim=-1)

    def load_imagenet_trunk(self) -> None:
        """Copy EfficientNet-Lite0's ImageNet weights into the stem and blocks (width 1.0)."""
        state = torch.load(checkpoint_path(), map_location="cpu", weights_only=True)
        own = self.state_dict()
        wanted = {k: v for k, v in state.items() if k in own and not k.startswith("projection")}
        for key, value in wanted.items():
            if own[key].shape != value.shape:
                raise ValueError(f"imagenet init needs width 1.0 ({key}: {tuple(value.shape)})")
        missing = [k for k in own if k not in wanted and not k.startswith("projection")]
        if missing:
            raise ValueError(f"imagenet checkpoint lacks {missing[:3]}")
        self.load_state_dict(wanted, strict=False)


class FrozenImageNetTower(nn.Module):
    """EfficientNet-Lite0's whole ImageNet trunk at ``image_size`` px, kept frozen, then a
    linear projection of its pooled 1280-d features into the teacher's space, L2 norm.

    Why: retraining a conv net on a few hundred photos fits those photos and loses the rest
    (issue 19: cosine to the teacher 0.80 on the photos distilled on, 0.72 on held-out ones),
    while ImageNet features already describe any photo; only the projection is learnt
    (``head_fit.fit_ridge``). ``requires_grad_`` never unfreezes the trunk, so a phase that
    trains "the image tower" (stage 2 with captions) trains the projection alone."""

    def __init__(self, embed_dim: int, image_size: int = 160, imagenet: bool = True) -> None:
        super().__init__()
        self.net = EfficientNetLite0(image_size=image_size)
        if imagenet:
            self.net.load_state_dict(load_efficientnet_lite0().state_dict())
        del self.net._fc  # the ImageNet classifier is not used
        self.feature_dim = 1280
        self.projection = nn.Linear(self.feature_dim, embed_dim)
        self.requires_grad_(False)

    def requires_grad_(self, requires_grad: bool = True) -> FrozenImageNetTower:
        super().requires_grad_(False)
        self.projection.requires_grad_(requires_grad)
        return self

    def features(self, image: torch.Tensor) -> torch.Tensor:
        """Lite0's pooled activations [N, 1280] (what the projection reads)."""
        return self.net.features(image)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.projection(self.net.features(image)), dim=-1)


class PooledFeatures(nn.Module):
    """A FrozenImageNetTower's input to its projection, as a module (for cached features)."""

    def __init__(self, tower: FrozenImageNetTower) -> None:
        super().__init__()
        self.tower = tower

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.tower.features(image)


# ---------------------------------------------------------------------------------------------
# Student text tower


class StudentText(nn.Module):
    """A copy of the teacher's text tower keeping only ``layer_ids`` of its layers. With
    ``tanh_head`` the sentence vector is tanh(mean of token states) (VLDeformer) instead of the
    teacher's own pooling."""

    def __init__(
        self, teacher_text: nn.Module, layer_ids: Sequence[int], tanh_head: bool = False
    ) -> None:
        super().__init__()
        encoder = copy.deepcopy(teacher_text)
        layers = encoder.layers
        if any(i < 0 or i >= len(layers) for i in layer_ids):
            raise ValueError(f"text layers {tuple(layer_ids)} not in 0..{len(layers) - 1}")
        encoder.layers = nn.ModuleList(copy.deepcopy(layers[i]) for i in layer_ids)
        self.encoder = encoder
        self.tanh_head = tanh_head

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        if not self.tanh_head:
            return self.encoder(input_ids, attention_mask)
        pooled = torch.tanh(
            masked_mean(self.encoder.token_states(input_ids, attention_mask), attention_mask)
        )
        project = getattr(self.encoder, "project", None)
        return F.normalize(project(pooled) if project is not None else pooled, dim=-1)


class ProjectedText(nn.Module):
    """A text tower plus a linear head into another space (an ONNX teacher's), identity-
    initialised when the widths match so training starts from the tower's own vectors."""

    def __init__(self, text: nn.Module, width: int, embed_dim: int) -> None:
        super().__init__()
        self.text = text
        self.projection = nn.Linear(width, embed_dim)
        if width == embed_dim:
            with torch.no_grad():
                self.projection.weight.copy_(torch.eye(width))
                self.projection.bias.zero_()

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.projection(self.text(input_ids, attention_mask)), dim=-1)


# ---------------------------------------------------------------------------------------------
# Tiny CLIP-like teacher (tests): ViT-ish image tower + transformer text tower


class Block(nn.Module):
    """Pre-LayerNorm transformer block with an additive attention bias ([N,1,1,L] or 0)."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp_in = nn.Linear(dim, 4 * dim)
        self.mlp_out = nn.Linear(4 * dim, dim)

    def forward(self, x: torch.Tensor, bias: torch.Tensor | float = 0.0) -> torch.Tensor:
        n, length, dim = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(n, length, 3, self.heads, self.head_dim).unbind(2)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.head_dim) + bias
        x = x + self.out((scores.softmax(dim=-1) @ v).transpose(1, 2).reshape(n, length, dim))
        return x + self.mlp_out(F.gelu(self.mlp_in(self.norm2(x))))


class TinyVisionTransformer(nn.Module):
    def __init__(
        self,
        embed_dim: int,
        image_size: int = 32,
        patch: int = 8,
        width: int = 32,
        depth: int = 2,
        heads: int = 4,
    ) -> None:
        super().__init__()
        self.patchify = nn.Conv2d(3, width, patch, stride=patch)
        self.position = nn.Parameter(torch.randn((image_size // patch) ** 2, width) * 0.02)
        self.layers = nn.ModuleList(Block(width, heads) for _ in range(depth))
        self.norm = nn.LayerNorm(width)
        self.project = nn.Linear(width, embed_dim)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = self.patchify(image).flatten(2).transpose(1, 2) + self.position
        for layer in self.layers:
            x = layer(x)
        return F.normalize(self.project(self.norm(x).mean(dim=1)), dim=-1)


class TinyTextTransformer(nn.Module):
    def __init__(
        self,
        embed_dim: int,
        vocab_size: int,
        context_length: int = 32,
        width: int = 32,
        depth: int = 4,
        heads: int = 4,
    ) -> None:
        super().__init__()
        self.tokens = nn.Embedding(vocab_size, width)
        self.position = nn.Parameter(torch.randn(context_length, width) * 0.02)
        self.layers = nn.ModuleList(Block(width, heads) for _ in range(depth))
        self.norm = nn.LayerNorm(width)
        self.project = nn.Linear(width, embed_dim)

    def token_states(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        bias = (1.0 - attention_mask.to(torch.float32))[:, None, None, :] * -1e9
        x = self.tokens(input_ids) + self.position[: input_ids.shape[1]]
        for layer in self.layers:
            x = layer(x, bias)
        return self.norm(x)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        pooled = masked_mean(self.token_states(input_ids, attention_mask), attention_mask)
        return F.normalize(self.project(pooled), dim=-1)
