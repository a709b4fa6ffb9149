"""ST3D pseudo-label logic: thresholds, memory ensemble and voting."""

import numpy as np

from groupexp_da.engine.pseudo import PseudoCfg, assign_labels, empty_labels, memory_ensemble


def _box(x, y=0.0):
    return [x, y, -1.7, 3.9, 1.6, 1.5, 0.0]


def test_thresholds_split_positive_ignore_drop():
    cfg = PseudoCfg(score_thresh=0.6, neg_thresh=0.2)
    mem = memory_ensemble(
        empty_labels(),
        {"boxes": np.array([_box(5), _box(15), _box(25)]), "scores": np.array([0.9, 0.4, 0.1])},
        cfg,
    )
    lab = assign_labels(mem, cfg)
    assert lab["labels"].tolist() == [0, -1]
    assert lab["scores"].tolist() == [0.9, 0.4]


def test_ensemble_keeps_higher_score_and_votes():
    cfg = PseudoCfg(ensemble_iou=0.1, ignore_after=2, remove_after=3)
    old = {
        "boxes": np.array([_box(5), _box(15)]),
        "scores": np.array([0.7, 0.8]),
        "miss": np.array([0, 0]),
    }
    moved = _box(5.3)
    new = {"boxes": np.array([moved, _box(40)]), "scores": np.array([0.9, 0.65])}
    m1 = memory_ensemble(old, new, cfg)
    # matched box: new one wins (0.9 > 0.7); old box at x=15 missed once; x=40 added
    order = np.argsort(m1["boxes"][:, 0])
    np.testing.assert_allclose(m1["boxes"][order, 0], [5.3, 15, 40])
    np.testing.assert_allclose(m1["scores"][order], [0.9, 0.8, 0.65])
    assert m1["miss"][order].tolist() == [0, 1, 0]
    # lower-scoring new detection does not replace the memory box
    m2 = memory_ensemble(m1, {"boxes": np.array([_box(5.1)]), "scores": np.array([0.5])}, cfg)
    i = np.argmin(np.abs(m2["boxes"][:, 0] - 5.2))
    assert m2["boxes"][i, 0] == 5.3 and m2["scores"][i] == 0.9
    # x=15 now missed twice -> ignored even though its score is 0.8
    lab = assign_labels(m2, cfg)
    j = np.argmin(np.abs(lab["boxes"][:, 0] - 15))
    assert lab["miss"][j] == 2 and lab["labels"][j] == -1
    # third miss -> removed
    m3 = memory_ensemble(m2, {"boxes": np.array([_box(5.3)]), "scores": np.array([0.95])}, cfg)
    assert not np.any(np.abs(m3["boxes"][:, 0] - 15) < 1)
