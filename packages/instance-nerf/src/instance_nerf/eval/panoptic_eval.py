"""Score 2D panoptic masks as they are (the "Mask2Former" baseline row) against a scene's GT ``instances/``."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from instance_nerf.data.dataparser import InstanceDataParserConfig, read_instances_json
from instance_nerf.data.io import load_instance_mask
from instance_nerf.data.panoptic import read_panoptic
from instance_nerf.eval.metrics import (
    consistency,
    majority_classes,
    mean_iou,
    panoptic_quality,
    pq_multiview,
    to_semantic,
)


def panoptic_to_ids(seg: np.ndarray, segments: list[dict]) -> tuple[np.ndarray, dict[int, int]]:
    """Instance-style ids of a panoptic view (background segments and void → 0) and {id: class}."""
    ids = seg.copy()
    classes = {0: 0}
    known = {int(s["id"]) for s in segments}
    ids[~np.isin(seg, list(known))] = 0
    for s in segments:
        if s.get("is_background", False):
            ids[seg == s["id"]] = 0
        else:
            classes[int(s["id"])] = int(s.get("class_id", 0))
    return ids, classes


def evaluate_panoptic(scene: Path, panoptic: Path, split: str = "test") -> dict:
    """mIoU, per-view PQ (per-view classes), multi-view PQ (majority class per id) and consistency."""
    scene = Path(scene)
    parser = InstanceDataParserConfig(data=scene).setup()
    stems = [Path(f).stem for f in parser.get_dataparser_outputs(split=split).image_filenames]
    gt_classes = read_instances_json(scene / "instances.json")["id_to_class"]
    gts = [load_instance_mask(scene / "instances" / f"{s}.png") for s in stems]
    views = read_panoptic(panoptic, stems, [g.shape[::-1] for g in gts])
    preds, classes = zip(*(panoptic_to_ids(*views[s]) for s in stems))
    sem_gt = [to_semantic(g, gt_classes) for g in gts]
    sem_pr = [to_semantic(p, c) for p, c in zip(preds, classes)]
    miou, _ = mean_iou(sem_gt, sem_pr)
    pq, _ = panoptic_quality(gts, list(preds), gt_classes, list(classes))
    pq_mv = pq_multiview(gts, list(preds), gt_classes, majority_classes(preds, classes))
    return {
        "miou": miou,
        "pq": pq,
        "pq_mv": pq_mv,
        "consistency": consistency(gts, list(preds)),
        "views": len(stems),
    }
