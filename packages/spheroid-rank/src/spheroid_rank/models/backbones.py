"""Backbones: any timm model (random init, no downloads) plus a small registered CNN."""

from __future__ import annotations

import timm
import torch
from timm.models import register_model
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
            layers += [nn.Conv2d(prev, c, 3, stride=2, padding=1, bias=False),
                       nn.BatchNorm2d(c), nn.ReLU(inplace=True),
                       nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c),
                       nn.ReLU(inplace=True)]
            prev = c
        self.features = nn.Sequential(*layers)
        self.num_features = prev
        self.head = nn.Linear(prev, num_classes) if num_classes else nn.Identity()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(x).mean((2, 3)))


@register_model
def spheroid_cnn_small(pretrained: bool = False, **kwargs) -> SmallSpheroidCNN:
    """timm registry entry for :class:`SmallSpheroidCNN` (no pretrained weights exist)."""
    if pretrained:
        raise ValueError("spheroid_cnn_small has no pretrained weights")
    return SmallSpheroidCNN(**kwargs)


def create_backbone(name: str = "resnet18", in_chans: int = 1, img_size: int | None = None
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
