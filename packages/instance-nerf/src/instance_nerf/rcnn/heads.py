"""NeRF-RCNN's RoI heads: box classification/regression on 5³ RoIs and 20³ masks from 10³ RoIs."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from instance_nerf.rcnn.ops import (
    AABBCoder,
    BalancedPositiveNegativeSampler,
    Matcher,
    MultiScaleRoIAlign3D,
    batched_nms_3d,
    box_iou_3d,
    clip_boxes,
    roi_align_3d,
)


class BoxHead3D(nn.Module):
    """flatten(C·5³) → FC → FC → class logits (L) and 6 deltas per class."""

    def __init__(self, ch: int, roi: int, fc: int, num_classes: int):
        super().__init__()
        self.fc = nn.Sequential(
            nn.Flatten(), nn.Linear(ch * roi**3, fc), nn.ReLU(), nn.Linear(fc, fc), nn.ReLU()
        )
        self.cls = nn.Linear(fc, num_classes)
        self.reg = nn.Linear(fc, 6 * num_classes)
        nn.init.normal_(self.cls.weight, std=0.01)
        nn.init.normal_(self.reg.weight, std=0.001)
        nn.init.zeros_(self.cls.bias)
        nn.init.zeros_(self.reg.bias)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        h = self.fc(x)
        return self.cls(h), self.reg(h)


class MaskHead3D(nn.Module):
    """``num_convs`` × (conv 3³ + ReLU) → ConvTranspose ×2 + ReLU → 1×1 → one mask logit map per class."""

    def __init__(self, ch: int, width: int, num_convs: int, num_classes: int):
        super().__init__()
        layers: list[nn.Module] = []
        for i in range(num_convs):
            layers += [nn.Conv3d(ch if i == 0 else width, width, 3, padding=1), nn.ReLU()]
        self.convs = nn.Sequential(*layers)
        self.up = nn.ConvTranspose3d(width, width, 2, 2)
        self.logits = nn.Conv3d(width, num_classes, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.logits(F.relu(self.up(self.convs(x))))


MaskPredictor3D = MaskHead3D


class RoIHeads3D(nn.Module):
    """Sampling, losses and post-processing around :class:`BoxHead3D` and :class:`MaskHead3D`."""

    def __init__(
        self,
        strides: list[int],
        canonical_scale: float,
        ch: int,
        fc: int,
        mask_convs: int,
        mask_ch: int,
        num_classes: int,
        batch_per_scene: int = 512,
        positive_fraction: float = 0.25,
        score_thresh: float = 0.05,
        nms: float = 0.15,
        detections: int = 100,
    ):
        super().__init__()
        self.box_roi = MultiScaleRoIAlign3D(strides, 5, canonical_scale)
        self.mask_roi = MultiScaleRoIAlign3D(strides, 10, canonical_scale)
        self.box_head = BoxHead3D(ch, 5, fc, num_classes)
        self.mask_head = MaskHead3D(ch, mask_ch, mask_convs, num_classes)
        self.matcher = Matcher(0.25, 0.25, allow_low_quality_matches=True)
        self.sampler = BalancedPositiveNegativeSampler(batch_per_scene, positive_fraction)
        self.num_classes = num_classes
        self.score_thresh, self.nms, self.detections = score_thresh, nms, detections

    def _sample(self, proposals: list[Tensor], targets: list[dict]):
        boxes, labels, gt_idx = [], [], []
        for props, t in zip(proposals, targets):
            props = torch.cat([props, t["boxes"]])
            if len(t["boxes"]) == 0:
                match = torch.full((len(props),), -1, dtype=torch.long, device=props.device)
            else:
                match = self.matcher(box_iou_3d(t["boxes"], props))
            lab = torch.where(match >= 0, t["labels"][match.clamp_min(0)], torch.zeros_like(match))
            pos, neg = self.sampler([lab])
            keep = torch.nonzero(pos[0] | neg[0]).flatten()
            boxes.append(props[keep])
            labels.append(lab[keep])
            gt_idx.append(match.clamp_min(0)[keep])
        return boxes, labels, gt_idx

    def forward(
        self, feats: list[Tensor], proposals: list[Tensor], targets: list[dict]
    ) -> dict[str, Tensor]:
        """Training losses (``detect`` is the inference path)."""
        return self.losses(feats, proposals, targets)

    def losses(self, feats, proposals, targets) -> dict[str, Tensor]:
        boxes, labels, gt_idx = self._sample([p.detach() for p in proposals], targets)
        logits, deltas = self.box_head(self.box_roi(feats, boxes))
        lab = torch.cat(labels)
        loss_cls = F.cross_entropy(logits, lab)
        pos = torch.nonzero(lab > 0).flatten()
        ref = torch.cat(boxes)
        gt_boxes = torch.cat(
            [t["boxes"][g] if len(t["boxes"]) else b for t, g, b in zip(targets, gt_idx, boxes)]
        )
        reg_t = AABBCoder.encode(gt_boxes[pos], ref[pos])
        reg_p = deltas.reshape(len(lab), -1, 6)[pos, lab[pos]]
        loss_reg = F.smooth_l1_loss(reg_p, reg_t, beta=1 / 9, reduction="sum") / max(len(lab), 1)
        # masks: positives only, target = the GT mask RoIAligned to 20³
        pos_boxes = [b[lb > 0] for b, lb in zip(boxes, labels)]
        if sum(len(b) for b in pos_boxes) == 0:
            return {"loss_cls": loss_cls, "loss_reg": loss_reg, "loss_mask": logits.sum() * 0}
        mask_logits = self.mask_head(self.mask_roi(feats, pos_boxes))
        targets_m = []
        for t, g, lb, b in zip(targets, gt_idx, labels, boxes):
            sel = lb > 0
            if sel.any():
                rois = torch.cat(
                    [g[sel].to(b.dtype)[:, None], b[sel]], 1
                )  # batch index = GT mask index
                maps = t["masks"].to(b.dtype)[:, None]
                targets_m.append(roi_align_3d(maps, rois, mask_logits.shape[-1])[:, 0])
        tm = torch.cat(targets_m)
        chosen = mask_logits[torch.arange(len(tm)), lab[pos]]
        loss_mask = F.binary_cross_entropy_with_logits(chosen, (tm >= 0.5).to(chosen.dtype))
        return {"loss_cls": loss_cls, "loss_reg": loss_reg, "loss_mask": loss_mask}

    @torch.no_grad()
    def detect(self, feats, proposals, grid_size: tuple[int, int, int]) -> list[dict[str, Tensor]]:
        logits, deltas = self.box_head(self.box_roi(feats, proposals))
        probs = logits.softmax(-1)
        boxes_all = (
            AABBCoder.decode(deltas, torch.cat(proposals))
            if len(logits)
            else deltas.new_zeros((0, 1, 6))
        )
        result, start = [], 0
        for props in proposals:
            n = len(props)
            p, bx = probs[start : start + n, 1:], boxes_all[start : start + n, 1:]
            start += n
            bx = clip_boxes(bx.reshape(-1, 6), grid_size).reshape(n, -1, 6)
            cls = torch.arange(1, self.num_classes, device=p.device).expand(n, -1)
            bx, sc, cl = bx.reshape(-1, 6), p.reshape(-1), cls.reshape(-1)
            ok = (sc > self.score_thresh) & ((bx[:, 3:] - bx[:, :3]) > 1e-2).all(1)
            bx, sc, cl = bx[ok], sc[ok], cl[ok]
            keep = batched_nms_3d(bx, sc, cl, self.nms)[: self.detections]
            result.append({"boxes": bx[keep], "scores": sc[keep], "labels": cl[keep]})
        det_boxes = [r["boxes"] for r in result]
        if sum(len(b) for b in det_boxes):
            ml = self.mask_head(self.mask_roi(feats, det_boxes))
            labels = torch.cat([r["labels"] for r in result])
            mp = torch.sigmoid(ml[torch.arange(len(labels)), labels])
            start = 0
            for r in result:
                r["mask_probs"] = mp[start : start + len(r["boxes"])]
                start += len(r["boxes"])
        else:
            for r in result:
                r["mask_probs"] = feats[0].new_zeros((0, 20, 20, 20))
        return result
