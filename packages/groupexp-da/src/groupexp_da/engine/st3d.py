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
from pathlib import Path

import numpy as np
from mmengine.config import Config
from mmengine.dist import barrier, is_main_process

from groupexp_da.data.io import GroupExpError, load_infos, write_json, write_pickle
from groupexp_da.engine.checkpoint import copy_checkpoint
from groupexp_da.engine.config import build_runner, dataset_ann_files
from groupexp_da.engine.infer import build_dataset, build_model, predict_dataset
from groupexp_da.engine.pseudo import (
    PseudoCfg,
    assign_labels,
    assign_labels_grouped,
    empty_labels,
    from_instances,
    label_quality,
    memory_ensemble,
    to_instances,
)


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


GROUP_KEYS = ("obj_descriptor.", "groups.", "bbox_head.group_attn.")  # absent in ROS checkpoints


def _check_prev(prev: Path, prev_list: list, infos: list, ann: str) -> None:
    """Pseudo labels of another dataset (frame count or sample ids differ) are an error."""
    if len(prev_list) != len(infos):
        raise GroupExpError(
            f"{prev}: {len(prev_list)} frames of pseudo labels but the target "
            f"info pkl {ann} has {len(infos)} (labels of another dataset?)"
        )
    for k, (a, b) in enumerate(zip(prev_list, infos)):
        if a.get("sample_idx") != b.get("sample_idx"):
            raise GroupExpError(
                f"{prev}: frame {k} has sample_idx {a.get('sample_idx')!r}, the "
                f"target info pkl {ann} {b.get('sample_idx')!r}"
            )


def label_round(
    cfg: Config, ckpt: str, prev: Path | None, out: Path, pcfg: PseudoCfg, device: str = "cpu"
) -> dict:
    """Write ``out`` (an info pkl of pseudo labels) and return label statistics.

    With ``st3d.group_labels`` (GroupEXP) and a model whose groups are initialised, the
    labels come from the union of baseline and group branches and carry their ``group``
    (0 = baseline, i + 1 = group i) through :func:`assign_labels_grouped`.
    """
    tgt = cfg.st3d_target_dataset
    ann = os.path.join(tgt["data_root"], tgt["ann_file"])
    infos = load_infos(ann, "target info pkl")
    old = {}
    if prev is not None:
        prev_list = load_infos(prev, "pseudo-label pkl")["data_list"]
        _check_prev(prev, prev_list, infos["data_list"], ann)
        # frames are matched by position: mmengine datasets report sample_idx = list index
        old = {k: from_instances(info["instances"]) for k, info in enumerate(prev_list)}
    ds_cfg = copy.deepcopy(tgt)
    ds_cfg["test_mode"] = True
    ds_cfg["pipeline"] = cfg.test_pipeline
    dataset = build_dataset(ds_cfg)
    model = build_model(cfg, ckpt, device, allow_missing=GROUP_KEYS)
    grouped = bool(cfg.st3d.get("group_labels", False)) and hasattr(model, "groups")
    if grouped and not bool(model.groups.initialized):
        grouped = False  # a plain ROS checkpoint: baseline labels until groups exist
    if grouped:
        model.collect_groups = True
    preds = predict_dataset(model, dataset, batch_size=cfg.get("st3d_batch_size", 4))
    by_id = {p["sample_idx"]: p for p in preds}
    data_list, labels, gts = [], [], []
    for sid, info in enumerate(infos["data_list"]):
        p = by_id.get(
            sid, {"boxes": np.zeros((0, 7)), "scores": np.zeros(0), "labels": np.zeros(0)}
        )
        car = p["labels"] == 0
        new = {"boxes": p["boxes"][car], "scores": p["scores"][car]}
        if "group" in p:
            new["group"] = p["group"][car]
        mem = memory_ensemble(old.get(sid, empty_labels()), new, pcfg)
        lab = assign_labels_grouped(mem, pcfg) if grouped else assign_labels(mem, pcfg)
        labels.append(lab)
        if info.get("instances") and "bbox_3d" in info["instances"][0]:
            gts.append(
                np.array(
                    [i["bbox_3d"] for i in info["instances"] if i.get("bbox_label_3d", 0) == 0]
                ).reshape(-1, 7)
            )
        item = {k: v for k, v in info.items() if k != "instances"}
        item["instances"] = to_instances(lab)
        data_list.append(item)
    meta = dict(infos.get("metainfo", {}))
    meta["pseudo_labels"] = {
        "from": str(ckpt),
        "score_thresh": pcfg.score_thresh,
        "neg_thresh": pcfg.neg_thresh,
        "grouped": grouped,
        "group_score_thresh": pcfg.group_score_thresh,
        "replace": pcfg.replace,
    }
    write_pickle(out, {"metainfo": meta, "data_list": data_list})
    all_lab = np.concatenate([lab["labels"] for lab in labels]) if labels else np.zeros(0)
    all_grp = np.concatenate([lab["group"] for lab in labels]) if labels else np.zeros(0)
    stats = {
        "positives": int((all_lab == 0).sum()),
        "ignored": int((all_lab == -1).sum()),
        "frames": len(data_list),
        "grouped": grouped,
        "positives_by_group": [
            int(((all_lab == 0) & (all_grp == g)).sum())
            for g in range(int(all_grp.max(initial=0)) + 1)
        ],
    }
    if len(gts) == len(labels):  # the target infos hold GT (synthetic benchmark): label quality
        stats["quality_bev_iou_0.7"] = label_quality(gts, labels, 0.7)
        stats["quality_bev_iou_0.5"] = label_quality(gts, labels, 0.5)
    return stats


def train_dataset(cfg: Config, labels: Path, rnd: int) -> tuple[dict, dict | None]:
    """The round's training set: pseudo-labelled target frames, and with ``st3d.source_mix``
    a ``ConcatDataset([source, target])`` and its ``DomainBalancedBatchSampler``."""
    st = cfg.st3d
    tgt = copy.deepcopy(cfg.st3d_target_dataset)
    tgt["ann_file"] = str(labels.resolve())
    tgt["pipeline"] = [dict(type="SetDomain", domain="target")] + _progressive(
        cfg.st3d_train_pipeline, rnd, st.get("progressive_aug", {})
    )
    mix = st.get("source_mix")
    if not mix:
        return tgt, None
    src = copy.deepcopy(cfg.train_dataloader.dataset)
    src["pipeline"] = [dict(type="SetDomain", domain="source")] + list(src["pipeline"])
    sampler = dict(
        type="DomainBalancedBatchSampler",
        source_batch=mix["source_batch"],
        target_batch=mix["target_batch"],
        seed=cfg.get("randomness", {}).get("seed"),
    )
    # the two info files' metainfo differ (dataset name, domain, pseudo-label provenance);
    # the class list, which ConcatDataset also compares, is the same by construction
    keys = set()
    for ds in (src, tgt):
        for ann in dataset_ann_files(ds):
            keys |= set(load_infos(ann).get("metainfo", {}))
    keys.discard("classes")
    return dict(type="ConcatDataset", datasets=[src, tgt], ignore_keys=sorted(keys)), sampler


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
    return [
        dict(
            type="CosineAnnealingLR",
            T_max=epochs,
            eta_min=lr * 1e-2,
            by_epoch=True,
            begin=0,
            end=epochs,
            convert_to_iter_based=True,
        )
    ]


def adapt(cfg: Config, source_ckpt: str, work_dir: str | Path, device: str = "cpu") -> list[dict]:
    """Run (or resume) ST3D rounds; returns the per-round records."""
    st = cfg.st3d
    pcfg = PseudoCfg(
        **{
            k: st[k]
            for k in (
                "score_thresh",
                "neg_thresh",
                "ensemble_iou",
                "ignore_after",
                "remove_after",
                "group_score_thresh",
                "replace",
            )
            if k in st
        }
    )
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    history_path = work / "history.json"
    history = json.loads(history_path.read_text()) if history_path.exists() else []
    if not any(h.get("round") == -1 for h in history):
        m = evaluate(cfg, source_ckpt, work / "source_eval")
        history.append({"round": -1, "checkpoint": str(source_ckpt), "metrics": m})
        if is_main_process():  # under torchrun: rank 0 writes, every rank keeps the record
            write_json(history_path, history, indent=1)
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
        if is_main_process() and not labels.exists():  # labelling on rank 0, the others wait
            stats = label_round(cfg, ckpt, prev, labels, pcfg, device)
            write_json(rdir / "label_stats.json", stats)
        barrier()
        c = copy.deepcopy(cfg)
        ds, batch_sampler = train_dataset(cfg, labels, r)
        c.train_dataloader.dataset = ds
        if batch_sampler is not None:
            c.train_dataloader.batch_sampler = batch_sampler
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
        if is_main_process() and trained.exists():
            copy_checkpoint(trained, final)
        barrier()
        m = evaluate(cfg, str(final), rdir / "eval")
        stats = json.loads((rdir / "label_stats.json").read_text())
        history.append({"round": r, "checkpoint": str(final), "labels": stats, "metrics": m})
        if is_main_process():
            write_json(history_path, history, indent=1)
            write_json(done, {"round": r})
        ckpt, prev = str(final), labels
    return history
