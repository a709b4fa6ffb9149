"""A small name → constructor registry so users can add models without editing the package."""

from __future__ import annotations

from collections.abc import Callable

import torch.nn as nn

_MODELS: dict[str, Callable[..., nn.Module]] = {}


def register_model(name: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator registering a model class or factory under ``name``.

    The model's ``forward(before, after)`` must return ``(logits_2d, height_3d)`` with
    ``logits_2d`` of shape N×2×H×W and ``height_3d`` N×1×⌈H/2⌉×⌈W/2⌉ (scaled units).
    """

    def deco(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _MODELS and _MODELS[name] is not fn:
            raise KeyError(f"model {name!r} is already registered")
        _MODELS[name] = fn
        return fn

    return deco


def create_model(name: str, **kwargs) -> nn.Module:
    """Build a registered model by name, e.g. ``create_model("siam_unet", encoder_name="resnet18")``."""
    if name not in _MODELS:
        raise KeyError(f"unknown model {name!r}; registered: {sorted(_MODELS)}")
    return _MODELS[name](**kwargs)


def list_models() -> list[str]:
    """Names of all registered models."""
    return sorted(_MODELS)
