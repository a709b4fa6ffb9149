"""Source+target batch sampler (T13) and the group-aware pseudo-label rule (T12)."""

import numpy as np
import torch
from torch.utils.data import ConcatDataset, TensorDataset

from groupexp_da.data.samplers import DomainBalancedBatchSampler
from groupexp_da.engine.pseudo import (
    PseudoCfg,
    assign_labels_grouped,
    label_quality,
    memory_ensemble,
)


class _Seq:
    def __init__(self, dataset):
        self.dataset, self.epoch, self.seed = dataset, 0, 0

    def set_epoch(self, e):
        self.epoch = e


def _sampler(seed=3):
    ds = ConcatDataset([TensorDataset(torch.zeros(10)), TensorDataset(torch.zeros(6))])
    base = _Seq(ds)
    return base, DomainBalancedBatchSampler(
        base, batch_size=4, source_batch=2, target_batch=2, seed=seed
    )


def test_t13_sampler_balances_domains_and_is_deterministic():
    base, s = _sampler()
    batches = list(s)
    assert len(batches) == len(s) == 3
    for b in batches:
        assert len(b) == 4
        assert sum(i < 10 for i in b) == 2 and sum(i >= 10 for i in b) == 2
    tgt = sorted(i for b in batches for i in b if i >= 10)
    assert tgt == list(range(10, 16))  # every target frame once per epoch
    assert list(_sampler()[1]) == batches  # same (seed, epoch) -> same batches
    base.set_epoch(1)
    assert list(s) != batches


def _boxes(n, x0):
    return np.array([[x0 + 10.0 * k, 0, 0, 4, 1.8, 1.6, 0] for k in range(n)], float)


def test_t12_swap_and_add():
    mem = {
        "boxes": _boxes(7, 0),
        "scores": np.array([0.9, 0.7, 0.55, 0.4, 0.45, 0.35, 0.25]),
        "miss": np.zeros(7, np.int64),
        "group": np.array([0, 0, 0, 0, 1, 2, 1]),
    }
    cfg = PseudoCfg(score_thresh=0.5, group_score_thresh=0.3, neg_thresh=0.2, replace="swap")
    lab = assign_labels_grouped(mem, cfg)
    pos = sorted(lab["scores"][lab["labels"] == 0].tolist())
    ign = sorted(lab["scores"][lab["labels"] == -1].tolist())
    assert pos == [0.35, 0.45, 0.9] and ign == [0.25, 0.4, 0.55, 0.7]
    assert lab["group"][lab["scores"] == 0.45].item() == 1
    lab = assign_labels_grouped(
        mem, PseudoCfg(score_thresh=0.5, group_score_thresh=0.3, neg_thresh=0.2, replace="add")
    )
    assert sorted(lab["scores"][lab["labels"] == 0].tolist()) == [0.35, 0.45, 0.55, 0.7, 0.9]
    # more group positives than baseline positives: every baseline positive becomes ignore
    few = {
        "boxes": _boxes(3, 0),
        "scores": np.array([0.9, 0.4, 0.35]),
        "miss": np.zeros(3, np.int64),
        "group": np.array([0, 1, 2]),
    }
    lab = assign_labels_grouped(few, cfg)
    assert lab["labels"].tolist() == [-1, 0, 0]


def test_t12_union_nms_keeps_the_group_id_of_the_winner():
    from mmdet3d.structures import LiDARInstance3DBoxes

    from groupexp_da.models.group_head import union_nms

    boxes = torch.tensor(
        [[10.0, 0, 0, 4, 1.8, 1.6, 0], [10.2, 0.1, 0, 4, 1.8, 1.6, 0], [30.0, 5, 0, 4, 1.8, 1.6, 0]]
    )
    res = union_nms(
        boxes,
        torch.tensor([0.6, 0.8, 0.7]),
        torch.zeros(3, dtype=torch.long),
        torch.tensor([0, 2, 0]),
        LiDARInstance3DBoxes,
        0.1,
    )
    assert res.scores_3d.tolist() == [0.800000011920929, 0.699999988079071]
    assert res.group_ids.tolist() == [2, 0]


def test_memory_ensemble_carries_groups_and_label_quality():
    cfg = PseudoCfg()
    old = {
        "boxes": _boxes(2, 0),
        "scores": np.array([0.8, 0.5]),
        "miss": np.zeros(2, np.int64),
        "group": np.array([1, 0]),
    }
    new = {"boxes": _boxes(1, 0), "scores": np.array([0.9]), "group": np.array([0])}
    mem = memory_ensemble(old, new, cfg)
    assert mem["group"].tolist() == [0, 0] and mem["miss"].tolist() == [0, 1]
    lab = {"boxes": _boxes(2, 0), "scores": np.array([0.9, 0.8]), "labels": np.array([0, 0])}
    q = label_quality([_boxes(3, 0)], [lab], 0.7)
    assert (q["tp"], q["precision"], q["recall"]) == (2, 1.0, round(2 / 3, 4))
