"""FCOS3D: anchor-free AABB proposals (classification, 6 distances, centerness) shared over FPN levels."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.ops import sigmoid_focal_loss

from instance_nerf.rcnn.ops import batched_nms_3d, box_iou_3d, clip_boxes


def _gn(ch: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(32, max(1, ch // 4)), ch)


class FCOS3DHead(nn.Module):
    """Towers of ``num_convs`` × (conv 3³ + GroupNorm + ReLU); 1 logit, 6 distances, centerness per location."""

    def __init__(self, ch: int, num_levels: int, num_convs: int = 4):
        super().__init__()

        def tower() -> nn.Sequential:
            return nn.Sequential(
                *[
                    m
                    for _ in range(num_convs)
                    for m in (nn.Conv3d(ch, ch, 3, padding=1), _gn(ch), nn.ReLU())
                ]
            )

        self.cls_tower, self.box_tower = tower(), tower()
        self.cls = nn.Conv3d(ch, 1, 3, padding=1)
        self.box = nn.Conv3d(ch, 6, 3, padding=1)
        self.ctr = nn.Conv3d(ch, 1, 3, padding=1)
        self.scales = nn.Parameter(torch.ones(num_levels))
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.normal_(m.weight, std=0.01)
                nn.init.zeros_(m.bias)
        nn.init.constant_(self.cls.bias, -math.log(99.0))

    def forward(self, feats: list[Tensor]) -> tuple[list[Tensor], list[Tensor], list[Tensor]]:
        """Per level: logits (N,1,…), distances in stride units (N,6,…) ≥ 0, centerness logits (N,1,…)."""
        cls, box, ctr = [], [], []
        for i, f in enumerate(feats):
            c, b = self.cls_tower(f), self.box_tower(f)
            cls.append(self.cls(c))
            box.append(F.relu(self.box(b) * self.scales[i]))
            ctr.append(self.ctr(b))
        return cls, box, ctr


def locations(shape: tuple[int, ...], stride: int, device=None) -> Tensor:
    """Voxel-unit centres ``stride//2 + k·stride`` of a level's locations, (W·L·H, 3)."""
    axes = [
        torch.arange(n, device=device, dtype=torch.float32) * stride + stride // 2 for n in shape
    ]
    return torch.stack(torch.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)


def level_ranges(stride0: int, num_levels: int) -> list[tuple[float, float]]:
    """Max-distance ranges per level: boundaries 4·s₀·{1, 2, 4} (e.g. [−1,16], [16,32], [32,64], [64,∞))."""
    edges = [-1.0] + [4.0 * stride0 * 2**i for i in range(num_levels - 1)] + [math.inf]
    return list(zip(edges[:-1], edges[1:]))


def fcos_targets(
    shapes: list[tuple[int, ...]], strides: list[int], gt_boxes: Tensor, radius: float = 1.5
) -> tuple[Tensor, Tensor, Tensor]:
    """Concatenated over levels: positive mask (P,), distance targets / stride (P, 6), centerness* (P,)."""
    ranges = level_ranges(strides[0], len(strides))
    pos_all, reg_all, ctr_all = [], [], []
    for shape, s, (lo, hi) in zip(shapes, strides, ranges):
        loc = locations(shape, s, gt_boxes.device)
        if len(gt_boxes) == 0:
            pos_all.append(torch.zeros(len(loc), dtype=torch.bool, device=loc.device))
            reg_all.append(loc.new_zeros((len(loc), 6)))
            ctr_all.append(loc.new_zeros(len(loc)))
            continue
        d = torch.cat(
            [loc[:, None] - gt_boxes[None, :, :3], gt_boxes[None, :, 3:] - loc[:, None]], -1
        )  # (P,G,6)
        inside = d.min(-1).values > 0
        centre = (gt_boxes[:, :3] + gt_boxes[:, 3:]) / 2
        r = radius * s
        c_lo = torch.maximum(centre - r, gt_boxes[:, :3])
        c_hi = torch.minimum(centre + r, gt_boxes[:, 3:])
        in_centre = ((loc[:, None] > c_lo[None]) & (loc[:, None] < c_hi[None])).all(-1)
        mx = d.max(-1).values
        ok = inside & in_centre & (mx >= lo) & (mx <= hi)
        vol = ((gt_boxes[:, 3:] - gt_boxes[:, :3]).prod(-1))[None].expand_as(mx)
        vol = torch.where(ok, vol, torch.full_like(vol, math.inf))
        best = vol.argmin(1)  # ties go to the smallest GT
        pos = ok.any(1)
        reg = d[torch.arange(len(loc)), best] / s
        mins = torch.minimum(reg[:, :3], reg[:, 3:])
        maxs = torch.maximum(reg[:, :3], reg[:, 3:]).clamp_min(1e-9)
        ctr = torch.sqrt((mins / maxs).clamp_min(0).prod(-1))
        pos_all.append(pos)
        reg_all.append(reg)
        ctr_all.append(torch.where(pos, ctr, torch.zeros_like(ctr)))
    return torch.cat(pos_all), torch.cat(reg_all), torch.cat(ctr_all)


def _flat(maps: list[Tensor], b: int, c: int) -> Tensor:
    return torch.cat([m[b].reshape(c, -1).T for m in maps])


def _iou_loss(pred: Tensor, target: Tensor) -> Tensor:
    """−log((I+1)/(U+1)) for distance boxes around the same location."""
    p_vol = (pred[:, :3] + pred[:, 3:]).prod(-1)
    t_vol = (target[:, :3] + target[:, 3:]).prod(-1)
    inter = (
        torch.minimum(pred[:, :3], target[:, :3]) + torch.minimum(pred[:, 3:], target[:, 3:])
    ).prod(-1)
    union = p_vol + t_vol - inter
    return -torch.log((inter + 1) / (union + 1))


def fcos_loss(outputs, strides: list[int], gt_boxes: list[Tensor]) -> dict[str, Tensor]:
    """Focal classification, centerness-weighted IoU and centerness BCE losses, summed over the batch."""
    cls, box, ctr = outputs
    shapes = [tuple(c.shape[2:]) for c in cls]
    totals = {"loss_fcos_cls": 0.0, "loss_fcos_iou": 0.0, "loss_fcos_ctr": 0.0}
    n_pos, ctr_sum = 0.0, 0.0
    per = []
    for b, gt in enumerate(gt_boxes):
        pos, reg, ctr_t = fcos_targets(shapes, strides, gt)
        per.append(
            (pos, reg, ctr_t, _flat(cls, b, 1)[:, 0], _flat(box, b, 6), _flat(ctr, b, 1)[:, 0])
        )
        n_pos += float(pos.sum())
        ctr_sum += float(ctr_t[pos].sum())
    n_pos, ctr_sum = max(n_pos, 1.0), max(ctr_sum, 1e-6)
    for pos, reg, ctr_t, c_log, b_pred, c_pred in per:
        totals["loss_fcos_cls"] = (
            totals["loss_fcos_cls"]
            + sigmoid_focal_loss(c_log, pos.float(), 0.25, 2.0, "sum") / n_pos
        )
        if pos.any():
            w = ctr_t[pos]
            totals["loss_fcos_iou"] = (
                totals["loss_fcos_iou"] + (_iou_loss(b_pred[pos], reg[pos]) * w).sum() / ctr_sum
            )
            totals["loss_fcos_ctr"] = (
                totals["loss_fcos_ctr"]
                + F.binary_cross_entropy_with_logits(c_pred[pos], w, reduction="sum") / n_pos
            )
    zero = cls[0].sum() * 0
    return {k: (v if torch.is_tensor(v) else zero) for k, v in totals.items()}


@torch.no_grad()
def fcos_postprocess(
    outputs,
    strides: list[int],
    grid_size: tuple[int, int, int],
    pre_nms: int = 2500,
    nms: float = 0.3,
    post_nms: int = 2500,
) -> list[tuple[Tensor, Tensor]]:
    """Per scene: proposal boxes (P, 6) in voxels and scores σ(cls)·σ(ctr), after NMS."""
    cls, box, ctr = outputs
    result = []
    for b in range(cls[0].shape[0]):
        boxes, scores = [], []
        for c, d, t, s in zip(cls, box, ctr, strides):
            loc = locations(tuple(c.shape[2:]), s, c.device)
            dist = d[b].reshape(6, -1).T * s
            boxes.append(torch.cat([loc - dist[:, :3], loc + dist[:, 3:]], 1))
            scores.append(torch.sigmoid(c[b].reshape(-1)) * torch.sigmoid(t[b].reshape(-1)))
        boxes, scores = clip_boxes(torch.cat(boxes), grid_size), torch.cat(scores)
        top = scores.topk(min(pre_nms, len(scores))).indices
        boxes, scores = boxes[top], scores[top]
        ok = ((boxes[:, 3:] - boxes[:, :3]) > 1e-2).all(1)
        boxes, scores = boxes[ok], scores[ok]
        keep = batched_nms_3d(boxes, scores, torch.zeros_like(scores), nms)[:post_nms]
        result.append((boxes[keep], scores[keep]))
    return result


__all__ = [
    "FCOS3DHead",
    "box_iou_3d",
    "fcos_loss",
    "fcos_postprocess",
    "fcos_targets",
    "level_ranges",
    "locations",
]
