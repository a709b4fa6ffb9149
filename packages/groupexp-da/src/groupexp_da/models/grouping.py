"""Gaussian object groups: k-means + MLE init, Eq. 1-2 assignment, Eq. 3-5 EMA update."""

from __future__ import annotations

import math

import torch
import torch.distributed as dist
from torch import Tensor, nn

from groupexp_da.data.io import GroupExpError


class GaussianGroups(nn.Module):
    """``n_groups`` diagonal Gaussians over object descriptors (buffers: saved in checkpoints).

    ``mu`` (G, D), ``var`` (G, D), ``weight`` (G,) and ``initialized``. A training step blends
    the buffer with the batch mean (:meth:`blend`, differentiable through the batch) and then
    moves the buffer there (:meth:`commit`, EMA with ``alpha`` on the old value).
    """

    def __init__(
        self,
        n_groups: int,
        dim: int,
        alpha: float = 0.8,
        var_floor: float = 1e-3,
        assign: str = "gmm",
        keep_nonempty: bool = True,
        var_reg: float = 0.0,
        center: bool = False,
    ) -> None:
        super().__init__()
        if assign not in ("gmm", "nearest"):
            raise GroupExpError(f"group_cfg.assign must be 'gmm' or 'nearest', got {assign!r}")
        self.n_groups, self.dim, self.alpha = int(n_groups), int(dim), float(alpha)
        self.var_floor, self.assign_mode = float(var_floor), assign
        self.keep_nonempty = bool(keep_nonempty)
        self.var_reg = float(var_reg)  # added to var in Eq. 1 only (the code's reg_covar)
        self.center = bool(center)
        self.register_buffer("mu", torch.zeros(n_groups, dim))
        self.register_buffer("var", torch.ones(n_groups, dim))
        self.register_buffer("weight", torch.full((n_groups,), 1.0 / n_groups))
        self.register_buffer("initialized", torch.tensor(False))

    def _floor(self, var: Tensor) -> Tensor:
        return var.clamp_min(self.var_floor * float(var.mean().clamp_min(1e-12)))

    def require_initialized(self, what: str = "groups") -> None:
        if not bool(self.initialized):
            raise GroupExpError(
                f"{what} used before initialisation: add "
                "custom_hooks=[dict(type='GroupInitHook')] to the config or load "
                "a checkpoint trained with groups"
            )

    @torch.no_grad()
    def fit_init(self, feats: Tensor, seed: int = 42) -> Tensor:
        """k-means (k = n_groups) on ``feats`` (N, D), then per-cluster MLE; returns labels."""
        from sklearn.cluster import KMeans

        n = len(feats)
        if n < self.n_groups:
            raise GroupExpError(
                f"model.group_cfg.n_groups={self.n_groups} is larger than the "
                f"{n} labelled objects available to initialise the groups"
            )
        x = feats.detach().double().cpu()
        km = KMeans(n_clusters=self.n_groups, n_init=10, max_iter=300, random_state=seed)
        labels = torch.as_tensor(km.fit_predict(x.numpy()), dtype=torch.long)
        mu = torch.stack([x[labels == i].mean(0) for i in range(self.n_groups)])
        var = torch.stack([x[labels == i].var(0, unbiased=False) for i in range(self.n_groups)])
        w = torch.bincount(labels, minlength=self.n_groups).double() / n
        self.mu.copy_(mu.to(self.mu))
        self.var.copy_(self._floor(var).to(self.var))
        self.weight.copy_(w.to(self.weight))
        self.initialized.fill_(True)
        return labels

    def mixture_mean(self) -> Tensor:
        """Σ_i w_i mu_i of the buffers (no gradient): the descriptors' running mean."""
        w = self.weight / self.weight.sum().clamp_min(1e-12)
        return (w[:, None] * self.mu).sum(0)

    def log_joint(self, x: Tensor) -> Tensor:
        """(N, D) → (N, G): log w_i + log N(x | mu_i, diag(var_i + var_reg))."""
        var = self.var.to(x) + self.var_reg
        d2 = ((x[:, None, :] - self.mu.to(x)[None]) ** 2 / var[None]).sum(-1)
        log_det = torch.log(var).sum(-1)
        return torch.log(self.weight.to(x).clamp_min(1e-12))[None] - 0.5 * (
            self.dim * math.log(2 * math.pi) + log_det[None] + d2
        )

    def posterior(self, x: Tensor) -> Tensor:
        """Eq. 1: P(group i | x), rows sum to 1."""
        return torch.softmax(self.log_joint(x), dim=1)

    def assign(self, x: Tensor) -> Tensor:
        """Eq. 2 (``gmm``) or nearest mean (``nearest``): (N,) group ids."""
        if len(x) == 0:
            return torch.zeros(0, dtype=torch.long, device=x.device)
        if self.center:  # move the batch's mean onto the buffers' mixture mean (drift-free)
            x = x - x.mean(0) + self.mixture_mean().to(x)
        if self.assign_mode == "nearest":
            score = -torch.cdist(x, self.mu.to(x))
        else:
            score = self.log_joint(x)
        groups = score.argmax(1)
        if self.keep_nonempty and len(x) >= self.n_groups:
            groups = self._fill_empty(score, groups)
        return groups

    def _fill_empty(self, score: Tensor, groups: Tensor) -> Tensor:
        """Give every empty group the object that scores highest for it among objects whose
        group keeps another member (the authors' code does the same). Without it the 512-d
        Gaussians collapse: one group takes every car, the others' EMA weight decays to 0
        and log 0 keeps them empty (measured on the synthetic benchmark, see the README)."""
        groups = groups.clone()
        for i in range(self.n_groups):
            if bool((groups == i).any()):
                continue
            counts = torch.bincount(groups, minlength=self.n_groups)
            movable = counts[groups] > 1
            cand = torch.where(movable, score[:, i], torch.full_like(score[:, i], -float("inf")))
            groups[int(cand.argmax())] = i
        return groups

    def batch_stats(self, x: Tensor, groups: Tensor) -> dict:
        """Per-group count, sum and sum of squares (sum keeps the gradient to ``x``)."""
        onehot = nn.functional.one_hot(groups, self.n_groups).to(x)  # (N, G)
        return {"count": onehot.sum(0), "sum": onehot.T @ x, "sqsum": onehot.T @ (x.detach() ** 2)}

    def blend(self, stats: dict) -> Tensor:
        """Differentiable prototypes: alpha * mu_buf + (1 - alpha) * batch mean (empty: mu_buf)."""
        n = stats["count"]
        mean = stats["sum"] / n.clamp_min(1)[:, None]
        mixed = self.alpha * self.mu + (1 - self.alpha) * mean
        return torch.where((n > 0)[:, None], mixed, self.mu)

    @torch.no_grad()
    def commit(self, stats: dict) -> None:
        """EMA update of the buffers (Eq. 5); statistics are summed over ranks under DDP."""
        n, s, sq = stats["count"].detach(), stats["sum"].detach(), stats["sqsum"].detach()
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            packed = torch.cat([n[:, None], s, sq], 1).contiguous()
            dist.all_reduce(packed)
            n, s, sq = packed[:, 0], packed[:, 1 : 1 + self.dim], packed[:, 1 + self.dim :]
        a = self.alpha
        has = n > 0
        mean = s / n.clamp_min(1)[:, None]
        var_hat = (sq / n.clamp_min(1)[:, None] - mean**2).clamp_min(0)  # biased (Eq. 3)
        self.mu.copy_(torch.where(has[:, None], a * self.mu + (1 - a) * mean, self.mu))
        upd_var = (n > 1)[:, None]  # one sample has no spread: keep the old variance
        self.var.copy_(
            self._floor(torch.where(upd_var, a * self.var + (1 - a) * var_hat, self.var))
        )
        total = n.sum()
        if total > 0:
            self.weight.copy_(a * self.weight + (1 - a) * n / total)
