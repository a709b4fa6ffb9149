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
B_MAX = 10.0


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


def _fit_bias(logits: np.ndarray, labels: np.ndarray, t: float, max_iter: int) -> np.ndarray:
    """Class bias (``b[0] = 0``) minimising the NLL of ``softmax(logits / t + b)``."""
    z = torch.as_tensor(logits, dtype=torch.float64) / t
    y = torch.as_tensor(labels).long()
    b = torch.zeros(z.shape[1] - 1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([b], lr=0.1, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(z + torch.cat([b.new_zeros(1), b]), y)
        loss.backward()
        return loss

    opt.step(closure)
    return np.concatenate([[0.0], np.clip(b.detach().numpy(), -B_MAX, B_MAX)])


def fit_temperature_bias(
    logits: np.ndarray, labels: np.ndarray, max_iter: int = 200
) -> tuple[float, np.ndarray]:
    """Temperature ``T`` and per-class bias ``b`` (``b[0] = 0``) minimising validation NLL of
    ``softmax(logits / T + b)``; for two classes this is Platt scaling of the logit gap.

    The bias undoes a shift of the predicted class prior, which temperature alone cannot: a
    class-weighted loss trains the model to over-predict the minority class. ``T`` is kept in
    [0.2, 10] and ``b`` in [-10, 10]: the joint fit is clipped, the bias is refitted at the
    clipped ``T``, and of these, temperature alone and ``(1, 0)`` the lowest NLL wins.
    """
    z = torch.as_tensor(logits, dtype=torch.float64)
    y = torch.as_tensor(labels).long()
    k = z.shape[1]
    params = torch.zeros(k, dtype=torch.float64, requires_grad=True)  # log T, b[1:]
    opt = torch.optim.LBFGS([params], lr=0.1, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        bias = torch.cat([params.new_zeros(1), params[1:]])
        loss = torch.nn.functional.cross_entropy(z / params[0].exp() + bias, y)
        loss.backward()
        return loss

    opt.step(closure)
    p = params.detach().numpy()
    t = float(np.clip(np.exp(p[0]), T_MIN, T_MAX)) if np.isfinite(p[0]) else 1.0
    candidates = [(1.0, np.zeros(k)), (fit_temperature(logits, labels, max_iter), np.zeros(k))]
    if np.isfinite(p).all():
        candidates.append((t, np.concatenate([[0.0], np.clip(p[1:], -B_MAX, B_MAX)])))
    candidates.append((t, _fit_bias(logits, labels, t, max_iter)))
    scores = [nll(logits / c + b, labels) for c, b in candidates]
    scores = [s if np.isfinite(s) else np.inf for s in scores]
    return candidates[int(np.argmin(scores))]


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


def threshold_for_macro_f1(probs: np.ndarray, labels: np.ndarray, positive: list[int]) -> float:
    """Lump-score threshold maximising the macro F1 of :func:`~bus_classify.eval.report.decide`
    on the given (validation) set; the median of the maximising cut points between the sorted
    scores, so a plateau of equal F1 is cut in its middle."""
    from sklearn.metrics import f1_score

    from bus_classify.eval.metrics import positive_score
    from bus_classify.eval.report import decide

    probs, labels = np.asarray(probs, dtype=np.float64), np.asarray(labels).astype(int)
    s = np.unique(positive_score(probs, positive))
    if len(s) < 2:
        return 0.5
    cuts = (s[1:] + s[:-1]) / 2
    k = probs.shape[1]
    f1 = np.array(
        [
            f1_score(labels, decide(probs, positive, t), labels=list(range(k)), average="macro")
            for t in cuts
        ]
    )
    return float(np.median(cuts[f1 >= f1.max() - 1e-12]))
