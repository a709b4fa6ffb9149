"""Anchor head that treats GT label -1 (ST3D's ignore band) as "no loss here"."""

from __future__ import annotations

from mmdet3d.models.dense_heads import Anchor3DHead
from mmdet3d.registry import MODELS
from mmengine.structures import InstanceData


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
    """

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
        if not bool(ign.any()):
            return super().anchor_target_3d_single(
                anchors,
                gt_instance_3d,
                gt_instance_ignore,
                input_meta,
                label_channels=label_channels,
                num_classes=num_classes,
                sampling=sampling,
            )
        boxes = gt_instance_3d.bboxes_3d
        keep = InstanceData()
        keep.bboxes_3d = boxes[~ign]
        keep.labels_3d = labels[~ign]
        ign_boxes = boxes[ign]
        ign_t = ign_boxes.tensor if hasattr(ign_boxes, "tensor") else ign_boxes
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
        return tuple(out)
