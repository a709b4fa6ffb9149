"""``torchrun`` + ``launcher='pytorch'`` also on CPU machines (gloo).

mmengine 0.10.7 launches data-parallel runs the documented way on GPUs. On a machine without
CUDA two of its steps stop the run (measured; README "Multi-GPU / multi-node"):
``init_dist('pytorch')`` calls ``torch.cuda.set_device(LOCAL_RANK)`` before creating the process
group ("RuntimeError: Found no NVIDIA driver on your system"), and ``Runner.wrap_model`` gives
``DistributedDataParallel`` ``device_ids=[LOCAL_RANK]``, which torch refuses for a CPU module.
:func:`prepare_distributed` creates the gloo group from torchrun's environment first (mmengine then
skips its own ``init_dist``) and asks for a device-less wrapper. With CUDA nothing changes.

For every launcher it also swaps mmengine's ``LoggerHook`` for :class:`RankZeroLoggerHook`:
mmengine 0.10.7 dumps the test-metrics JSON from every rank into the same file.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from mmdet3d.registry import HOOKS
from mmengine.config import Config
from mmengine.dist import is_main_process
from mmengine.hooks import LoggerHook

from groupexp_da.data.io import GroupExpError


@HOOKS.register_module()
class RankZeroLoggerHook(LoggerHook):
    """mmengine's ``LoggerHook`` whose test-metrics JSON is written by rank 0 only."""

    def after_test_epoch(self, runner, metrics: dict | None = None) -> None:
        if is_main_process():
            super().after_test_epoch(runner, metrics)


def prepare_distributed(cfg: Config) -> None:
    """Make ``cfg.launcher='pytorch'`` work on CPU (gloo) and keep rank-0-only files rank 0's;
    a no-op for ``launcher='none'``."""
    launcher = cfg.get("launcher", "none")
    if launcher == "none":
        return
    logger = cfg.get("default_hooks", {}).get("logger")
    if logger and logger.get("type") in ("LoggerHook", "mmengine.LoggerHook"):
        logger["type"] = "RankZeroLoggerHook"
    if torch.cuda.is_available():
        return
    backend = cfg.get("env_cfg", {}).get("dist_cfg", {}).get("backend", "nccl")
    if launcher != "pytorch" or backend != "gloo":
        raise GroupExpError(
            f"{cfg.filename}: launcher={launcher!r} with backend={backend!r} needs CUDA; on CPU use "
            "torchrun with --cfg-options launcher=pytorch env_cfg.dist_cfg.backend=gloo"
        )
    if not dist.is_initialized():
        dist.init_process_group("gloo")  # env:// (RANK, WORLD_SIZE, MASTER_ADDR/PORT from torchrun)
    wrapper = dict(cfg.get("model_wrapper_cfg") or {})
    wrapper.setdefault("type", "MMDistributedDataParallel")
    wrapper.update(device_ids=None)
    wrapper.setdefault("broadcast_buffers", False)  # mmengine's default wrapper setting
    wrapper.setdefault("find_unused_parameters", cfg.get("find_unused_parameters", False))
    cfg.model_wrapper_cfg = wrapper
