"""Runner hooks of GroupEXP-DA: group initialisation and per-epoch ``groups.json``."""

from __future__ import annotations

import os

import torch
import torch.distributed as dist
from mmdet3d.registry import HOOKS
from mmengine.hooks import Hook
from mmengine.logging import MMLogger

from groupexp_da.data.io import write_json


def _unwrap(model):
    return model.module if hasattr(model, "module") else model


@torch.no_grad()
def collect_descriptors(
    model, dataloader, max_objects: int = 20000, max_batches: int | None = None
) -> torch.Tensor:
    """Eval-mode descriptors of the labelled (positive) cars the loader yields."""
    was_training = model.training
    model.eval()
    feats, n = [], 0
    try:
        for b, data in enumerate(dataloader):
            if max_batches is not None and b >= max_batches:
                break
            data = model.data_preprocessor(data, True)
            obj = model.describe(data["inputs"]["points"], data["data_samples"])
            feats.append(obj["feats"].cpu())
            n += len(obj["feats"])
            if n >= max_objects:
                break
    finally:
        model.train(was_training)
    return torch.cat(feats)[:max_objects] if feats else torch.zeros(0, model.groups.dim)


@HOOKS.register_module()
class GroupInitHook(Hook):
    """Before training: k-means + MLE on the descriptors of up to ``max_objects`` labelled cars
    of the training loader, unless the groups came initialised with the checkpoint."""

    priority = "LOW"

    def __init__(
        self, max_objects: int = 20000, max_batches: int | None = None, seed: int = 42
    ) -> None:
        self.max_objects, self.max_batches, self.seed = max_objects, max_batches, seed

    def before_train(self, runner) -> None:
        model = _unwrap(runner.model)
        log = MMLogger.get_current_instance()
        if bool(model.groups.initialized):
            log.info("GroupInitHook: groups loaded with the checkpoint, kept")
            return
        distributed = dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1
        if not distributed or dist.get_rank() == 0:
            feats = collect_descriptors(
                model, runner.train_dataloader, self.max_objects, self.max_batches
            )
            model.groups.fit_init(feats.to(model.groups.mu.device), seed=self.seed)
            log.info(
                f"GroupInitHook: {model.groups.n_groups} groups from {len(feats)} objects, "
                f"weights {[round(float(w), 3) for w in model.groups.weight]}"
            )
        if distributed:
            for buf in (
                model.groups.mu,
                model.groups.var,
                model.groups.weight,
                model.groups.initialized,
            ):
                dist.broadcast(buf, 0)


def summarize_groups(model, rows: list[torch.Tensor]) -> list[dict]:
    """Per group: EMA weight, objects seen, mean points / volume / distance, target share."""
    g = model.groups
    table = torch.cat(rows) if rows else torch.zeros(0, 5)
    out = []
    for i in range(g.n_groups):
        r = table[table[:, 0] == i]
        means = [round(float(r[:, c].mean()), 3) if len(r) else None for c in range(1, 5)]
        out.append(
            {
                "group": i,
                "weight": round(float(g.weight[i]), 4),
                "objects": len(r),
                "mean_points": means[0],
                "mean_volume_m3": means[1],
                "mean_distance_m": means[2],
                "target_share": means[3],
            }
        )
    return out


@HOOKS.register_module()
class GroupStatsHook(Hook):
    """After each epoch: append the group composition to ``work_dir/groups.json``."""

    priority = "LOW"

    def after_train_epoch(self, runner) -> None:
        model = _unwrap(runner.model)
        if not hasattr(model, "groups"):
            return
        entry = {"epoch": runner.epoch + 1, "groups": summarize_groups(model, model.group_log)}
        model.group_log.clear()
        if dist.is_available() and dist.is_initialized() and dist.get_rank() != 0:
            return
        path = os.path.join(runner.work_dir, "groups.json")
        history = []
        if os.path.isfile(path):
            import json

            with open(path) as f:
                history = json.load(f)
        history = [h for h in history if h["epoch"] < entry["epoch"]] + [entry]
        write_json(path, history)
