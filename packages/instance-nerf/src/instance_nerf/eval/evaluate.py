"""Render held-out views of a trained run and score them: mIoU, PQ, consistency."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from instance_nerf.data.dataparser import read_instances_json
from instance_nerf.data.io import InstanceNerfError, atomic_path, load_instance_mask, write_json
from instance_nerf.engine.infer import render_split
from instance_nerf.eval.metrics import (
    consistency,
    mean_iou,
    panoptic_quality,
    pq_multiview,
    to_semantic,
)
from instance_nerf.models.palette import colorize


def _to_png(arr: torch.Tensor | np.ndarray) -> np.ndarray:
    a = arr.detach().cpu().numpy() if isinstance(arr, torch.Tensor) else arr
    return (np.clip(a, 0, 1) * 255 + 0.5).astype(np.uint8)


def ground_truth(pipeline, ds) -> tuple[list[np.ndarray] | None, dict[int, int]]:
    """GT masks from the scene's ``instances/`` and classes from its ``instances.json``.

    The run may have trained on other masks (matched, refined); those are never the ground truth. Without an
    ``instances/`` folder the dataset's own masks and classes are used.
    """
    pred_classes = {int(k): int(v) for k, v in (ds.metadata.get("id_to_class") or {0: 0}).items()}
    data = Path(pipeline.datamanager.config.dataparser.data)
    root = data.parent if data.suffix == ".json" else data
    files = [root / "instances" / f"{Path(f).stem}.png" for f in ds.image_filenames]
    if not all(f.is_file() for f in files):
        return None, pred_classes
    classes = pred_classes
    if (root / "instances.json").is_file():
        classes = read_instances_json(root / "instances.json")["id_to_class"]
    return [load_instance_mask(f) for f in files], classes


@torch.no_grad()
def evaluate_pipeline(pipeline, out: Path, save_renders: bool = True) -> dict:
    """Render every eval-split view; write renders and metrics.json to ``out``; return the metrics."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ds = pipeline.datamanager.eval_dataset
    if ds is None or len(ds) == 0:
        raise InstanceNerfError("the run has no held-out (test split) views to evaluate")
    pred_classes = {int(k): int(v) for k, v in (ds.metadata.get("id_to_class") or {0: 0}).items()}
    gt_masks, gt_classes = ground_truth(pipeline, ds)
    gts, preds, psnrs = [], [], []
    for i, item, render in render_split(pipeline, "test"):
        gt = gt_masks[i] if gt_masks is not None else item["instance"][..., 0].numpy()
        pred = render["ids"]
        gts.append(gt)
        preds.append(pred)
        img = item["image"][..., :3].numpy()
        psnrs.append(float(-10 * np.log10(((render["rgb"] - img) ** 2).mean())))
        if save_renders:
            row = np.concatenate(
                [
                    _to_png(img),
                    _to_png(render["rgb"]),
                    _to_png(colorize(torch.from_numpy(gt))),
                    _to_png(colorize(torch.from_numpy(pred))),
                ],
                axis=1,
            )
            with atomic_path(out / f"view_{i:03d}.png") as tmp:
                Image.fromarray(row).save(tmp)
    has_gt = any((g >= 0).any() for g in gts)
    sem_gt = [to_semantic(g, gt_classes) for g in gts]
    sem_pr = [to_semantic(p, pred_classes) for p in preds]
    miou, per_class = mean_iou(sem_gt, sem_pr)
    pq, per_class_pq = panoptic_quality(gts, preds, gt_classes, pred_classes)
    pq_mv = pq_multiview(gts, preds, gt_classes, pred_classes)
    valid = np.concatenate([g.reshape(-1) >= 0 for g in gts])
    acc = (
        float(
            (
                np.concatenate([p.reshape(-1) for p in preds])
                == np.concatenate([g.reshape(-1) for g in gts])
            )[valid].mean()
        )
        if has_gt
        else 0.0
    )
    metrics = {
        "miou": miou,
        "pq": pq,
        "pq_mv": pq_mv,
        "consistency": consistency(gts, preds),
        "instance_pixel_accuracy": acc,
        "psnr": float(np.mean(psnrs)),
        "num_views": len(gts),
        "per_class_iou": {str(k): v for k, v in per_class.items()},
        "per_class_pq": {str(k): v for k, v in per_class_pq.items()},
        "has_ground_truth": bool(has_gt),
    }
    write_json(out / "metrics.json", metrics, indent=1)
    return metrics
