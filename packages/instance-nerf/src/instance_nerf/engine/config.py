"""Trainer configs: the ``instance-nerf`` method (what ``ns-train`` runs) and small CPU ones (tests, demo, benchmarks).

nerfstudio keeps configs as Python objects; this module builds and derives them. ``method.py`` (the
entry point) imports it, nothing imports ``method.py``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from nerfstudio.cameras.camera_optimizers import CameraOptimizerConfig
from nerfstudio.configs.base_config import LoggingConfig, MachineConfig, ViewerConfig
from nerfstudio.data.datamanagers.base_datamanager import VanillaDataManagerConfig
from nerfstudio.data.dataparsers.base_dataparser import DataParserConfig
from nerfstudio.engine.optimizers import AdamOptimizerConfig
from nerfstudio.engine.schedulers import ExponentialDecaySchedulerConfig
from nerfstudio.models.nerfacto import NerfactoModelConfig
from nerfstudio.pipelines.base_pipeline import VanillaPipelineConfig

from instance_nerf.data.datamanager import InstanceDataManagerConfig
from instance_nerf.data.dataparser import InstanceDataParserConfig
from instance_nerf.engine.trainer import WeightsOnlyTrainerConfig
from instance_nerf.models.instance_nerfacto import InstanceFieldConfig, InstanceNerfModelConfig


def _adam(lr: float, final: float, steps: int) -> dict:
    return {
        "optimizer": AdamOptimizerConfig(lr=lr, eps=1e-15),
        "scheduler": ExponentialDecaySchedulerConfig(lr_final=final, max_steps=steps),
    }


def nerfacto_optimizers(steps: int = 200000) -> dict:
    """The optimizer groups nerfacto uses (proposal networks, field, camera)."""
    return {
        "proposal_networks": _adam(1e-2, 1e-4, steps),
        "fields": _adam(1e-2, 1e-4, steps),
        "camera_opt": _adam(1e-3, 1e-4, 5000),
    }


def instance_optimizers(steps: int = 200000) -> dict:
    """Nerfacto's groups plus the instance field's."""
    return {**nerfacto_optimizers(steps), "instance_field": _adam(3e-2, 3e-3, steps)}


def instance_nerf_config() -> WeightsOnlyTrainerConfig:
    """Default trainer config of the ``instance-nerf`` method (``ns-train instance-nerf``)."""
    return WeightsOnlyTrainerConfig(
        method_name="instance-nerf",
        steps_per_eval_batch=500,
        steps_per_save=2000,
        max_num_iterations=30000,
        mixed_precision=True,
        pipeline=VanillaPipelineConfig(
            datamanager=InstanceDataManagerConfig(
                dataparser=InstanceDataParserConfig(),
                train_num_rays_per_batch=4096,
                eval_num_rays_per_batch=4096,
            ),
            model=InstanceNerfModelConfig(
                eval_num_rays_per_chunk=1 << 15, average_init_density=0.01
            ),
        ),
        optimizers=instance_optimizers(),
        viewer=ViewerConfig(num_rays_per_chunk=1 << 15),
        vis="viewer",
    )


def small_nerfacto_model(
    config_cls: type[NerfactoModelConfig] = NerfactoModelConfig, **overrides
) -> NerfactoModelConfig:
    """Nerfacto (or a subclass config) with the pure-torch backend and sizes that train in minutes on a CPU."""
    kw = dict(
        implementation="torch",
        eval_num_rays_per_chunk=4096,
        average_init_density=0.01,
        camera_optimizer=CameraOptimizerConfig(mode="off"),
        num_nerf_samples_per_ray=16,
        num_proposal_samples_per_ray=(48, 24),
        hidden_dim=32,
        hidden_dim_color=32,
        log2_hashmap_size=15,
        max_res=256,
        num_levels=8,
        proposal_net_args_list=[
            {
                "hidden_dim": 16,
                "log2_hashmap_size": 14,
                "num_levels": 4,
                "max_res": 64,
                "use_linear": False,
            },
            {
                "hidden_dim": 16,
                "log2_hashmap_size": 14,
                "num_levels": 4,
                "max_res": 128,
                "use_linear": False,
            },
        ],
    )
    kw.update(overrides)
    return config_cls(**kw)


def nerfacto_cpu_config(
    data: Path,
    dataparser: DataParserConfig,
    output_dir: Path,
    max_iters: int = 2,
    rays_per_batch: int = 64,
    model: NerfactoModelConfig | None = None,
    device: str = "cpu",
) -> WeightsOnlyTrainerConfig:
    """Trainer config for nerfacto with the single-process VanillaDataManager."""
    dataparser.data = Path(data)
    return WeightsOnlyTrainerConfig(
        method_name="nerfacto",
        experiment_name="nerfacto",
        timestamp="run",
        output_dir=output_dir,
        data=data,
        max_num_iterations=max_iters,
        steps_per_save=max(max_iters, 1),
        steps_per_eval_batch=10**9,
        steps_per_eval_image=10**9,
        steps_per_eval_all_images=10**9,
        mixed_precision=False,
        vis="tensorboard",
        machine=MachineConfig(device_type=device, num_devices=1),
        logging=LoggingConfig(steps_per_log=max(1, max_iters // 10)),
        viewer=ViewerConfig(quit_on_train_completion=True),
        pipeline=VanillaPipelineConfig(
            datamanager=VanillaDataManagerConfig(
                dataparser=dataparser,
                train_num_rays_per_batch=rays_per_batch,
                eval_num_rays_per_batch=rays_per_batch,
            ),
            model=model or small_nerfacto_model(),
        ),
        optimizers=nerfacto_optimizers(),
    )


def instance_cpu_config(
    data: Path,
    output_dir: Path,
    max_iters: int = 2,
    rays_per_batch: int = 256,
    nerfacto_checkpoint: Path | None = None,
    patch_size: int = 8,
    device: str = "cpu",
    **model_overrides,
) -> WeightsOnlyTrainerConfig:
    """instance-nerf on the InstanceDataParser; two-stage when ``nerfacto_checkpoint`` is given."""
    model = small_nerfacto_model(
        InstanceNerfModelConfig,
        instance_field=InstanceFieldConfig(num_levels=6, max_res=128, log2_hashmap_size=15),
        nerfacto_checkpoint=nerfacto_checkpoint,
    )
    cfg = nerfacto_cpu_config(
        data,
        InstanceDataParserConfig(data=Path(data)),
        output_dir,
        max_iters,
        rays_per_batch,
        model=dataclasses.replace(model, **model_overrides),
        device=device,
    )
    cfg.method_name = cfg.experiment_name = "instance-nerf"
    cfg.pipeline.datamanager = InstanceDataManagerConfig(
        dataparser=InstanceDataParserConfig(data=Path(data)),
        train_num_rays_per_batch=rays_per_batch,
        eval_num_rays_per_batch=rays_per_batch,
        patch_size=patch_size,
    )
    cfg.optimizers = instance_optimizers()
    return cfg
