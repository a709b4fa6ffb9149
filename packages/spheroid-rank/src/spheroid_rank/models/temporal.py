"""Temporal models predicting the target-day embedding from a history of embeddings.

All models predict the change from the last history frame. Registered in
:data:`TEMPORAL_MODELS`: ``linear`` (ridge on the flattened history), ``mlp``, ``gru`` and
``ldp`` (lightly's LatentDynamicsPredictor, a causal transformer over frames).
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import torch
from lightly.models.modules.world_model import LatentDynamicsPredictor
from sklearn.linear_model import Ridge
from torch import nn


@contextmanager
def single_thread():
    """Run tiny models on one intra-op thread (multi-thread spin-waits dominate otherwise)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


TEMPORAL_MODELS: dict[str, type[TemporalModel]] = {}


def register_temporal(name: str):
    """Class decorator adding a temporal model to :data:`TEMPORAL_MODELS`."""

    def deco(cls):
        TEMPORAL_MODELS[name] = cls
        return cls

    return deco


class TemporalModel:
    """fit(X (N, T, D), Y (N, D)) / predict(X) -> (N, D)."""

    def fit(self, x: np.ndarray, y: np.ndarray) -> TemporalModel:
        raise NotImplementedError

    def predict(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError


@register_temporal("linear")
class LinearHistory(TemporalModel):
    """Ridge regression of (y - x_last) on the flattened history."""

    def __init__(self, alpha: float = 10.0, seed: int = 0) -> None:
        self.reg = Ridge(alpha=alpha)

    def fit(self, x, y):
        self.reg.fit(x.reshape(len(x), -1), y - x[:, -1])
        return self

    def predict(self, x):
        return x[:, -1] + self.reg.predict(x.reshape(len(x), -1))


class _TorchTemporal(TemporalModel):
    """Full-batch AdamW training of a small torch network on the delta target."""

    def __init__(
        self,
        epochs: int = 300,
        lr: float = 3e-3,
        weight_decay: float = 1e-2,
        hidden: int = 64,
        seed: int = 0,
    ) -> None:
        self.epochs, self.lr, self.wd, self.hidden, self.seed = (
            epochs,
            lr,
            weight_decay,
            hidden,
            seed,
        )
        self.net: nn.Module | None = None

    def build(self, t: int, d: int) -> nn.Module:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert self.net is not None
        return self.net(x)

    def fit(self, x, y):
        with single_thread():
            return self._fit(x, y)

    def _fit(self, x, y):
        torch.manual_seed(self.seed)
        xt = torch.as_tensor(x, dtype=torch.float32)
        target = torch.as_tensor(y - x[:, -1], dtype=torch.float32)
        self.net = self.build(x.shape[1], x.shape[2])
        opt = torch.optim.AdamW(self.net.parameters(), lr=self.lr, weight_decay=self.wd)
        self.net.train()
        self.losses: list[float] = []
        for _ in range(self.epochs):
            loss = nn.functional.mse_loss(self.forward(xt), target)
            opt.zero_grad()
            loss.backward()
            opt.step()
            self.losses.append(float(loss.detach()))
        self.net.eval()
        return self

    @torch.no_grad()
    def predict(self, x):
        xt = torch.as_tensor(x, dtype=torch.float32)
        with single_thread():
            return x[:, -1] + self.forward(xt).numpy()


@register_temporal("mlp")
class MLPHistory(_TorchTemporal):
    """Two-layer MLP on the flattened history."""

    def build(self, t, d):
        return nn.Sequential(
            nn.Flatten(),
            nn.Linear(t * d, self.hidden),
            nn.GELU(),
            nn.Dropout(0.1),
            nn.Linear(self.hidden, d),
        )


class _GRUNet(nn.Module):
    def __init__(self, d: int, hidden: int) -> None:
        super().__init__()
        self.gru = nn.GRU(d, hidden, batch_first=True)
        self.out = nn.Linear(hidden, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, _ = self.gru(x)
        return self.out(h[:, -1])


@register_temporal("gru")
class GRUHistory(_TorchTemporal):
    """GRU over the history frames; the last hidden state predicts the change."""

    def build(self, t, d):
        return _GRUNet(d, self.hidden)


class _LDPNet(nn.Module):
    def __init__(self, t: int, d: int, hidden: int) -> None:
        super().__init__()
        self.pred = LatentDynamicsPredictor(
            num_frames=t,
            input_dim=d,
            hidden_dim=hidden,
            depth=2,
            num_heads=4,
            conditional=False,
            causal=True,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pred(x)[:, -1]  # prediction of the frame after the last one


@register_temporal("ldp")
class LDPHistory(_TorchTemporal):
    """lightly ``LatentDynamicsPredictor`` (actionless, causal) over the history."""

    def build(self, t, d):
        return _LDPNet(t, d, self.hidden)


def build_temporal(name: str, **kwargs) -> TemporalModel:
    """Instantiate a registered temporal model."""
    if name not in TEMPORAL_MODELS:
        raise ValueError(f"unknown temporal model {name!r}; choose from {sorted(TEMPORAL_MODELS)}")
    return TEMPORAL_MODELS[name](**kwargs)
