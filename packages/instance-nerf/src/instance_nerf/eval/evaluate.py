"""Render held-out views of a trained run and score them: mIoU, PQ, consistency."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from instance_nerf.eval.metrics import consistency, mean_iou, panoptic_quality, to_semantic
from instance_nerf.models.palette import colorize


def _to_png(arr: torch.Tensor | np.ndarray) -> np.ndarray:
    a = arr.detach().cpu().numpy() if isinstance(arr, torch.Tensor) else arr
    return (np.clip(a, 0, 1) * 255 + 0.5).astype(np.uint8)


@torch.no_grad()
def evaluate_pipeline(pipeline, out: Path, save_renders: bool = True) -> dict:
    """Render every eval-split view; write renders and metrics.json to ``out``; return the metrics."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    ds = pipeline.datamanager.eval_dataset
    if ds is None or len(ds) == 0:
        raise ValueError("the run has no held-out (test split) views to evaluate")
    model = pipeline.model
    id_to_class = {int(k): int(v) for k, v in (ds.metadata.get("id_to_class") or {0: 0}).items()}
    gts, preds, psnrs = [], [], []
    for i in range(len(ds)):
        cam = ds.cameras[i : i + 1].to(model.device)
        outputs = model.get_outputs_for_camera(cam)
        item = ds[i]
        gt = item["instance"][..., 0].numpy()
        pred = outputs["instance_logits"].argmax(-1).cpu().numpy()
        gts.append(gt)
        preds.append(pred)
        img = item["image"][..., :3].to(outputs["rgb"])
        psnrs.append(float(-10 * torch.log10(((outputs["rgb"] - img) ** 2).mean())))
        if save_renders:
            row = np.concatenate([
                _to_png(img), _to_png(outputs["rgb"]),
                _to_png(colorize(torch.from_numpy(gt))), _to_png(colorize(torch.from_numpy(pred))),
            ], axis=1)
            Image.fromarray(row).save(out / f"view_{i:03d}.png")
    has_gt = any((g >= 0).any() for g in gts)
    sem_gt = [to_semantic(g, id_to_class) for g in gts]
    sem_pr = [to_semantic(p, id_to_class) for p in preds]
    miou, per_class = mean_iou(sem_gt, sem_pr)
    pq, per_class_pq = panoptic_quality(gts, preds, id_to_class, id_to_class)
    valid = np.concatenate([g.reshape(-1) >= 0 for g in gts])
    acc = float((np.concatenate([p.reshape(-1) for p in preds]) == np.concatenate([g.reshape(-1) for g in gts]))[valid].mean()) if has_gt else 0.0
    metrics = {
        "miou": miou,
        "pq": pq,
        "consistency": consistency(gts, preds),
        "instance_pixel_accuracy": acc,
        "psnr": float(np.mean(psnrs)),
        "num_views": len(gts),
        "per_class_iou": {str(k): v for k, v in per_class.items()},
        "per_class_pq": {str(k): v for k, v in per_class_pq.items()},
        "has_ground_truth": bool(has_gt),
    }
    tmp = out / "metrics.json.tmp"
    tmp.write_text(json.dumps(metrics, indent=1))
    os.replace(tmp, out / "metrics.json")
    return metrics
