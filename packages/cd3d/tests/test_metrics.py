"""Metrics against hand-computed values."""

import math

import pytest
import torch
from torchmetrics.classification import BinaryF1Score, BinaryJaccardIndex

from cd3d.eval.metrics import KEYS, ChangeMetrics, label_to_grid


def test_confusion_metrics_hand_computed():
    pred = torch.tensor([[[1, 1, 0, 0], [1, 0, 0, 0]]])
    true = torch.tensor([[[1, 0, 0, 0], [1, 1, 1, 0]]])
    m = ChangeMetrics()
    m.update(pred, true)
    r = m.compute()
    # tp=2 fp=1 fn=2
    assert r["precision"] == pytest.approx(2 / 3)
    assert r["recall"] == pytest.approx(2 / 4)
    assert r["f1"] == pytest.approx(4 / 7)
    assert r["iou"] == pytest.approx(2 / 5)
    assert r["f1"] == pytest.approx(BinaryF1Score()(pred.flatten(), true.flatten()).item())
    assert r["iou"] == pytest.approx(BinaryJaccardIndex()(pred.flatten(), true.flatten()).item())


def test_accumulates_over_dataset_not_per_tile():
    m = ChangeMetrics()
    m.update(torch.tensor([[[1, 1]]]), torch.tensor([[[1, 1]]]))  # perfect tile
    m.update(torch.tensor([[[0, 1]]]), torch.tensor([[[1, 0]]]))  # wrong tile
    # pooled: tp=2 fp=1 fn=1 -> f1 = 4/6; mean of per-tile F1 would be 0.5
    assert m.compute()["f1"] == pytest.approx(4 / 6)


def test_height_errors_and_both_crmses():
    # 2D mask 4x4 -> 3D grid 2x2 by max-pooling: only the top-left cell is labelled changed
    mask = torch.zeros(1, 4, 4, dtype=torch.long)
    mask[0, 1, 1] = 1
    target = torch.tensor([[[0.0, 5.0], [0.0, 0.0]]])  # non-zero only at top-right
    pred = torch.tensor([[[2.0, 3.0], [1.0, 0.0]]])
    m = ChangeMetrics()
    m.update(torch.zeros_like(mask), mask, pred, target)
    r = m.compute()
    assert r["rmse"] == pytest.approx(math.sqrt((4 + 4 + 1 + 0) / 4))
    assert r["mae"] == pytest.approx((2 + 2 + 1 + 0) / 4)
    assert r["crmse_3d_nonzero"] == pytest.approx(2.0)  # top-right only: |3-5|
    assert r["crmse_2d_label"] == pytest.approx(2.0)  # top-left only: |2-0|
    target2 = torch.tensor([[[0.0, 6.0], [0.0, 0.0]]])
    m2 = ChangeMetrics()
    m2.update(torch.zeros_like(mask), mask, pred, target2)
    r2 = m2.compute()
    assert r2["crmse_3d_nonzero"] == pytest.approx(3.0)
    assert r2["crmse_2d_label"] == pytest.approx(2.0)
    assert set(KEYS) <= set(r2)


def test_empty_denominators_are_zero():
    m = ChangeMetrics()
    m.update(
        torch.zeros(1, 2, 2, dtype=torch.long),
        torch.zeros(1, 2, 2, dtype=torch.long),
        torch.zeros(1, 1, 1),
        torch.zeros(1, 1, 1),
    )
    r = m.compute()
    assert r["f1"] == 0 and r["precision"] == 0 and r["crmse_3d_nonzero"] == 0 and r["rmse"] == 0


def test_label_to_grid_odd_size():
    mask = torch.zeros(1, 5, 5, dtype=torch.long)
    mask[0, 4, 4] = 1
    g = label_to_grid(mask, (3, 3))
    assert g.shape == (1, 3, 3) and g[0, 2, 2] and g.sum() == 1
