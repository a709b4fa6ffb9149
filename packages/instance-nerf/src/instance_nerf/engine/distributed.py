"""Data-parallel training on CPU: nerfstudio's own Trainer in N processes joined by gloo.

nerfstudio 1.1.5 trains on several GPUs (``ns-train ... --machine.num-devices N``), but that path is
CUDA-only. Measured on CPU (README, "Multi-GPU / multi-node"):

* ``ns-train instance-nerf --machine.num-devices 2 --machine.device-type cpu`` stops in every worker with
  ``AssertionError: cuda is not available. Please check your installation.``
  (``nerfstudio/scripts/train.py``, ``_distributed_worker``);
* past that, ``VanillaPipeline`` wraps the model as ``DDP(model, device_ids=[local_rank])``, which
  torch refuses for a CPU module.

This module does what ``ns-train``'s launcher does (one process per rank, seed ``machine.seed + rank``,
the config saved once, nerfstudio's ``Trainer.train`` loop in every rank) with a gloo process group and
a device-less ``DistributedDataParallel`` around the model. Checkpoints, event files and the console
writer stay rank-0-only through nerfstudio's own ``check_main_thread`` guards; the one file nerfstudio
writes from every rank (``dataparser_transforms.json``) gets the same guard here.
"""

from __future__ import annotations

import os
import random
import socket
from collections.abc import Callable
from datetime import timedelta

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from nerfstudio.engine.trainer import Trainer, TrainerConfig
from nerfstudio.utils import writer
from nerfstudio.utils.decorators import check_main_thread
from torch.nn.parallel import DistributedDataParallel

DEFAULT_TIMEOUT = timedelta(minutes=30)


def free_port() -> int:
    """A TCP port on localhost that was free a moment ago (for the rendezvous URL)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def setup_ddp_trainer(config: TrainerConfig, rank: int, world_size: int) -> Trainer:
    """Build and set up the trainer of one rank (the process group must already exist).

    The pipeline is built as for one process (nerfstudio's own DDP wrap needs CUDA), then its model is
    wrapped in a CPU ``DistributedDataParallel``: the constructor broadcasts rank 0's weights and every
    backward pass averages the gradients over the ranks. ``Trainer.world_size`` is set so that the
    reported rays/s counts all ranks.
    """
    if config.machine.device_type != "cpu":
        raise ValueError(
            f"setup_ddp_trainer runs on CPU; use ns-train --machine.num-devices {world_size} for "
            f"{config.machine.device_type}"
        )
    seed = config.machine.seed + rank  # what ns-train's train_loop does
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002  (nerfstudio code draws from the global numpy RNG)
    torch.manual_seed(seed)
    trainer = config.setup(local_rank=rank, world_size=1)
    trainer.setup()
    trainer.world_size = world_size
    pipeline = trainer.pipeline
    # Trainer.train writes dataparser_transforms.json from every rank (no guard in nerfstudio 1.1.5).
    outputs = pipeline.datamanager.train_dataparser_outputs
    outputs.save_dataparser_transform = check_main_thread(outputs.save_dataparser_transform)
    pipeline._model = DistributedDataParallel(pipeline._model, find_unused_parameters=True)
    return trainer


def train_loop(rank: int, world_size: int, config: TrainerConfig) -> None:
    """One rank of a CPU data-parallel run: set up, nerfstudio's ``Trainer.train``, close event files."""
    setup_ddp_trainer(config, rank, world_size).train()
    close_event_writers()


def _worker(
    rank: int,
    main_func: Callable[[int, int, TrainerConfig], object],
    world_size: int,
    init_method: str,
    config: TrainerConfig,
    timeout: timedelta,
    threads: int,
) -> None:
    torch.set_num_threads(threads)
    # A forked rank inherits the parent's nerfstudio event writers, but not their writer threads:
    # logging into them would block on a queue nobody drains. Each rank starts with its own.
    writer.EVENT_WRITERS.clear()
    writer.EVENT_STORAGE.clear()
    dist.init_process_group(
        "gloo", init_method=init_method, rank=rank, world_size=world_size, timeout=timeout
    )
    try:
        main_func(rank, world_size, config)
        dist.barrier()
    finally:
        close_event_writers()  # a forked rank ends in os._exit: no atexit flush of event files
        dist.destroy_process_group()


def close_event_writers() -> None:
    """Flush and close this process's tensorboard event files (nerfstudio keeps them open)."""
    for event_writer in writer.EVENT_WRITERS:
        summary = getattr(event_writer, "tb_writer", None)
        if summary is not None:
            summary.close()


def launch_cpu(
    config: TrainerConfig,
    num_processes: int,
    main_func: Callable[[int, int, TrainerConfig], object] = train_loop,
    init_method: str | None = None,
    timeout: timedelta = DEFAULT_TIMEOUT,
    start_method: str = "spawn",
) -> None:
    """Train ``config`` as ``num_processes`` gloo ranks on this machine (the CPU twin of ``ns-train``'s launch).

    Every rank samples its own ``train_num_rays_per_batch`` rays, so the global batch is
    ``num_processes`` times that. The config is saved once, here, before the ranks start.
    ``main_func(rank, world_size, config)`` runs in every rank (default: :func:`train_loop`).
    A failing rank raises ``torch.multiprocessing.ProcessRaisedException`` here.
    """
    if num_processes < 1:
        raise ValueError(f"num_processes must be >= 1, got {num_processes}")
    config.machine.device_type = "cpu"
    config.machine.num_devices = num_processes
    config.set_timestamp()
    config.save_config()
    init_method = init_method or f"tcp://127.0.0.1:{free_port()}"
    threads = max(1, (os.cpu_count() or 1) // num_processes)
    mp.start_processes(
        _worker,
        args=(main_func, num_processes, init_method, config, timeout, threads),
        nprocs=num_processes,
        join=True,
        start_method=start_method,
    )
