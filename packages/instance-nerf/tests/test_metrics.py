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


def test_multiview_pq_sees_swapped_ids():
    from instance_nerf.eval.metrics import pq_multiview

    gt = np.zeros((4, 4), dtype=np.int64)
    gt[:, :2], gt[:, 2:] = 1, 2
    swapped = np.where(gt == 1, 2, 1)
    classes = {0: 0, 1: 1, 2: 1}
    pq, _ = panoptic_quality([gt, gt], [gt, swapped], classes, classes)
    assert pq == 1.0
    assert pq_multiview([gt, gt], [gt, swapped], classes, classes) == 0.0  # IoU 1/3 each
    assert consistency([gt, gt], [gt, swapped]) == 0.0
    assert pq_multiview([gt, gt], [gt, gt], classes, classes) == 1.0
    assert consistency([gt, gt], [gt, gt]) == 1.0


def test_per_view_pred_classes_and_majority():
    from instance_nerf.eval.metrics import majority_classes

    gt = np.array([[1, 1, 0, 0]])
    pr = np.array([[5, 5, 0, 0]])
    gt_c = {0: 0, 1: 2}
    # class 2: 1 TP + 1 FN → 2/3; class 3: 1 FP → 0; mean 1/3
    assert abs(panoptic_quality([gt, gt], [pr, pr], gt_c, [{5: 2}, {5: 3}])[0] - 1 / 3) < 1e-12
    assert majority_classes([pr, np.array([[5, 0, 0, 0]])], [{5: 2}, {5: 3}]) == {0: 0, 5: 2}
