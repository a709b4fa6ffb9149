"""Anchor head that treats GT label -1 (ST3D's ignore band) as "no loss here", with optional
per-domain loss weights."""

from __future__ import annotations

from mmdet3d.models.dense_heads import Anchor3DHead
from mmdet3d.registry import MODELS
from mmengine.structures import InstanceData

from groupexp_da.data.io import GroupExpError


def _neg_thr(assigner) -> float:
    if isinstance(assigner, list | tuple):
        return min(float(a.neg_iou_thr) for a in assigner)
    return float(assigner.neg_iou_thr)


def _iou_calc(assigner):
    return (
        assigner[0].iou_calculator
        if isinstance(assigner, list | tuple)
        else assigner.iou_calculator
    )


@MODELS.register_module()
class IgnoreAwareAnchor3DHead(Anchor3DHead):
    """:class:`Anchor3DHead` where GT boxes labelled -1 contribute no loss.

    A -1 box produces no positive target and masks the classification weight of
    every anchor whose IoU with it reaches the assigner's ``neg_iou_thr`` (the
    anchors that would have been positive or undecided had it been a real car),
    unless the anchor is positive for a real GT. Anchors far from it stay
    ordinary negatives, like in ST3D.

    ``domain_loss_weights`` (e.g. ``dict(source=(0.0, 1.0, 1.0))``) scales the
    classification, box and direction weights of every anchor of a sample whose meta
    ``domain`` is a key (``SetDomain`` tags the frames in self-training); the loss
    normaliser (positives of the whole batch) is unchanged. ``(0, 1, 1)`` is the authors'
    ``SRC.SEP_LOSS_WEIGHTS: [0, 1, 0]``: source frames train box regression only (their box
    loss includes the direction term; the third entry there is the IoU head, absent here).
    """

    def __init__(self, *args, domain_loss_weights: dict | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.domain_loss_weights = {}
        for dom, w in (domain_loss_weights or {}).items():
            if len(w) != 3 or min(float(v) for v in w) < 0:
                raise GroupExpError(
                    f"model.bbox_head.domain_loss_weights.{dom} must be three weights >= 0 "
                    f"(cls, bbox, dir), got {w!r}"
                )
            self.domain_loss_weights[dom] = tuple(float(v) for v in w)

    def anchor_target_3d_single(
        self,
        anchors,
        gt_instance_3d,
        gt_instance_ignore,
        input_meta,
        label_channels=1,
        num_classes=1,
        sampling=True,
    ):
        labels = gt_instance_3d.labels_3d
        ign = labels < 0
        has_ign = bool(ign.any())
        keep = gt_instance_3d
        if has_ign:
            keep = InstanceData()
            keep.bboxes_3d = gt_instance_3d.bboxes_3d[~ign]
            keep.labels_3d = labels[~ign]
        out = list(
            super().anchor_target_3d_single(
                anchors,
                keep,
                gt_instance_ignore,
                input_meta,
                label_channels=label_channels,
                num_classes=num_classes,
                sampling=sampling,
            )
        )
        if has_ign:  # anchors overlapping an ignored box get no classification loss
            ign_boxes = gt_instance_3d.bboxes_3d[ign]
            ign_t = ign_boxes.tensor if hasattr(ign_boxes, "tensor") else ign_boxes
            label_weights, pos_inds = out[1], out[6]
            flat = anchors.reshape(-1, anchors.size(-1))
            ious = _iou_calc(self.bbox_assigner)(ign_t.to(flat.device), flat)  # (n_ign, n_anchor)
            mask = ious.max(dim=0).values >= _neg_thr(self.bbox_assigner)
            if pos_inds.numel() > 0:
                mask[pos_inds] = False
            label_weights = label_weights.clone()
            label_weights[mask] = 0.0
            out[1] = label_weights
            neg = out[7]
            if neg.numel() > 0:
                out[7] = neg[~mask[neg]]
        w = self.domain_loss_weights.get(input_meta.get("domain"))
        if w is not None and w != (1.0, 1.0, 1.0):
            for k, wk in zip((1, 3, 5), w):  # label, bbox and direction weights
                out[k] = out[k] * wk
        return tuple(out)
