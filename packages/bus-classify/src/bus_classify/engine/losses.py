"""Class-imbalance remedies: class weights and focal loss."""

from __future__ import annotations

from collections import Counter

import torch
import torch.nn.functional as F
from torch import nn

from bus_classify.data.io import BusClassifyError


def inverse_frequency_weights(labels: list[int], num_classes: int) -> list[float]:
    """``n / (k * count_c)`` per class (1.0 for a class absent from ``labels``)."""
    counts = Counter(labels)
    n = len(labels)
    return [n / (num_classes * counts[c]) if counts[c] else 1.0 for c in range(num_classes)]


class FocalLoss(nn.Module):
    """Multi-class focal loss ``-w_y (1 - p_y)^gamma log p_y`` averaged over the batch
    (weighted mean when class weights are given, like ``F.cross_entropy``)."""

    def __init__(self, gamma: float = 2.0, weight: torch.Tensor | None = None) -> None:
        super().__init__()
        self.gamma = gamma
        self.register_buffer("weight", weight if weight is not None else None)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        logp = F.log_softmax(logits.float(), dim=1).gather(1, target[:, None]).squeeze(1)
        loss = -((1.0 - logp.exp()) ** self.gamma) * logp
        if self.weight is None:
            return loss.mean()
        w = self.weight.to(loss.device)[target]
        return (w * loss).sum() / w.sum()


def build_loss(
    kind: str, class_weights: list[float] | None, gamma: float = 2.0, label_smoothing: float = 0.0
) -> nn.Module:
    """``ce`` | ``weighted_ce`` | ``focal`` (focal uses the class weights when given);
    ``label_smoothing`` applies to the two CE losses."""
    w = torch.tensor(class_weights, dtype=torch.float32) if class_weights else None
    if not 0.0 <= label_smoothing < 1.0:
        raise BusClassifyError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
    if kind == "ce":
        return nn.CrossEntropyLoss(label_smoothing=label_smoothing)
    if kind == "weighted_ce":
        if w is None:
            raise BusClassifyError("weighted_ce needs class weights")
        return nn.CrossEntropyLoss(weight=w, label_smoothing=label_smoothing)
    if kind == "focal":
        return FocalLoss(gamma, w)
    raise BusClassifyError(f"unknown loss {kind!r}; use ce, weighted_ce or focal")
