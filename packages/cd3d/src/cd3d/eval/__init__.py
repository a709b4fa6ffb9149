"""Metrics, evaluation reports, baselines, figures and volume reports."""

from .metrics import KEYS, ChangeMetrics

__all__ = ["KEYS", "ChangeMetrics"]
