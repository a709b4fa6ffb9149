"""Group-region cross-attention (Eq. 8): a group prototype queries the BEV feature map."""

from __future__ import annotations

import math

import torch
from mmdet3d.registry import MODELS
from torch import Tensor, nn


class _CrossAttnLayer(nn.Module):
    """One query token over the H·W cells, computed without H·W×d key/value tensors.

    With q = W_q mu, the logit of cell n is q·(W_k F_n + b_k) = (W_kᵀ q)·F_n + const, and
    Σ_n a_n (W_v F_n + b_v) = W_v (Σ_n a_n F_n) + b_v because Σ_n a_n = 1, so only C-vectors
    and one H·W attention map are built. The context c is added to every cell, then norm and
    a 1×1 conv (the authors' layer, with a grid-size-free norm).
    """

    def __init__(
        self,
        query_dim: int,
        channels: int,
        d_attn: int,
        dropout: float,
        norm: str,
        grid: tuple[int, int] | None,
    ) -> None:
        super().__init__()
        self.q = nn.Linear(query_dim, d_attn)
        self.k = nn.Linear(channels, d_attn)
        self.v = nn.Linear(channels, channels)
        self.drop = nn.Dropout(dropout)
        self.scale = 1.0 / math.sqrt(d_attn)
        if norm == "group":
            self.norm = nn.GroupNorm(1, channels)
        elif norm == "layernorm_chw":
            if grid is None:
                raise ValueError("norm='layernorm_chw' needs grid=(H, W)")
            self.norm = nn.LayerNorm([channels, *grid])
        else:
            raise ValueError(f"norm must be 'group' or 'layernorm_chw', got {norm!r}")
        self.proj = nn.Conv2d(channels, channels, 1)

    def attention(self, mu: Tensor, feat: Tensor) -> Tensor:
        """(Dq,) query, (B, C, H, W) → (B, H·W) attention weights."""
        u = self.q(mu) @ self.k.weight  # (C,) = W_kᵀ q
        logits = torch.einsum("c,bcn->bn", u, feat.flatten(2)) * self.scale
        return self.drop(torch.softmax(logits, dim=1))

    def context(self, mu: Tensor, feat: Tensor) -> Tensor:
        a = self.attention(mu, feat)
        return self.v(torch.einsum("bn,bcn->bc", a, feat.flatten(2)))  # (B, C)

    def forward(self, mu: Tensor, feat: Tensor) -> Tensor:
        c = self.context(mu, feat)
        return torch.relu(self.proj(self.norm(feat + c[:, :, None, None])))

    def _contexts(self, mu: Tensor, feat: Tensor) -> Tensor:
        """(G, Dq) queries over (B, C, H, W) → (G, B, C) contexts."""
        u = self.q(mu) @ self.k.weight  # (G, C)
        f = feat.flatten(2)
        a = self.drop(torch.softmax(torch.einsum("gc,bcn->gbn", u, f) * self.scale, dim=2))
        return self.v(torch.einsum("gbn,bcn->gbc", a, f))

    def forward_shared(self, mu: Tensor, feat: Tensor) -> Tensor:
        """All G queries on one shared (B, C, H, W) map → (G, B, C, H, W), equal to
        ``forward(mu[g], feat)`` per g.

        With GroupNorm(1, C) the per-group norm and 1×1 conv fold into one shared conv:
        GN(F + c) = γ∘(F + c − m)/s + β with m, s from F's moments and c, so
        proj(GN(F + c)) = (W diag γ) F / s + [W (γ∘(c − m)) / s + W β + b]: the conv over
        the map runs once for all groups, the rest is per-(group, sample) scalars and vectors.
        """
        ctx = self._contexts(mu, feat)  # (G, B, C)
        if not isinstance(self.norm, nn.GroupNorm):
            g = len(mu)
            x = (feat[None] + ctx[..., None, None]).flatten(0, 1)
            out = torch.relu(self.proj(self.norm(x)))
            return out.unflatten(0, (g, feat.shape[0]))
        f = feat.flatten(2)
        ch_mean = f.mean(2)  # (B, C)
        f_mean = ch_mean.mean(1)  # (B,)
        f_var = f.var(dim=(1, 2), unbiased=False)  # (B,)
        c_mean = ctx.mean(2)  # (G, B)
        dc = ctx - c_mean[..., None]
        var = f_var + (dc**2).mean(2) + 2 * (dc * (ch_mean - f_mean[:, None])).mean(2)
        inv_s = torch.rsqrt(var + self.norm.eps)  # (G, B)
        mean = f_mean + c_mean  # (G, B)
        w = self.proj.weight[:, :, 0, 0]  # (Cout, C)
        w_g = w * self.norm.weight[None]
        shared = nn.functional.conv2d(feat, w_g[..., None, None])  # (B, Cout, H, W)
        const = (
            ((ctx - mean[..., None]) @ w_g.T) * inv_s[..., None]
            + w @ self.norm.bias
            + self.proj.bias
        )  # (G, B, Cout)
        return torch.relu(shared[None] * inv_s[..., None, None, None] + const[..., None, None])

    def forward_each(self, mu: Tensor, feat: Tensor) -> Tensor:
        """Query g on its own map: (G, Dq), (G, B, C, H, W) → (G, B, C, H, W), batched."""
        u = self.q(mu) @ self.k.weight  # (G, C)
        f = feat.flatten(3)
        a = self.drop(torch.softmax(torch.einsum("gc,gbcn->gbn", u, f) * self.scale, dim=2))
        ctx = self.v(torch.einsum("gbn,gbcn->gbc", a, f))
        x = (feat + ctx[..., None, None]).flatten(0, 1)
        return torch.relu(self.proj(self.norm(x))).unflatten(0, feat.shape[:2])


@MODELS.register_module()
class GroupRegionCrossAttention(nn.Module):
    """``num_layers`` cross-attention layers; the query is refreshed by ReLU(W_u mu) between."""

    def __init__(
        self,
        query_dim: int = 512,
        channels: int = 192,
        d_attn: int = 512,
        num_layers: int = 2,
        dropout: float = 0.1,
        norm: str = "group",
        grid: tuple[int, int] | None = None,
    ) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            _CrossAttnLayer(query_dim, channels, d_attn, dropout, norm, grid)
            for _ in range(num_layers)
        )
        self.update = nn.ModuleList(nn.Linear(query_dim, query_dim) for _ in range(num_layers - 1))

    def forward_groups(self, mu: Tensor, feat: Tensor) -> Tensor:
        """(G, Dq) prototypes, (B, C, H, W) features → (G, B, C, H, W): ``forward`` for every
        group at once (the first layer's conv shared, the others batched over groups).

        On the CPU the maps run channels-last: oneDNN's 1×1 convolutions (the layers'
        projections and the shared RPN convs on the n_g·B maps) are about twice as fast in that
        layout there; the values are the same up to float rounding."""
        if feat.device.type == "cpu":
            feat = feat.contiguous(memory_format=torch.channels_last)
        for k, layer in enumerate(self.layers):
            feat = layer.forward_shared(mu, feat) if k == 0 else layer.forward_each(mu, feat)
            if k < len(self.update):
                mu = torch.relu(self.update[k](mu))
        return feat

    def forward(self, mu: Tensor, feat: Tensor) -> Tensor:
        """(Dq,) prototype and (B, C, H, W) BEV features → group-conditioned (B, C, H, W)."""
        for k, layer in enumerate(self.layers):
            feat = layer(mu, feat)
            if k < len(self.update):
                mu = torch.relu(self.update[k](mu))
        return feat
