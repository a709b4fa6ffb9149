"""The report's baseline CNN, registered with timm as ``bus_cnn_small``.

Three blocks of 3x3 convolution (32/64/128 filters, no padding, like Keras' default), ReLU
and 2x2 max-pooling, then flatten, dropout 0.2 and one linear layer.
"""

from __future__ import annotations

import torch
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model
from torch import nn

from bus_classify.data.io import BusClassifyError


class BusCNN(nn.Module):
    """Small 3-block CNN; the flatten size follows ``img_size``."""

    def __init__(
        self,
        num_classes: int = 2,
        in_chans: int = 3,
        img_size: int = 224,
        widths: tuple[int, ...] = (32, 64, 128),
        drop_rate: float = 0.2,
        **_: object,
    ):
        super().__init__()
        layers: list[nn.Module] = []
        c, side = in_chans, img_size
        for w in widths:
            layers += [nn.Conv2d(c, w, 3), nn.ReLU(inplace=True), nn.MaxPool2d(2)]
            c, side = w, (side - 2) // 2
        if side < 1:
            raise BusClassifyError(
                f"img_size={img_size} is too small for {len(widths)} conv blocks"
            )
        self.features = nn.Sequential(*layers)
        self.num_features = c * side * side
        self.num_classes = num_classes
        self.drop_rate = drop_rate
        self.drop = nn.Dropout(drop_rate)
        self.head = nn.Linear(self.num_features, num_classes) if num_classes else nn.Identity()

    def get_classifier(self) -> nn.Module:
        return self.head

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        self.num_classes = num_classes
        self.head = nn.Linear(self.num_features, num_classes) if num_classes else nn.Identity()

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.drop(torch.flatten(x, 1))
        return x if pre_logits else self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def _cfg(**kwargs) -> dict:
    return {
        "num_classes": 2,
        "input_size": (3, 224, 224),
        "pool_size": None,
        "mean": (0.485, 0.456, 0.406),
        "std": (0.229, 0.224, 0.225),
        "first_conv": "features.0",
        "classifier": "head",
        "url": "",
        **kwargs,
    }


default_cfgs = generate_default_cfgs({"bus_cnn_small.untrained": _cfg()})


@register_model
def bus_cnn_small(pretrained: bool = False, **kwargs) -> BusCNN:
    """The report's 3-block CNN (pretrained weights only from a local file)."""
    return build_model_with_cfg(BusCNN, "bus_cnn_small", pretrained, **kwargs)
