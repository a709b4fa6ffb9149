"""Backbones: any timm model (random init, no downloads) plus a small registered CNN."""

from __future__ import annotations

import timm
import torch
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model
from torch import nn


class SmallSpheroidCNN(nn.Module):
    """A small conv net (stride-2 stem, 4 stages, ~0.3 M parameters at width 16) for CPU demos,
    with timm's ``num_features`` / ``forward_features`` interface."""

    def __init__(self, in_chans: int = 1, num_classes: int = 0, width: int = 16, **_: object):
        super().__init__()
        chans = [width, width * 2, width * 4, width * 8]
        layers: list[nn.Module] = []
        prev = in_chans
        for c in chans:
            layers += [
                nn.Conv2d(prev, c, 3, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(c),
                nn.ReLU(inplace=True),
                nn.Conv2d(c, c, 3, padding=1, bias=False),
                nn.BatchNorm2d(c),
                nn.ReLU(inplace=True),
            ]
            prev = c
        self.features = nn.Sequential(*layers)
        self.num_features = prev
        self.num_classes = num_classes
        self.head = nn.Linear(prev, num_classes) if num_classes else nn.Identity()

    def get_classifier(self) -> nn.Module:
        return self.head

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        self.num_classes = num_classes
        self.head = nn.Linear(self.num_features, num_classes) if num_classes else nn.Identity()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = x.mean((2, 3))
        return x if pre_logits else self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def _cfg(**kwargs) -> dict:
    # bright-field images are one grey channel, normalised as in data/transforms.py
    return {
        "num_classes": 0,
        "input_size": (1, 64, 64),
        "pool_size": None,
        "mean": (0.5,),
        "std": (0.25,),
        "first_conv": "features.0",
        "classifier": "head",
        "url": "",
        **kwargs,
    }


default_cfgs = generate_default_cfgs({"spheroid_cnn_small.untrained": _cfg()})


@register_model
def spheroid_cnn_small(pretrained: bool = False, **kwargs) -> SmallSpheroidCNN:
    """timm registry entry for :class:`SmallSpheroidCNN` (random init; no weights exist)."""
    return build_model_with_cfg(SmallSpheroidCNN, "spheroid_cnn_small", pretrained, **kwargs)


def create_backbone(
    name: str = "resnet18", in_chans: int = 1, img_size: int | None = None
) -> nn.Module:
    """A timm backbone returning pooled features (``num_classes=0``), random weights.

    ViT models get ``img_size`` and a patch size of 8 so that small images work.
    """
    kwargs: dict = {"pretrained": False, "num_classes": 0, "in_chans": in_chans}
    if name.startswith(("vit", "deit")) and img_size:
        kwargs.update(img_size=img_size, patch_size=8)
    return timm.create_model(name, **kwargs)


def feature_dim(model: nn.Module) -> int:
    """Width of the pooled features of a timm backbone."""
    return int(model.num_features)
