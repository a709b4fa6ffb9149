"""Anchor head whose RPN convs are shared by the baseline and one branch per object group."""

from __future__ import annotations

import torch
from mmdet3d.models.layers import nms_bev
from mmdet3d.registry import MODELS
from mmdet3d.structures import xywhr2xyxyr
from mmengine.structures import InstanceData
from torch import Tensor

from groupexp_da.data.io import GroupExpError
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
        branch_gts: list[list[InstanceData]],
        batch_input_metas: list[dict],
        weight: float = 1.0,
    ) -> dict:
        """``loss_{cls,bbox,dir}_g{i}``: the parent's losses per branch, times ``weight``."""
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
