"""Instance-logit rendering and the two instance losses (cross-entropy, depth-weighted patch smoothness)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

IGNORE = -1


def render_logits(logits: Tensor, weights: Tensor) -> Tensor:
    """Accumulate raw per-sample logits with volume-rendering weights (no softmax before).

    Args:
        logits: (..., S, L) per-sample logits.
        weights: (..., S, 1) rendering weights w_k = T_k (1 - exp(-sigma_k delta_k)).
    Returns:
        (..., L) rendered logits sum_k w_k * logits_k.
    """
    return torch.sum(weights * logits, dim=-2)


def instance_ce_loss(logits: Tensor, labels: Tensor) -> Tensor:
    """Mean cross-entropy over rays whose label is not ``IGNORE``; 0 when every ray is ignored."""
    labels = labels.reshape(-1).long()
    valid = labels != IGNORE
    if not bool(valid.any()):
        return logits.sum() * 0.0
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1])[valid], labels[valid])


def patch_smoothness_loss(
    logits: Tensor, depth: Tensor, patch_size: int, depth_scale: float = 1.0
) -> Tensor:
    """Depth-weighted smoothness of rendered logits inside square pixel patches.

    Rays are ordered as nerfstudio's PatchPixelSampler emits them: patch-major, then row, then column.
    For horizontal and vertical neighbour pairs, the squared logit difference (averaged over the L
    channels) is weighted by exp(-(depth_scale * delta_depth)^2); each direction is normalised by the
    sum of its weights, and the two directions are added.

    Args:
        logits: (P * patch_size**2, L) rendered logits.
        depth: (P * patch_size**2, 1) rendered depth (treated as a constant).
    """
    n, num_l = logits.shape
    per = patch_size * patch_size
    if patch_size < 2 or n % per != 0:
        raise ValueError(f"{n} rays do not form patches of {patch_size}x{patch_size}")
    lg = logits.reshape(-1, patch_size, patch_size, num_l)
    d = depth.detach().reshape(-1, patch_size, patch_size) * depth_scale
    total = logits.new_zeros(())
    for dim in (2, 1):  # columns (horizontal neighbours), then rows (vertical neighbours)
        diff = (torch.diff(lg, dim=dim) ** 2).mean(dim=-1)
        w = torch.exp(-(torch.diff(d, dim=dim) ** 2))
        total = total + (w * diff).sum() / w.sum().clamp_min(1e-12)
    return total
