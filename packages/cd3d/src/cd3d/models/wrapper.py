"""Wraps a registered network with input normalisation and the height scale, so a checkpoint
carries everything needed to turn [0, 1] images into change probabilities and metres."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn

from .registry import create_model
from .tta import predict_with_tta

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class Predictor:
    """Adds :meth:`predict` to a module whose ``forward(before, after)`` returns logits N×2×H×W
    and height change N×1×h×w in metres (the detector and the baselines)."""

    @torch.no_grad()
    def predict(
        self, before: torch.Tensor, after: torch.Tensor, tta: bool | str = False, amp: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Change probability N×H×W and height N×⌈H/2⌉×⌈W/2⌉ (metres) for [0, 1] image batches.

        Switches to eval mode; ``tta`` averages over flips (``True``/``"flip"``) or the eight D4
        transforms (``"d4"``); ``amp`` runs under bf16 autocast.
        """
        if self.training:
            self.eval()
        return predict_with_tta(self, before, after, tta, amp)


class ChangeDetector(Predictor, nn.Module):
    """``net`` from the registry plus per-channel mean/std and ``height_scale`` (metres per unit).

    The network regresses height change divided by ``height_scale`` (so targets lie in about
    [-1, 1]); :meth:`forward` returns logits and the height in metres. With ``task="2d"`` the
    height head is off: it gets no loss, and predict, eval and the metrics leave it out.
    """

    def __init__(
        self,
        model: str = "siam_unet",
        model_kwargs: dict | None = None,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
        height_scale: float = 40.0,
        task: str = "3d",
    ) -> None:
        super().__init__()
        if task not in ("2d", "3d"):
            raise ValueError(f"task must be '2d' or '3d', not {task!r}")
        self.task = task
        self.model_name, self.model_kwargs = model, dict(model_kwargs or {})
        self.net = create_model(model, **self.model_kwargs)
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))
        self.height_scale = float(height_scale)

    def forward_scaled(
        self, before: torch.Tensor, after: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits and height in scaled units (what the loss sees)."""
        b = (before - self.mean) / self.std
        a = (after - self.mean) / self.std
        return self.net(b, a)

    def forward(
        self, before: torch.Tensor, after: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits N×2×H×W and height change N×1×h×w in metres."""
        logits, h = self.forward_scaled(before, after)
        return logits, h * self.height_scale

    def config(self) -> dict:
        """Plain-data description used to rebuild the model from a checkpoint."""
        return {
            "model": self.model_name,
            "model_kwargs": self.model_kwargs,
            "mean": self.mean.flatten().tolist(),
            "std": self.std.flatten().tolist(),
            "height_scale": self.height_scale,
            "task": self.task,
        }
