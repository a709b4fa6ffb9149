"""Dataset-level 2D and 3D change metrics as a torchmetrics ``Metric`` (sums, so DDP-safe).

2D: precision, recall, F1 and IoU of the change class, accumulated over all pixels of the
dataset (not averaged per tile); a ratio whose denominator is 0 is reported as 0.
3D: RMSE and MAE over all pixels of the 3D grid, and two "changed" RMSEs:
``crmse_3d_nonzero`` over pixels whose 3D target is non-zero and ``crmse_2d_label`` over pixels
whose 2D label is 1 (the 2D label is reduced to the 3D grid by 2×2 max-pooling: a 1 m cell is
"changed" when any of its four 0.5 m pixels is).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torchmetrics import Metric

KEYS = ("f1", "iou", "precision", "recall", "rmse", "mae", "crmse_3d_nonzero", "crmse_2d_label")
KEYS_2D = KEYS[:4]  #: the keys reported for 2D-only data or detectors


def label_to_grid(mask: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """Reduce an N×H×W {0,1} mask to the N×h×w 3D grid by max-pooling (identity if same shape)."""
    if tuple(mask.shape[-2:]) == tuple(shape):
        return mask.bool()
    f = (mask.shape[-2] + shape[0] - 1) // shape[0]
    pooled = F.max_pool2d(mask[:, None].float(), f, ceil_mode=True)[:, 0]
    return pooled[..., : shape[0], : shape[1]].bool()


def _ratio(a: float, b: float) -> float:
    return float(a) / float(b) if b else 0.0


class ChangeMetrics(Metric):
    """Accumulate confusion counts and squared/absolute height errors; ``compute`` gives KEYS."""

    full_state_update = False

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        for k in ("tp", "fp", "fn", "tn", "n", "n_nz", "n_lbl"):
            self.add_state(k, torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")
        for k in ("se", "ae", "se_nz", "se_lbl"):
            self.add_state(k, torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")

    def update(
        self,
        pred_mask: torch.Tensor,
        mask: torch.Tensor,
        pred_height: torch.Tensor | None = None,
        height: torch.Tensor | None = None,
    ) -> None:
        """``pred_mask``/``mask``: N×H×W {0,1}; ``pred_height``/``height``: N×h×w metres."""
        p, t = pred_mask.bool(), mask.bool()
        self.tp += (p & t).sum()
        self.fp += (p & ~t).sum()
        self.fn += (~p & t).sum()
        self.tn += (~p & ~t).sum()
        if pred_height is None or height is None:
            return
        ph, th = pred_height.double().reshape(height.shape), height.double()
        err = ph - th
        se = err**2
        self.se += se.sum()
        self.ae += err.abs().sum()
        self.n += err.numel()
        nz = th != 0
        self.se_nz += se[nz].sum()
        self.n_nz += nz.sum()
        lbl = label_to_grid(mask.reshape(-1, *mask.shape[-2:]), tuple(th.shape[-2:]))
        lbl = lbl.reshape(th.shape)
        self.se_lbl += se[lbl].sum()
        self.n_lbl += lbl.sum()

    def compute(self) -> dict[str, float]:
        tp, fp, fn = (float(x) for x in (self.tp, self.fp, self.fn))
        precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
        return {
            "f1": _ratio(2 * tp, 2 * tp + fp + fn),
            "iou": _ratio(tp, tp + fp + fn),
            "precision": precision,
            "recall": recall,
            "rmse": math.sqrt(_ratio(self.se.item(), self.n.item())),
            "mae": _ratio(self.ae.item(), self.n.item()),
            "crmse_3d_nonzero": math.sqrt(_ratio(self.se_nz.item(), self.n_nz.item())),
            "crmse_2d_label": math.sqrt(_ratio(self.se_lbl.item(), self.n_lbl.item())),
        }
