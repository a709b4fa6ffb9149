"""Anchor targets of all group branches at once (training only).

The values are those of :meth:`IgnoreAwareAnchor3DHead.anchor_target_3d` run once per branch
on that branch's boxes (own-group cars positive, -1 boxes ignored, other cars absent), with
mmdet's max-IoU assignment and pseudo sampler. The difference is speed: the anchor-to-box IoU is
computed once per sample (a branch only selects rows of it), and the assignment, ignore masks and
box encoding run for all branches together, so the number of small ops and device syncs no
longer grows with n_g.
"""

from __future__ import annotations

import torch
from mmdet3d.models.dense_heads.train_mixins import get_direction_target
from torch import Tensor

OWN, IGNORE, ABSENT = 0, -1, -2  # per (branch, box) codes


def fast_targets_apply(head) -> bool:
    """True when the head's target settings are those this module reproduces: one max-IoU
    assigner (no ignore IoF, no CPU fallback, scalar negative threshold) and the pseudo
    sampler."""
    a = head.bbox_assigner
    return (
        not isinstance(a, list | tuple)
        and hasattr(a, "assign_wrt_overlaps")
        and float(getattr(a, "ignore_iof_thr", -1)) <= 0
        and float(getattr(a, "gpu_assign_thr", -1)) <= 0
        and isinstance(a.neg_iou_thr, float)
        and type(head.bbox_sampler).__name__ == "PseudoSampler"
    )


def _assign(assigner, overlaps: Tensor, own: Tensor) -> Tensor:
    """Max-IoU assignment of every branch: ``overlaps`` (K, N), ``own`` (G, K) → (G, N) box
    index + 1, 0 negative, −1 neither (mmdet's ``assign_wrt_overlaps`` on each branch's rows)."""
    g, k = own.shape
    n = overlaps.shape[1]
    ov = torch.where(own[:, :, None], overlaps[None], overlaps.new_tensor(-1.0))  # (G, K, N)
    max_ov, argmax_ov = ov.max(dim=1)  # (G, N)
    asg = torch.full((g, n), -1, dtype=torch.long, device=overlaps.device)
    asg[(max_ov >= 0) & (max_ov < assigner.neg_iou_thr)] = 0
    asg = torch.where(max_ov >= assigner.pos_iou_thr, argmax_ov + 1, asg)
    if assigner.match_low_quality:
        gt_max, gt_arg = ov.max(dim=2)  # (G, K)
        ok = own & (gt_max >= assigner.min_pos_iou)
        if assigner.gt_max_assign_all:
            hit = ov == gt_max[:, :, None]
        else:
            hit = torch.zeros_like(ov, dtype=torch.bool).scatter_(2, gt_arg[:, :, None], True)
        hit = hit & ok[:, :, None]
        # mmdet loops over the boxes in order, so the last box that hits an anchor wins
        rank = torch.arange(1, k + 1, device=overlaps.device)[None, :, None]
        last = (hit * rank).amax(dim=1)  # (G, N), 0 = no hit
        asg = torch.where(last > 0, last, asg)
    return torch.where(own.any(1)[:, None], asg, torch.zeros_like(asg))  # no box: all negative


def branch_anchor_targets(head, anchors: list[Tensor], gt_boxes: list[Tensor], codes, metas):
    """Per branch ``(labels, label_weights, bbox_targets, bbox_weights, dir_targets,
    dir_weights, num_total_samples)``, each target (B, N[, 7]) as ``anchor_target_3d`` stacks
    them for one feature level.

    ``anchors``: per sample (N, 7); ``gt_boxes``: per sample (K, D) box tensors; ``codes``: per
    sample (G, K) of :data:`OWN` / :data:`IGNORE` / :data:`ABSENT`.
    """
    a = head.bbox_assigner
    neg_thr = float(a.neg_iou_thr)
    pos_w = head.train_cfg.pos_weight if head.train_cfg.pos_weight > 0 else 1.0
    asg_all, lw_all, neg_all, domain_w = [], [], [], []
    for anc, boxes, code, meta in zip(anchors, gt_boxes, codes, metas):
        g, n = code.shape[0], anc.shape[0]
        if boxes.shape[0]:
            overlaps = a.iou_calculator(boxes, anc)  # (K, N), once for all branches
            asg = _assign(a, overlaps, code == OWN)
            ign = code == IGNORE
            ign_ov = torch.where(ign[:, :, None], overlaps[None], overlaps.new_tensor(-1.0))
            masked = (ign_ov.amax(dim=1) >= neg_thr) & (asg <= 0)  # IgnoreAwareAnchor3DHead
        else:
            asg = torch.zeros((g, n), dtype=torch.long, device=anc.device)
            masked = torch.zeros((g, n), dtype=torch.bool, device=anc.device)
        neg = (asg == 0) & ~masked
        lw = torch.where(asg > 0, anc.new_tensor(pos_w), anc.new_zeros(()))
        lw = torch.where(neg, anc.new_ones(()), lw)
        asg_all.append(asg)
        neg_all.append(neg)
        lw_all.append(lw)
        domain_w.append(head.domain_loss_weights.get(meta.get("domain"), (1.0, 1.0, 1.0)))
    asg = torch.stack(asg_all, 1)  # (G, B, N)
    label_w = torch.stack(lw_all, 1)
    anc = torch.stack(anchors)  # (B, N, 7)
    g, b, n = asg.shape
    pos = asg > 0
    labels = torch.where(pos, 0, head.num_classes)  # a branch's boxes are all label 0
    bbox_t = anc.new_zeros((g, b, n, anc.shape[-1]))
    dir_t = torch.zeros((g, b, n), dtype=torch.long, device=anc.device)
    gi, bi, ni = torch.nonzero(pos, as_tuple=True)
    if len(gi):
        kmax = max(x.shape[0] for x in gt_boxes)
        padded = anc.new_zeros((b, kmax, gt_boxes[0].shape[-1]))
        for s, boxes in enumerate(gt_boxes):
            padded[s, : boxes.shape[0]] = boxes
        pos_anc = anc[bi, ni]
        enc = head.bbox_coder.encode(pos_anc, padded[bi, asg[gi, bi, ni] - 1])
        bbox_t[gi, bi, ni] = enc
        dir_t[gi, bi, ni] = get_direction_target(
            pos_anc, enc, head.dir_offset, head.dir_limit_offset, one_hot=False
        )
    bbox_w = pos[..., None].expand_as(bbox_t).to(anc.dtype)
    dir_w = pos.to(anc.dtype)
    if any(w != (1.0, 1.0, 1.0) for w in domain_w):
        w = anc.new_tensor(domain_w)  # (B, 3): cls, bbox, dir
        label_w = label_w * w[None, :, 0, None]
        bbox_w = bbox_w * w[None, :, 1, None, None]
        dir_w = dir_w * w[None, :, 2, None]
    # anchor_target_3d's normaliser: per sample max(count, 1), summed (one sync for all)
    n_pos = pos.sum(2).clamp(min=1).sum(1)
    n_total = n_pos
    if head.sampling:
        n_total = n_pos + torch.stack(neg_all, 1).sum(2).clamp(min=1).sum(1)
    n_total = n_total.tolist()
    return [
        (labels[i], label_w[i], bbox_t[i], bbox_w[i], dir_t[i], dir_w[i], n_total[i])
        for i in range(g)
    ]
