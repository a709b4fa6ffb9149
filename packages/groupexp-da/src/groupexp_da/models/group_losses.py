"""Group repulsion (Eq. 6) and attraction (Eq. 7), plus the authors' code variants."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def repulsion_loss(mu: Tensor, center: Tensor | None = None) -> Tensor:
    """Σ_{i<j} max(0, cos(mu_i − c, mu_j − c)); ``center`` c = None is Eq. 6 as written."""
    if center is not None:
        mu = mu - center
    c = F.cosine_similarity(mu[:, None, :], mu[None, :, :], dim=-1)
    iu = torch.triu_indices(len(mu), len(mu), offset=1, device=mu.device)
    return torch.relu(c[iu[0], iu[1]]).sum()


def attraction_loss(
    feats: Tensor, groups: Tensor, mu: Tensor, center: Tensor | None = None
) -> Tensor:
    """Mean over objects of 1 − cos(F_k − c, mu_{G_k} − c) (Eq. 7 divided by the object count;
    ``center`` c = None is the equation as written)."""
    if len(feats) == 0:
        return mu.sum() * 0.0
    if center is not None:
        feats, mu = feats - center, mu - center
    return (1 - F.cosine_similarity(feats, mu[groups], dim=-1)).mean()


def repulsion_loss_code(mu: Tensor) -> Tensor:
    """The authors' form: mean of the off-diagonal cosine matrix + 0.1·mean of its square,
    dropped when negative."""
    c = F.cosine_similarity(mu[:, None, :], mu[None, :, :], dim=-1)
    off = c * (1 - torch.eye(len(mu), device=mu.device))
    n = len(mu)
    loss = off.mean() + 0.1 * (off**2).sum() / max(n * (n - 1), 1)
    return loss if float(off.mean()) >= 0 else loss * 0.0


def attraction_loss_code(feats: Tensor, groups: Tensor, n_groups: int) -> Tensor:
    """The authors' form, per group: −mean pairwise cos + mean cos² + 0.01·mean |F| over the
    group's objects (no prototype), skipped when the mean similarity is already > 0.4."""
    total = feats.sum() * 0.0
    for i in range(n_groups):
        f = feats[groups == i]
        if len(f) < 2:
            continue
        c = F.cosine_similarity(f[:, None, :], f[None, :, :], dim=-1)
        off = c[~torch.eye(len(f), dtype=torch.bool, device=f.device)]
        if float(off.mean()) > 0.4:
            continue
        total = total - off.mean() + (off**2).mean() + 0.01 * f.abs().mean()
    return total
