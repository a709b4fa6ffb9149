"""``recall`` command: recall heatmaps of a checkpoint's detections and of pseudo labels."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from groupexp_da.data.io import GroupExpError, load_infos
from groupexp_da.eval.recall import matched, recall_table, write_recall


def _gt_frames(infos: list[dict], info_file: Path) -> list[dict]:
    frames = []
    for k, info in enumerate(infos):
        inst = [i for i in info.get("instances", []) if i.get("bbox_label_3d", 0) == 0]
        if inst and "num_lidar_pts" not in inst[0]:
            raise GroupExpError(
                f"{info_file}: frame {k} instances lack 'num_lidar_pts' "
                "(needed for the point-count bins)"
            )
        frames.append(
            {
                "boxes": np.array([i["bbox_3d"] for i in inst], float).reshape(-1, 7),
                "num_points": np.array([i.get("num_lidar_pts", 0) for i in inst]),
            }
        )
    return frames


def run_recall(
    info: str | Path,
    out: str | Path,
    checkpoint: str | None = None,
    config: str = "pointpillars_synth_source_only_cpu",
    pseudo: str | None = None,
    score_thr: float = 0.3,
    iou_thr: float = 0.7,
    device: str = "cpu",
) -> dict:
    """Recall tables (JSON) and heatmap (PNG) under ``out`` for LiDAR-frame info files (the
    synthetic benchmark); detections need ``checkpoint``, pseudo labels a pkl from ``adapt``."""
    info = Path(info)
    data = load_infos(info)
    gt = _gt_frames(data["data_list"], info)
    tables = {}
    if checkpoint:
        from groupexp_da.engine.config import load_config
        from groupexp_da.engine.infer import build_dataset, build_model, predict_dataset

        cfg = load_config(config)
        ds = dict(cfg.test_dataloader.dataset)
        ds.update(data_root=str(info.parent) + "/", ann_file=info.name)
        preds = predict_dataset(build_model(cfg, checkpoint, device), build_dataset(ds))
        found = []
        for g, p in zip(gt, preds):
            sel = (p["scores"] >= score_thr) & (p["labels"] == 0)
            found.append(matched(g["boxes"], p["boxes"][sel], p["scores"][sel], iou_thr))
        tables["detections"] = recall_table(gt, found)
    if pseudo:
        plist = load_infos(pseudo, "pseudo-label pkl")["data_list"]
        if len(plist) != len(gt):
            raise GroupExpError(f"{pseudo}: {len(plist)} frames but {info} has {len(gt)}")
        found = []
        for g, pl in zip(gt, plist):
            pos = [i for i in pl["instances"] if i["bbox_label_3d"] == 0]
            b = np.array([i["bbox_3d"] for i in pos], float).reshape(-1, 7)
            s = np.array([i.get("score", 1.0) for i in pos], float)
            found.append(matched(g["boxes"], b, s, iou_thr))
        tables["pseudo labels"] = recall_table(gt, found)
    if not tables:
        raise GroupExpError("recall: give --checkpoint and/or --pseudo")
    paths = write_recall(out, tables)
    return {"tables": tables, "paths": {k: str(v) for k, v in paths.items()}}
