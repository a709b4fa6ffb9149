"""mIoU, PQ and consistency on hand-made masks."""

from __future__ import annotations

import numpy as np
import pytest

from instance_nerf.eval.metrics import consistency, mean_iou, panoptic_quality, to_semantic


def test_miou_hand_example():
    gt = np.array([[0, 0, 1, 1, -1]])
    pr = np.array([[0, 1, 1, 1, 0]])  # last pixel ignored
    miou, per = mean_iou([gt], [pr])
    assert per[0] == pytest.approx(1 / 2) and per[1] == pytest.approx(2 / 3)
    assert miou == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert mean_iou([gt], [np.where(gt < 0, 0, gt)])[0] == 1.0


def test_to_semantic():
    ids = np.array([[0, 1, 2, -1]])
    assert to_semantic(ids, {0: 0, 1: 3, 2: 3}).tolist() == [[0, 3, 3, -1]]


def test_pq_hand_example():
    gt = np.zeros((4, 4), int)
    gt[0:2, 0:2] = 1  # 4 px, class 1
    pr = np.zeros((4, 4), int)
    pr[0:2, 0:2] = 1
    pr[2, 0] = 1  # 5 px, IoU 4/5
    pr[3, 3] = 2  # false positive, class 1
    classes = {0: 0, 1: 1, 2: 1}
    pq, per = panoptic_quality([gt], [pr], classes, classes)
    assert per[1] == pytest.approx(0.8 / (1 + 0.5 * 1 + 0.5 * 0))
    assert pq == pytest.approx(per[1])
    # perfect prediction with a different id numbering is still PQ 1
    assert panoptic_quality([gt], [gt * 7], classes, {0: 0, 7: 1})[0] == 1.0
    # IoU <= 0.5 is no match: one FN and one FP
    half = np.zeros((4, 4), int)
    half[0, 0:2] = 1
    assert panoptic_quality([gt], [half], classes, classes)[0] == 0.0


def test_consistency_hand_example():
    a_gt = np.array([[1, 1, 2, 2]])
    b_gt = np.array([[1, 1, 2, 2]])
    a_pr = np.array([[1, 1, 2, 2]])
    b_pr = np.array([[1, 1, 3, 3]])  # object 2 changes id between views
    assert consistency([a_gt, b_gt], [a_pr, b_pr], min_pixels=1) == 0.5
    assert consistency([a_gt, b_gt], [a_pr, a_pr], min_pixels=1) == 1.0
    assert (
        consistency([a_gt], [np.zeros_like(a_gt)], min_pixels=1) == 0.0
    )  # background is never consistent
