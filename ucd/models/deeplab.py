"""DeepLab-V3 (ResNet body + ASPP) with an incremental classifier that grows one head per step."""

from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ucd.models.abn import norm_act
from ucd.models.resnet import ResNet

WEIGHTS_DIR = Path(__file__).parent / "weights"  # packaged pretrained weights + weights.yaml


class ASPP(nn.Module):
    """Atrous spatial pyramid pooling (DeepLab-V3): 1x1, three dilated 3x3, image pooling."""

    def __init__(
        self, inp: int, out: int, rates: tuple[int, ...], *, norm: str = "auto", sync_bn=False
    ):
        super().__init__()
        self.branches = nn.ModuleList(
            [nn.Conv2d(inp, out, 1, bias=False)]
            + [nn.Conv2d(inp, out, 3, padding=r, dilation=r, bias=False) for r in rates]
        )
        self.branch_norm = norm_act(out * len(self.branches), impl=norm, sync=sync_bn)
        self.pool_conv = nn.Conv2d(inp, out, 1, bias=False)
        self.pool_norm = norm_act(out, impl=norm, sync=sync_bn)
        self.project = nn.Conv2d(out * (len(self.branches) + 1), out, 1, bias=False)
        self.project_norm = norm_act(out, impl=norm, sync=sync_bn)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        branches = self.branch_norm(torch.cat([b(x) for b in self.branches], 1))
        pooled = self.pool_conv(F.adaptive_avg_pool2d(x, 1))
        if self.training and x.shape[0] == 1:  # batch statistics of one 1x1 sample are undefined
            pooled = F.leaky_relu(pooled, 0.01)
        else:
            pooled = self.pool_norm(pooled)
        pooled = pooled.expand(-1, -1, h, w)
        return self.project_norm(self.project(torch.cat([branches, pooled], 1)))


class IncrementalClassifier(nn.Module):
    """One 1x1 conv head per step; head 0 includes background. Logits follow class-index order."""

    def __init__(self, channels: int, classes_per_step: list[list[int]]) -> None:
        super().__init__()
        self.channels = channels
        self.classes_per_step = [list(c) for c in classes_per_step]
        self.heads = nn.ModuleList(nn.Conv2d(channels, len(c), 1) for c in self.classes_per_step)

    @property
    def n_classes(self) -> int:
        return sum(len(c) for c in self.classes_per_step)

    def add_step(self, classes: list[int]) -> None:
        """Append a head for the classes learned at a new step."""
        head = nn.Conv2d(self.channels, len(classes), 1).to(self.heads[0].weight.device)
        self.heads.append(head)
        self.classes_per_step.append(list(classes))

    @torch.no_grad()
    def init_new_head_from_background(self) -> None:
        """MiB init: new rows copy the background row; b0' = b0 - log(|Y^k| + 1) = new biases."""
        new, bg = self.heads[-1], self.heads[0]
        n_new = new.weight.shape[0]
        bias = bg.bias[0] - math.log(n_new + 1)
        new.weight.copy_(bg.weight[0:1].expand_as(new.weight))
        new.bias.fill_(bias.item())
        bg.bias[0] = bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([h(x) for h in self.heads], 1)


class DeepLabV3(nn.Module):
    """DeepLab-V3; ``forward`` returns logits, low-res logits, decoder features and stages."""

    def __init__(
        self,
        classes_per_step: list[list[int]],
        *,
        backbone: str = "resnet101",
        output_stride: int = 16,
        width: int = 64,
        head_channels: int = 256,
        aspp_rates: tuple[int, ...] | None = None,
        norm: str = "auto",
        sync_bn: bool = False,
    ) -> None:
        super().__init__()
        self.body = ResNet(
            backbone, output_stride=output_stride, width=width, norm=norm, sync_bn=sync_bn
        )
        # DeepLab-V3's rates for a 512-px crop; a small crop needs rates its feature map holds
        rates = tuple(aspp_rates or ((6, 12, 18) if output_stride == 16 else (12, 24, 36)))
        self.head = ASPP(self.body.out_channels, head_channels, rates, norm=norm, sync_bn=sync_bn)
        self.classifier = IncrementalClassifier(head_channels, classes_per_step)

    def forward(self, x: torch.Tensor) -> dict[str, Any]:
        stages = self.body(x)
        features = self.head(stages[-1])
        logits_low = self.classifier(features)
        logits = F.interpolate(logits_low, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return {"logits": logits, "logits_low": logits_low, "features": features, "stages": stages}


def build_model(cfg: Any, classes_per_step: list[list[int]], *,
                pretrained: bool = True) -> DeepLabV3:
    """DeepLab-V3 from a ``model`` section (:class:`ucd.facts.config.ModelConfig` or a mapping of
    its fields); ``pretrained=False`` skips the ImageNet weights (a checkpoint provides weights)."""
    from ucd.facts.config import ModelConfig, build_section

    cfg = build_section(ModelConfig, cfg, "model")
    model = DeepLabV3(
        classes_per_step,
        backbone=cfg.backbone,
        output_stride=cfg.output_stride,
        width=cfg.width,
        head_channels=cfg.head_channels,
        aspp_rates=cfg.aspp_rates,
        norm=cfg.norm,
    )
    if pretrained and cfg.pretrained:
        load_pretrained_backbone(model.body, pretrained_path(cfg.pretrained))
    return model


def pretrained_path(name: str | Path) -> Path:
    """The weights file of ``model.pretrained``: a path, or the name of packaged weights
    (``ucd/models/weights/weights.yaml``), whose SHA-256 is checked before they are used."""
    registry = packaged_weights()
    if str(name) not in registry:
        return Path(name)
    entry = registry[str(name)]
    path = WEIGHTS_DIR / entry["file"]
    if not path.is_file():
        raise FileNotFoundError(
            f"packaged weights {name!r} should be at {path}; restore the file from the "
            f"repository or rebuild it: {entry['produced_by']}"
        )
    from ucd.models.pretrain import sha256

    digest = sha256(path)
    if digest != entry["sha256"]:
        raise ValueError(
            f"packaged weights {name!r} ({path}) have SHA-256 {digest}, not the registered "
            f"{entry['sha256']}: the file is corrupt or was rebuilt without updating "
            f"{WEIGHTS_DIR / 'weights.yaml'}"
        )
    return path


def packaged_weights() -> dict[str, dict[str, Any]]:
    """name -> {file, sha256, produced_by, ...} of the weights shipped in ucd/models/weights
    (shared between calls: read it, do not modify it)."""
    listing = WEIGHTS_DIR / "weights.yaml"
    return _parse_listing(listing.read_text()) if listing.is_file() else {}


@functools.lru_cache(maxsize=4)
def _parse_listing(text: str) -> dict[str, dict[str, Any]]:
    """Parsed once per content: every run config of a grid checks its weights against it, and
    parsing the YAML (~2.6 ms) for each of the paper grid's 953 runs took 2.5 s of 3.5."""
    import yaml

    return yaml.safe_load(text) or {}


def load_pretrained_backbone(body: nn.Module, path: Path) -> None:
    """Load ImageNet weights (torchvision's ResNet key names; ``fc.*`` dropped) into the body."""
    if not path.is_file():
        raise FileNotFoundError(
            f"model.pretrained points to {path}, which does not exist. Put the ImageNet weights of "
            "the backbone there (a torchvision-format ResNet state dict, e.g. resnet101 from "
            "torchvision's model zoo or the In-Place ABN release), or set model.pretrained: null "
            "to train from random initialisation."
        )
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    state = {k.removeprefix("module.").removeprefix("body."): v for k, v in state.items()}
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    missing, unexpected = body.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(
            f"pretrained weights {path} do not match the backbone: missing {sorted(missing)[:5]}"
            f"{'...' if len(missing) > 5 else ''}, unexpected {sorted(unexpected)[:5]}"
        )
