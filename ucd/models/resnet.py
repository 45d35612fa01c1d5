"""ResNet backbones with a chosen output stride (dilation instead of stride), ABN-normalised.

Parameter names follow torchvision's ResNet (``conv1``, ``bn1``, ``layer1.0.conv1``, ...), so
ImageNet weights in torchvision's format load directly; ``width`` scales the channels for the
small CPU benchmark model.
"""

from __future__ import annotations

from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from ucd.models.abn import norm_act

DEPTHS = {
    "resnet18": ("basic", (2, 2, 2, 2)),
    "resnet34": ("basic", (3, 4, 6, 3)),
    "resnet50": ("bottleneck", (3, 4, 6, 3)),
    "resnet101": ("bottleneck", (3, 4, 23, 3)),
}


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inp: int, planes: int, stride: int, dilation: int, norm, downsample):
        super().__init__()
        self.conv1 = nn.Conv2d(inp, planes, 3, stride, dilation, dilation, bias=False)
        self.bn1 = norm(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, dilation, dilation, bias=False)
        self.bn2 = norm(planes, "identity")
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.bn2(self.conv2(self.bn1(self.conv1(x))))
        return F.leaky_relu(out + identity, 0.01)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inp: int, planes: int, stride: int, dilation: int, norm, downsample):
        super().__init__()
        self.conv1 = nn.Conv2d(inp, planes, 1, bias=False)
        self.bn1 = norm(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, dilation, dilation, bias=False)
        self.bn2 = norm(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = norm(planes * 4, "identity")
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.bn3(self.conv3(self.bn2(self.conv2(self.bn1(self.conv1(x))))))
        return F.leaky_relu(out + identity, 0.01)


class ResNet(nn.Module):
    """ResNet body returning the four stage outputs (strides 4, 8, and 16/8 by output stride)."""

    def __init__(
        self,
        depth: str = "resnet101",
        *,
        output_stride: int = 16,
        width: int = 64,
        norm: str = "auto",
        sync_bn: bool = False,
    ) -> None:
        super().__init__()
        if depth not in DEPTHS:
            raise ValueError(f"unknown backbone {depth!r}; valid: {sorted(DEPTHS)}")
        if output_stride not in (8, 16):
            raise ValueError(f"output_stride must be 8 or 16, got {output_stride}")
        kind, layers = DEPTHS[depth]
        block = BasicBlock if kind == "basic" else Bottleneck
        make_norm = partial(_norm, impl=norm, sync=sync_bn)
        # Stages 3 and 4 trade stride for dilation to reach the output stride.
        strides = (1, 2, 1, 1) if output_stride == 8 else (1, 2, 2, 1)
        dilations = (1, 1, 2, 4) if output_stride == 8 else (1, 1, 1, 2)
        self.conv1 = nn.Conv2d(3, width, 7, 2, 3, bias=False)
        self.bn1 = make_norm(width)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        inp = width
        for i, (n, s, d) in enumerate(zip(layers, strides, dilations)):
            planes = width * 2**i
            downsample = None
            if s != 1 or inp != planes * block.expansion:
                downsample = nn.Sequential(
                    nn.Conv2d(inp, planes * block.expansion, 1, s, bias=False),
                    make_norm(planes * block.expansion, "identity"),
                )
            blocks = [block(inp, planes, s, d, make_norm, downsample)]
            inp = planes * block.expansion
            blocks += [block(inp, planes, 1, d, make_norm, None) for _ in range(n - 1)]
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
        self.out_channels = inp
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="leaky_relu")

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.maxpool(self.bn1(self.conv1(x)))
        stages = []
        for i in range(1, 5):
            x = getattr(self, f"layer{i}")(x)
            stages.append(x)
        return stages


def _norm(channels: int, activation: str = "leaky_relu", *, impl: str, sync: bool) -> nn.Module:
    return norm_act(channels, activation, impl=impl, sync=sync)
