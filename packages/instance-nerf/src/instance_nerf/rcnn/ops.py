"""3D box and RoI operations in plain torch (voxel i spans [i, i+1]; boxes are [x1, y1, z1, x2, y2, z2])."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models.detection._utils import BalancedPositiveNegativeSampler, Matcher

__all__ = [
    "AABBCoder",
    "BalancedPositiveNegativeSampler",
    "LevelMapper",
    "Matcher",
    "MultiScaleRoIAlign3D",
    "batched_nms_3d",
    "box_iou_3d",
    "clip_boxes",
    "nms_3d",
    "paste_masks_3d",
    "roi_align_3d",
]


def _sample_grid(boxes: Tensor, out: tuple[int, int, int], ratio: int) -> Tensor:
    """(R, m·s, m·s, m·s, 3) sample positions (x, y, z) at the centres of s³ sub-bins of every bin."""
    axes = []
    for d in range(3):
        m = out[d]
        lo, hi = boxes[:, d], boxes[:, d + 3]
        frac = (torch.arange(m * ratio, device=boxes.device, dtype=boxes.dtype) + 0.5) / (m * ratio)
        axes.append(lo[:, None] + (hi - lo)[:, None] * frac[None])  # (R, m·s)
    gx, gy, gz = axes
    r = len(boxes)
    return torch.stack(
        torch.broadcast_tensors(gx[:, :, None, None], gy[:, None, :, None], gz[:, None, None, :]),
        -1,
    ).reshape(r, out[0] * ratio, out[1] * ratio, out[2] * ratio, 3)


def roi_align_3d(
    feat: Tensor,
    rois: Tensor,
    out: tuple[int, int, int] | int,
    spatial_scale: float = 1.0,
    sampling_ratio: int = 2,
) -> Tensor:
    """3D RoIAlign with torchvision's ``aligned=True`` semantics.

    ``feat`` (N, C, W, L, H), ``rois`` (R, 7) = [batch, x1, y1, z1, x2, y2, z2] in input units (scaled by
    ``spatial_scale`` to feature voxels). Each output bin averages ``sampling_ratio``³ trilinear samples at
    sub-bin centres; samples more than one voxel outside the map read 0. Returns (R, C, m, m, m).
    """
    out = (out, out, out) if isinstance(out, int) else tuple(out)
    n, c = feat.shape[:2]
    size = torch.tensor(feat.shape[2:], dtype=feat.dtype, device=feat.device)
    result = feat.new_zeros((len(rois), c, *out))
    s = sampling_ratio
    for b in range(n):
        sel = torch.nonzero(rois[:, 0] == b).flatten()
        if len(sel) == 0:
            continue
        pts = _sample_grid(rois[sel, 1:].to(feat.dtype) * spatial_scale, out, s)  # (R, A, B, C, 3)
        norm = 2 * pts / size - 1  # align_corners=False: voxel edges map to ±1
        grid = norm.flip(-1).reshape(
            1, -1, *pts.shape[2:4], 3
        )  # grid_sample's last axis is (z, y, x)
        val = F.grid_sample(
            feat[b : b + 1], grid, mode="bilinear", padding_mode="border", align_corners=False
        )
        val = val.reshape(c, len(sel), *pts.shape[1:4])
        outside = ((pts < -0.5) | (pts > size - 0.5 + 1.0)).any(
            -1
        )  # index coordinate < −1 or > size
        val = val.masked_fill(outside[None], 0.0)
        val = val.reshape(c, len(sel), out[0], s, out[1], s, out[2], s).mean((3, 5, 7))
        result[sel] = val.permute(1, 0, 2, 3, 4)
    return result


class LevelMapper:
    """FPN level per RoI: ``floor(canonical_level + log2(∛volume / canonical_scale))`` clamped to the levels."""

    def __init__(self, k_min: int, k_max: int, canonical_scale: float, canonical_level: int = 4):
        self.k_min, self.k_max = k_min, k_max
        self.s0, self.lvl0 = canonical_scale, canonical_level

    def __call__(self, boxes: Tensor) -> Tensor:
        side = ((boxes[:, 3:] - boxes[:, :3]).clamp_min(1e-6).prod(1)) ** (1 / 3)
        k = torch.floor(self.lvl0 + torch.log2(side / self.s0) + 1e-6)
        return (k.clamp(self.k_min, self.k_max) - self.k_min).long()


class MultiScaleRoIAlign3D(nn.Module):
    """RoIAlign on the FPN level each RoI maps to."""

    def __init__(
        self, strides: list[int], out: int, canonical_scale: float, sampling_ratio: int = 2
    ):
        super().__init__()
        self.strides, self.out, self.ratio = strides, out, sampling_ratio
        k = [int(round(math.log2(s))) for s in strides]
        self.mapper = LevelMapper(k[0], k[-1], canonical_scale)

    def forward(self, feats: list[Tensor], boxes: list[Tensor]) -> Tensor:
        rois = (
            torch.cat([torch.cat([b.new_full((len(b), 1), i), b], 1) for i, b in enumerate(boxes)])
            if boxes
            else feats[0].new_zeros((0, 7))
        )
        c = feats[0].shape[1]
        result = feats[0].new_zeros((len(rois), c, self.out, self.out, self.out))
        if len(rois) == 0:
            return result
        levels = self.mapper(rois[:, 1:])
        for lvl, (f, s) in enumerate(zip(feats, self.strides)):
            sel = torch.nonzero(levels == lvl).flatten()
            if len(sel):
                result[sel] = roi_align_3d(f, rois[sel], self.out, 1.0 / s, self.ratio)
        return result


def box_volume(b: Tensor) -> Tensor:
    return (b[:, 3:] - b[:, :3]).clamp_min(0).prod(1)


def box_iou_3d(a: Tensor, b: Tensor) -> Tensor:
    """(N, M) IoU of axis-aligned 3D boxes."""
    lo = torch.maximum(a[:, None, :3], b[None, :, :3])
    hi = torch.minimum(a[:, None, 3:], b[None, :, 3:])
    inter = (hi - lo).clamp_min(0).prod(-1)
    return inter / (box_volume(a)[:, None] + box_volume(b)[None] - inter).clamp_min(1e-12)


def nms_3d(boxes: Tensor, scores: Tensor, thresh: float) -> Tensor:
    """Greedy NMS; indices of kept boxes by falling score.

    The IoU matrix is computed on the boxes' device and copied to the host once; the greedy loop runs in
    numpy (a per-box loop on the GPU would synchronise once per box).
    """
    order = scores.argsort(descending=True)
    iou = (box_iou_3d(boxes[order], boxes[order]) > thresh).cpu().numpy()
    alive = np.ones(len(order), dtype=bool)
    keep = []
    for i in range(len(order)):
        if alive[i]:
            keep.append(i)
            alive &= ~iou[i]
    return order[torch.as_tensor(keep, dtype=torch.long, device=boxes.device)]


def batched_nms_3d(boxes: Tensor, scores: Tensor, idxs: Tensor, thresh: float) -> Tensor:
    """NMS within each ``idxs`` group (boxes of different groups are shifted apart)."""
    if len(boxes) == 0:
        return torch.zeros(0, dtype=torch.long, device=boxes.device)
    offset = idxs.to(boxes) * (boxes.max() + 1)
    return nms_3d(boxes + offset[:, None], scores, thresh)


def clip_boxes(boxes: Tensor, size: tuple[int, int, int]) -> Tensor:
    """Clip boxes to the grid [0, size]."""
    hi = torch.tensor(size, dtype=boxes.dtype, device=boxes.device).repeat(2)
    return torch.minimum(boxes.clamp_min(0), hi)


class AABBCoder:
    """Box deltas of the paper's eq. 15 (unit weights): centre offsets / size, log size ratios."""

    clip = math.log(2000.0)

    @staticmethod
    def encode(gt: Tensor, ref: Tensor) -> Tensor:
        rs, gs = ref[:, 3:] - ref[:, :3], gt[:, 3:] - gt[:, :3]
        rc, gc = ref[:, :3] + rs / 2, gt[:, :3] + gs / 2
        return torch.cat([(gc - rc) / rs, torch.log(gs / rs)], 1)

    @classmethod
    def decode(cls, deltas: Tensor, ref: Tensor) -> Tensor:
        rs = ref[:, 3:] - ref[:, :3]
        rc = ref[:, :3] + rs / 2
        deltas = deltas.reshape(len(ref), -1, 6)
        c = rc[:, None] + deltas[..., :3] * rs[:, None]
        s = rs[:, None] * torch.exp(deltas[..., 3:].clamp(max=cls.clip))
        return torch.cat([c - s / 2, c + s / 2], -1)


def paste_masks_3d(masks: Tensor, boxes: Tensor, size: tuple[int, int, int]) -> Tensor:
    """Paste (K, m, m, m) mask probabilities into (K, W, L, H) grids by trilinear sampling inside each box."""
    k = len(masks)
    out = masks.new_zeros((k, *size))
    axes = [torch.arange(n, device=masks.device, dtype=masks.dtype) + 0.5 for n in size]
    for i in range(k):
        lo, hi = boxes[i, :3], boxes[i, 3:]
        sl = [
            slice(int(max(0, math.floor(float(lo[d])))), int(min(size[d], math.ceil(float(hi[d])))))
            for d in range(3)
        ]
        if any(s.stop <= s.start for s in sl):
            continue
        g = [2 * (axes[d][sl[d]] - lo[d]) / (hi[d] - lo[d]).clamp_min(1e-6) - 1 for d in range(3)]
        gx, gy, gz = torch.meshgrid(*g, indexing="ij")
        grid = torch.stack([gz, gy, gx], -1)[None]
        val = F.grid_sample(
            masks[i][None, None], grid, mode="bilinear", padding_mode="zeros", align_corners=False
        )
        inside = (gx.abs() <= 1) & (gy.abs() <= 1) & (gz.abs() <= 1)
        out[i][sl[0], sl[1], sl[2]] = val[0, 0] * inside
    return out
