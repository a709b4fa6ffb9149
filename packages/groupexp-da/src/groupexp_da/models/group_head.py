"""Anchor head whose RPN convs are shared by the baseline and one branch per object group."""

from __future__ import annotations

import torch
from mmdet3d.models.layers import nms_bev
from mmdet3d.registry import MODELS
from mmdet3d.structures import xywhr2xyxyr
from mmengine.runner import amp
from mmengine.structures import InstanceData
from torch import Tensor

from groupexp_da.data.io import GroupExpError
from groupexp_da.models.group_targets import (
    ABSENT,
    OWN,
    branch_anchor_targets,
    fast_targets_apply,
)
from groupexp_da.models.heads import IgnoreAwareAnchor3DHead


def union_nms(
    boxes: Tensor, scores: Tensor, labels: Tensor, group_ids: Tensor, box_type, thr: float
) -> InstanceData:
    """One class-agnostic BEV NMS over all branches' boxes; survivors keep their group id."""
    res = InstanceData()
    if len(boxes):
        bev = box_type(boxes, box_dim=boxes.shape[1]).bev
        keep = nms_bev(xywhr2xyxyr(bev), scores, thr)
        keep = keep[scores[keep].argsort(descending=True)]
    else:
        keep = torch.zeros(0, dtype=torch.long, device=boxes.device)
    res.bboxes_3d = box_type(boxes[keep], box_dim=boxes.shape[1])
    res.scores_3d, res.labels_3d, res.group_ids = scores[keep], labels[keep], group_ids[keep]
    return res


def branch_instances(gt_boxes: list, codes: list[Tensor]) -> list[list[InstanceData]]:
    """Per branch, per sample: the branch's boxes (own group label 0, ignored −1; absent
    boxes left out) from the per-sample (n_groups, K) codes."""
    out = [[] for _ in range(len(codes[0]) if codes else 0)]
    for boxes, code in zip(gt_boxes, codes):
        for i, c in enumerate(code):
            keep = c != ABSENT
            inst = InstanceData()
            inst.bboxes_3d = boxes[keep.to(boxes.device)]
            lab = c[keep]
            inst.labels_3d = torch.where(
                lab == OWN, torch.zeros_like(lab), torch.full_like(lab, -1)
            )
            out[i].append(inst)
    return out


@MODELS.register_module()
class GroupExpAnchor3DHead(IgnoreAwareAnchor3DHead):
    """:class:`IgnoreAwareAnchor3DHead` plus ``n_groups`` group branches.

    Branch i runs the *same* cls/reg/dir convs on ``group_attn(mu_i, F_bev)``. ``forward`` and
    ``predict`` are the parent's, untouched, so inference is the baseline detector's; the
    branches are used by :meth:`loss_groups` (training) and :meth:`predict_union` (pseudo labels).
    """

    def __init__(
        self,
        *args,
        n_groups: int = 3,
        query_dim: int = 512,
        group_attn: dict | None = None,
        **kwargs,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.n_groups = int(n_groups)
        cfg = dict(type="GroupRegionCrossAttention", query_dim=query_dim, channels=self.in_channels)
        cfg.update(group_attn or {})
        self.group_attn = MODELS.build(cfg)

    def forward_groups(self, feats: tuple[Tensor, ...], mu: Tensor) -> list[tuple[Tensor, ...]]:
        """Per group: (cls, reg, dir) maps of the shared RPN on the group-conditioned features."""
        if len(feats) != 1:
            raise GroupExpError(f"GroupExpAnchor3DHead expects one feature level, got {len(feats)}")
        if len(mu) != self.n_groups:
            raise GroupExpError(
                f"model.bbox_head.n_groups={self.n_groups} but {len(mu)} "
                "group prototypes were given"
            )
        g, b = len(mu), feats[0].shape[0]
        maps = self.group_attn.forward_groups(mu, feats[0]).flatten(0, 1)  # (G·B, C, H, W)
        outs = self.forward_single(maps)  # one pass of the shared convs for all groups
        return [tuple(o.unflatten(0, (g, b))[i] for o in outs) for i in range(g)]

    def loss_groups(
        self,
        feats: tuple[Tensor, ...],
        mu: Tensor,
        gt_boxes: list,
        codes: list[Tensor],
        batch_input_metas: list[dict],
        weight: float = 1.0,
    ) -> dict:
        """``loss_{cls,bbox,dir}_g{i}``: the parent's losses per branch, times ``weight``.

        ``gt_boxes``: per sample the GT boxes; ``codes``: per sample (n_groups, K) with
        ``group_targets.OWN`` / ``IGNORE`` / ``ABSENT`` per branch and box. The targets of all
        branches come from one IoU matrix per sample (:mod:`group_targets`); heads whose target
        settings it does not cover take :meth:`loss_groups_reference`, the same losses."""
        if not fast_targets_apply(self) or len(feats) != 1:
            gts = branch_instances(gt_boxes, codes)
            return self.loss_groups_reference(feats, mu, gts, batch_input_metas, weight)
        branches = self.forward_groups(feats, mu)
        cls0 = branches[0][0]
        anchor_list = self.get_anchors([cls0.shape[-2:]], batch_input_metas, device=cls0.device)
        if isinstance(anchor_list[0][0], list):  # per-class anchor sets: the reference path
            gts = branch_instances(gt_boxes, codes)
            return self.loss_groups_reference(feats, mu, gts, batch_input_metas, weight)
        anchors = [torch.cat(a).reshape(-1, self.box_code_size) for a in anchor_list]
        boxes = [(b.tensor if hasattr(b, "tensor") else b).to(cls0.device) for b in gt_boxes]
        targets = branch_anchor_targets(self, anchors, boxes, codes, batch_input_metas)
        out = {}
        with amp.autocast(enabled=False):  # as the parent's loss_by_feat
            for i, ((cls, reg, dirc), t) in enumerate(zip(branches, targets)):
                lc, lb, ld = self._loss_by_feat_single(
                    cls.float(), reg.float(), dirc.float(), *t[:6], num_total_samples=t[6]
                )
                for k, v in (("loss_cls", lc), ("loss_bbox", lb), ("loss_dir", ld)):
                    out[f"{k}_g{i}"] = [v * weight]
        return out

    def loss_groups_reference(
        self,
        feats: tuple[Tensor, ...],
        mu: Tensor,
        branch_gts: list[list[InstanceData]],
        batch_input_metas: list[dict],
        weight: float = 1.0,
    ) -> dict:
        """:meth:`loss_groups` through the parent's ``loss_by_feat`` once per branch (the
        targets assigned per branch; ``branch_gts[i]`` holds branch i's boxes per sample)."""
        out = {}
        for i, (cls, reg, dirc) in enumerate(self.forward_groups(feats, mu)):
            losses = self.loss_by_feat([cls], [reg], [dirc], branch_gts[i], batch_input_metas)
            for k, v in losses.items():
                out[f"{k}_g{i}"] = [t * weight for t in v]
        return out

    def predict_union(
        self,
        feats: tuple[Tensor, ...],
        mu: Tensor,
        batch_input_metas: list[dict],
        nms_thr: float | None = None,
    ) -> list[InstanceData]:
        """Baseline and group detections after one class-agnostic BEV NMS; ``group_ids`` holds
        0 for the baseline and i + 1 for group i."""
        parts = [self.predict_by_feat(*self(feats), batch_input_metas=batch_input_metas)]
        for cls, reg, dirc in self.forward_groups(feats, mu):
            parts.append(
                self.predict_by_feat([cls], [reg], [dirc], batch_input_metas=batch_input_metas)
            )
        thr = float(self.test_cfg.get("nms_thr", 0.01) if nms_thr is None else nms_thr)
        out = []
        for b, meta in enumerate(batch_input_metas):
            items = [p[b] for p in parts]
            boxes = torch.cat([it.bboxes_3d.tensor for it in items])
            scores = torch.cat([it.scores_3d for it in items])
            labels = torch.cat([it.labels_3d for it in items])
            gid = torch.cat([torch.full_like(it.labels_3d, g) for g, it in enumerate(items)])
            out.append(union_nms(boxes, scores, labels, gid, meta["box_type_3d"], thr))
        return out
