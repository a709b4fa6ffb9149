"""Eval seam: dataset-level metrics (torchmetrics), evaluation reports and figures, trivial baselines
and volume reports; uses data and models only (engine builds on it)."""

from .metrics import KEYS, KEYS_2D, ChangeMetrics

__all__ = ["KEYS", "KEYS_2D", "ChangeMetrics"]
