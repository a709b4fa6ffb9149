"""Train NeRF-RCNN in two stages (backbone + FCOS, then RoI heads on frozen features), resumable per epoch."""

from __future__ import annotations

import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from instance_nerf.data.io import InstanceNerfError, write_json
from instance_nerf.rcnn.data import GridDataset, collate
from instance_nerf.rcnn.evaluate import detection_ap
from instance_nerf.rcnn.model import NeRFRCNN, NeRFRCNNConfig, read_rcnn_checkpoint
from instance_nerf.rcnn.ops import box_iou_3d


def _to(targets: list[dict], device) -> list[dict]:
    return [{k: v.to(device) for k, v in t.items()} for t in targets]


def _params(model: NeRFRCNN, stage: str):
    mods = [model.backbone, model.rpn] if stage == "rpn" else [model.roi_heads]
    return [p for m in mods for p in m.parameters()]


@torch.no_grad()
def evaluate_rcnn(
    model: NeRFRCNN,
    data: Path,
    split: str = "val",
    device: str = "cpu",
    limit: int | None = None,
    low_thresh: float = 0.05,
) -> dict:
    """Box and mask AP@.25/.5 on one split of a ``synth-grids`` folder, at the model's score threshold.

    Also, to tell a weak detector from a bad threshold: the same APs over detections scoring > ``low_thresh``
    (``*_low``), and the proposal recall (GT boxes with a post-NMS FCOS proposal of IoU ≥ .25 / .5).
    """
    ds = GridDataset(data, split)
    thresh = model.config.score_thresh
    preds, low, gts = [], [], []
    n_gt = hit25 = hit50 = n_props = 0
    for i in range(len(ds) if limit is None else min(limit, len(ds))):
        grid, t = ds[i]
        p = model.predict(grid.to(device), score_thresh=low_thresh, with_proposals=True)
        p = {k: v.cpu() for k, v in p.items()}
        props = p.pop("proposals")
        p.pop("proposal_scores")
        n_props += len(props)
        if len(t["boxes"]):
            n_gt += len(t["boxes"])
            if len(props):
                best = box_iou_3d(t["boxes"], props).max(1).values
                hit25 += int((best >= 0.25).sum())
                hit50 += int((best >= 0.5).sum())
        low.append(p)
        preds.append({k: v[p["scores"] > thresh] for k, v in p.items()})
        gts.append(t)
    n_cls = len(model.config.classes)
    res = detection_ap(preds, gts, n_cls)
    res.update({f"{k}_low": v for k, v in detection_ap(low, gts, n_cls).items()})
    res["scenes"] = len(preds)
    res["score_thresh"], res["low_thresh"] = thresh, low_thresh
    res["detections_per_scene"] = sum(len(p["scores"]) for p in preds) / max(len(preds), 1)
    res["detections_per_scene_low"] = sum(len(p["scores"]) for p in low) / max(len(low), 1)
    res["gt_per_scene"] = n_gt / max(len(preds), 1)
    res["proposals_per_scene"] = n_props / max(len(preds), 1)
    res["proposal_recall25"] = hit25 / max(n_gt, 1)
    res["proposal_recall50"] = hit50 / max(n_gt, 1)
    return res


def train_rcnn(
    data: Path,
    out: Path,
    backbone: str = "tiny",
    epochs_rpn: int = 10,
    epochs_heads: int = 10,
    batch_size: int = 2,
    lr: float = 1e-3,
    weight_decay: float = 1e-3,
    device: str = "cpu",
    seed: int = 0,
    eval_limit: int | None = None,
    progress: bool = True,
    rpn: Path | None = None,
    max_epochs: int | None = None,
    eval_every: int = 2,
    num_workers: int = 0,
    deadline: float | None = None,
) -> dict:
    """Stage ``rpn`` then ``heads``; ``out/last.pt`` after every epoch (resumed on restart), ``out/best.pt`` by
    validation mask AP@.25 during the heads stage; returns the history.

    ``rpn``: start from a stage-1 checkpoint (``instance-nerf rpn train``) and train the heads only.
    ``max_epochs``: stop after this many epochs in this call (a later call resumes). Every epoch reseeds
    the shuffling, the augmentation and torch's generator from (``seed``, epoch index), so an interrupted
    and resumed run gives the same weights as an uninterrupted one (on CPU). ``num_workers``: loader processes.
    ``deadline`` (a ``time.time()`` value): no epoch starts after it (the run stays resumable).
    """
    data, out = Path(data), Path(out)
    train = GridDataset(data, "train", augment=True, seed=seed)
    if len(train) == 0:
        raise InstanceNerfError(f"{data / 'split.json'}: no training scenes")
    res = int(max(GridDataset(data, "train")[0][0].shape[1:]))
    last = out / "last.pt"
    torch.manual_seed(seed)
    state = None
    if last.is_file():
        state = read_rcnn_checkpoint(last)
        model = NeRFRCNN(NeRFRCNNConfig(**state["config"]))
        model.load_state_dict(state["state_dict"])
    elif rpn is not None:
        model = NeRFRCNN.load(rpn)
        if model.config.resolution != res:
            raise InstanceNerfError(
                f"{rpn}: built for grids of {model.config.resolution} voxels, {data} has {res}"
            )
    else:
        model = NeRFRCNN(NeRFRCNNConfig(backbone=backbone, classes=train.classes, resolution=res))
    if rpn is not None:
        epochs_rpn = 0
    model.to(device)
    history = list(state.get("history", [])) if state else []
    best = max((h.get("mask_ap25", -1.0) for h in history), default=-1.0)
    schedule = [("rpn", e) for e in range(epochs_rpn)] + [("heads", e) for e in range(epochs_heads)]
    done = len(history)
    shuffle = torch.Generator()
    loader = DataLoader(
        train,
        batch_size=batch_size,
        shuffle=True,
        collate_fn=collate,
        generator=shuffle,
        num_workers=num_workers,
    )
    opt = sched = None
    cur_stage = None
    ran = 0
    for k, (stage, epoch) in enumerate(schedule):
        if stage != cur_stage:
            cur_stage = stage
            for p in model.parameters():
                p.requires_grad_(False)
            params = _params(model, stage)
            for p in params:
                p.requires_grad_(True)
            steps = len(loader) * (epochs_rpn if stage == "rpn" else epochs_heads)
            opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
            sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=max(steps, 1))
        if k < done:
            continue
        if max_epochs is not None and ran >= max_epochs:
            break
        if deadline is not None and time.time() > deadline:
            break
        if state is not None and k == done and k > 0 and schedule[k - 1][0] == stage:
            opt.load_state_dict(state["optimizer"])  # resume inside a stage
            sched.load_state_dict(state["scheduler"])
        shuffle.manual_seed(seed * 100_003 + k)
        train.epoch = k
        torch.manual_seed(seed * 100_003 + k)
        model.train()
        if stage == "heads":
            model.backbone.eval()  # frozen features: BatchNorm statistics stay those of stage 1
        t0, losses = time.time(), []
        bar = tqdm(loader, desc=f"rcnn {stage} {epoch + 1}", disable=not progress, leave=False)
        for grids, targets in bar:
            loss_dict = model(grids.to(device), _to(targets, device), stage=stage)
            loss = sum(loss_dict.values())
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(_params(model, stage), 0.1)
            opt.step()
            sched.step()
            losses.append({n: float(v.detach()) for n, v in loss_dict.items()})
            bar.set_postfix(loss=f"{float(loss):.3f}")
        row = {"stage": stage, "epoch": epoch, "seconds": round(time.time() - t0, 2)}
        row.update({n: sum(d[n] for d in losses) / len(losses) for n in losses[0]})
        row["loss"] = sum(v for n, v in row.items() if n.startswith("loss_"))
        if stage == "heads" and (epoch == epochs_heads - 1 or epoch % eval_every == eval_every - 1):
            row.update(evaluate_rcnn(model, data, "val", device, eval_limit))
            if row["mask_ap25"] > best:
                best = row["mask_ap25"]
                model.save(out / "best.pt", history=history + [row])
        history.append(row)
        ran += 1
        model.save(
            last,
            stage=stage,
            epoch=epoch,
            history=history,
            optimizer=opt.state_dict(),
            scheduler=sched.state_dict(),
        )
    finished = len(history) == len(schedule)
    if finished and not (out / "best.pt").is_file() and last.is_file():
        model.save(out / "best.pt", history=history)
    write_json(out / "history.json", history)
    return {"out": str(out), "history": history, "finished": finished}
