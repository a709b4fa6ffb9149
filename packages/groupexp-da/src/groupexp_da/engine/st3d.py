"""ST3D self-training on mmengine: pseudo-label rounds on disk, resumable.

Each round ``r`` (directory ``WORK/round_r``):

1. ``pseudo_labels.pkl`` - the current model labels the unlabelled target train
   split; detections are merged with the previous round's memory (ensemble +
   voting) and split into positives (0) / ignore band (-1) / dropped;
2. ``train/`` - an mmengine Runner fine-tunes on those labels (progressively
   stronger augmentation), resuming from its last checkpoint if interrupted;
3. ``metrics.json`` - AP on the target validation split; ``done`` marks the round.
"""

from __future__ import annotations

import copy
import json
import os
import pickle
import shutil
from pathlib import Path

import mmengine
import numpy as np
from mmengine.config import Config

from groupexp_da.engine.inference import build_dataset, build_model, predict_dataset
from groupexp_da.engine.pseudo import (
    PseudoCfg,
    assign_labels,
    empty_labels,
    from_instances,
    memory_ensemble,
    to_instances,
)
from groupexp_da.engine.runner import build_runner


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _progressive(pipeline: list, rnd: int, prog: dict) -> list:
    """Widen ROS and world-rotation ranges with the round index."""
    pipeline = copy.deepcopy(pipeline)
    ros = prog.get("ros", (0.05, 0.025))
    rot = prog.get("rot", (0.2, 0.1))
    for t in pipeline:
        if t["type"] == "RandomObjectScaling":
            h = ros[0] + ros[1] * rnd
            t["scale_range"] = [1 - h, 1 + h]
        if t["type"] == "GlobalRotScaleTrans":
            h = rot[0] + rot[1] * rnd
            t["rot_range"] = [-h, h]
    return pipeline


def label_round(cfg: Config, ckpt: str, prev: Path | None, out: Path, pcfg: PseudoCfg,
                device: str = "cpu") -> dict:
    """Write ``out`` (an info pkl of pseudo labels) and return label statistics."""
    tgt = cfg.st3d_target_dataset
    ds_cfg = copy.deepcopy(tgt)
    ds_cfg["test_mode"] = True
    ds_cfg["pipeline"] = cfg.test_pipeline
    dataset = build_dataset(ds_cfg)
    model = build_model(cfg, ckpt, device)
    preds = predict_dataset(model, dataset, batch_size=cfg.get("st3d_batch_size", 4))
    infos = mmengine.load(os.path.join(tgt["data_root"], tgt["ann_file"]))
    # frames are matched by position: mmengine datasets report sample_idx = list index
    old = {}
    if prev is not None:
        for k, info in enumerate(mmengine.load(prev)["data_list"]):
            old[k] = from_instances(info["instances"])
    by_id = {p["sample_idx"]: p for p in preds}
    data_list = []
    n_pos = n_ign = 0
    for sid, info in enumerate(infos["data_list"]):
        p = by_id.get(sid, {"boxes": np.zeros((0, 7)), "scores": np.zeros(0),
                            "labels": np.zeros(0)})
        car = p["labels"] == 0
        new = {"boxes": p["boxes"][car], "scores": p["scores"][car]}
        mem = memory_ensemble(old.get(sid, empty_labels()), new, pcfg)
        lab = assign_labels(mem, pcfg)
        n_pos += int((lab["labels"] == 0).sum())
        n_ign += int((lab["labels"] == -1).sum())
        item = {k: v for k, v in info.items() if k != "instances"}
        item["instances"] = to_instances(lab)
        data_list.append(item)
    meta = dict(infos.get("metainfo", {}))
    meta["pseudo_labels"] = {"from": str(ckpt), "score_thresh": pcfg.score_thresh,
                             "neg_thresh": pcfg.neg_thresh}
    _atomic_write(out, pickle.dumps({"metainfo": meta, "data_list": data_list}))
    return {"positives": n_pos, "ignored": n_ign, "frames": len(data_list)}


def evaluate(cfg: Config, ckpt: str, work_dir: Path) -> dict:
    """Target-validation AP of ``ckpt`` through mmengine's test loop."""
    c = copy.deepcopy(cfg)
    c.work_dir = str(work_dir)
    c.load_from = ckpt
    c.resume = False
    runner = build_runner(c)
    return {k: float(v) for k, v in runner.test().items()}


def round_schedule(epochs: int, lr: float, kind: str = "cosine") -> list[dict]:
    """LR schedule of one self-training round: ``cosine`` decays ``lr`` to 1 % within the round
    (a converged source model is not left at a high rate when the round ends); ``constant``
    keeps ``lr``."""
    if kind == "constant":
        return [dict(type="ConstantLR", factor=1.0, by_epoch=True, begin=0, end=epochs)]
    if kind != "cosine":
        raise ValueError(f"st3d.schedule must be 'cosine' or 'constant', got {kind!r}")
    return [dict(type="CosineAnnealingLR", T_max=epochs, eta_min=lr * 1e-2, by_epoch=True,
                 begin=0, end=epochs, convert_to_iter_based=True)]


def adapt(cfg: Config, source_ckpt: str, work_dir: str | Path, device: str = "cpu") -> list[dict]:
    """Run (or resume) ST3D rounds; returns the per-round records."""
    st = cfg.st3d
    pcfg = PseudoCfg(**{k: st[k] for k in ("score_thresh", "neg_thresh", "ensemble_iou",
                                           "ignore_after", "remove_after") if k in st})
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    history_path = work / "history.json"
    history = json.loads(history_path.read_text()) if history_path.exists() else []
    if not any(h.get("round") == -1 for h in history):
        m = evaluate(cfg, source_ckpt, work / "source_eval")
        history.append({"round": -1, "checkpoint": str(source_ckpt), "metrics": m})
        _atomic_write(history_path, json.dumps(history, indent=1).encode())
    ckpt = str(source_ckpt)
    prev = None
    for r in range(int(st["rounds"])):
        rdir = work / f"round_{r}"
        rdir.mkdir(exist_ok=True)
        done = rdir / "done"
        final = rdir / "final.pth"
        if done.exists():
            ckpt, prev = str(final), rdir / "pseudo_labels.pkl"
            continue
        labels = rdir / "pseudo_labels.pkl"
        if not labels.exists():
            stats = label_round(cfg, ckpt, prev, labels, pcfg, device)
            (rdir / "label_stats.json").write_text(json.dumps(stats))
        c = copy.deepcopy(cfg)
        ds = copy.deepcopy(cfg.st3d_target_dataset)
        ds["ann_file"] = str(labels.resolve())
        ds["pipeline"] = _progressive(cfg.st3d_train_pipeline, r, st.get("progressive_aug", {}))
        c.train_dataloader.dataset = ds
        epochs = int(st["epochs_per_round"])
        c.train_cfg = dict(by_epoch=True, max_epochs=epochs, val_interval=10**6)
        lr = float(st.get("lr", 5e-4))
        c.param_scheduler = round_schedule(epochs, lr, st.get("schedule", "cosine"))
        c.optim_wrapper.optimizer.lr = lr
        c.work_dir = str(rdir / "train")
        last = rdir / "train" / "last_checkpoint"
        c.resume = last.exists()
        c.load_from = None if c.resume else ckpt
        runner = build_runner(c)
        runner.train()
        trained = Path(c.work_dir) / f"epoch_{epochs}.pth"
        if trained.exists():
            shutil.copyfile(trained, final.with_suffix(".tmp"))
            os.replace(final.with_suffix(".tmp"), final)
        m = evaluate(cfg, str(final), rdir / "eval")
        stats = json.loads((rdir / "label_stats.json").read_text())
        history.append({"round": r, "checkpoint": str(final), "labels": stats, "metrics": m})
        _atomic_write(history_path, json.dumps(history, indent=1).encode())
        done.write_text("ok")
        ckpt, prev = str(final), labels
    return history
