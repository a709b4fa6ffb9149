"""Temperature scaling and sensitivity-targeted decision thresholds."""

from __future__ import annotations

import numpy as np
import torch

from bus_classify.data.io import BusClassifyError


def nll(logits: np.ndarray, labels: np.ndarray, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood of ``softmax(logits / T)``."""
    z = torch.as_tensor(logits, dtype=torch.float64) / temperature
    return float(torch.nn.functional.cross_entropy(z, torch.as_tensor(labels).long()))


T_MIN, T_MAX = 0.2, 10.0


def fit_temperature(logits: np.ndarray, labels: np.ndarray, max_iter: int = 200) -> float:
    """Temperature minimising validation NLL (L-BFGS on ``log T``), clipped to [0.2, 10].

    The clip matters when the validation set is perfectly separated: NLL then keeps falling as
    ``T -> 0`` and an unclipped fit would make every test prediction 0 or 1.
    """
    z = torch.as_tensor(logits, dtype=torch.float64)
    y = torch.as_tensor(labels).long()
    log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([log_t], lr=0.1, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(z / log_t.exp(), y)
        loss.backward()
        return loss

    opt.step(closure)
    t = float(np.clip(float(log_t.detach().exp()), T_MIN, T_MAX))
    if not np.isfinite(t) or nll(logits, labels, t) > nll(logits, labels, 1.0):
        return 1.0
    return t


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row softmax of ``logits / T``."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def threshold_for_sensitivity(
    score: np.ndarray, is_positive: np.ndarray, target: float = 0.95
) -> float:
    """Largest threshold ``t`` such that ``mean(score[pos] >= t) >= target``.

    The highest threshold keeps specificity as high as possible while meeting the target
    sensitivity on the given (validation) set.
    """
    pos = np.sort(np.asarray(score)[np.asarray(is_positive).astype(bool)])
    if len(pos) == 0:
        raise BusClassifyError("no positive samples to tune the threshold on")
    k = int(np.ceil(target * len(pos)))  # need at least k positives at or above t
    k = min(max(k, 1), len(pos))
    return float(pos[len(pos) - k])
