"""Create any timm model by name, optionally from a local weight file."""

from __future__ import annotations

from pathlib import Path

import timm
from torch import nn

from bus_classify.data.io import BusClassifyError
from bus_classify.models.cnn import BusCNN

_SIZE_AWARE = ("swin", "vit", "deit", "beit", "eva", "bus_cnn", "maxvit", "coat")


def create_model(
    name: str = "swin_tiny_patch4_window7_224",
    num_classes: int = 2,
    img_size: int | None = None,
    weights: str | None = None,
    model_kwargs: dict | None = None,
) -> nn.Module:
    """``timm.create_model`` with the package's conventions.

    Args:
        name: any timm model name (``bus_cnn_small`` is registered by this package).
        num_classes: output classes; a pretrained head of another size is dropped by timm.
        img_size: passed to models whose architecture depends on it (Swin, ViT, the CNN).
        weights: local ``.safetensors``/``.pth``/``.bin`` file with pretrained weights; nothing
            is ever downloaded.
        model_kwargs: extra architecture arguments (e.g. a smaller Swin).
    """
    kwargs = dict(model_kwargs or {})
    if img_size and any(k in name for k in _SIZE_AWARE):
        kwargs.setdefault("img_size", img_size)
    if weights:
        path = Path(weights)
        if not path.is_file():
            raise BusClassifyError(f"{path}: weight file not found")
        return timm.create_model(
            name,
            pretrained=True,
            num_classes=num_classes,
            pretrained_cfg_overlay={"file": str(path)},
            **kwargs,
        )
    return timm.create_model(name, pretrained=False, num_classes=num_classes, **kwargs)


def gradcam_target_layer(model: nn.Module) -> nn.Module:
    """The layer whose activations Grad-CAM should use for this model."""
    if isinstance(model, BusCNN):
        convs = [m for m in model.features if isinstance(m, nn.Conv2d)]
        return convs[-1]
    if hasattr(model, "layers") and hasattr(model, "norm") and "Swin" in type(model).__name__:
        return model.layers[-1].blocks[-1]
    if hasattr(model, "stages"):
        return model.stages[-1]
    if hasattr(model, "layer4"):
        return model.layer4[-1]
    if hasattr(model, "blocks"):
        return model.blocks[-1].norm1
    raise BusClassifyError(f"no Grad-CAM target layer known for {type(model).__name__}")


def reshape_transform_for(model: nn.Module):
    """Token-to-map reshape for transformer features (timm Swin keeps NHWC maps)."""
    if "Swin" in type(model).__name__:
        return _nhwc_to_nchw
    return None


def _nhwc_to_nchw(t):
    return t.permute(0, 3, 1, 2) if t.ndim == 4 else t
