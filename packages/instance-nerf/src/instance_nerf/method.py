"""nerfstudio entry point: ``ns-train instance-nerf``."""

from __future__ import annotations

from nerfstudio.configs.base_config import ViewerConfig
from nerfstudio.engine.optimizers import AdamOptimizerConfig
from nerfstudio.engine.schedulers import ExponentialDecaySchedulerConfig
from nerfstudio.pipelines.base_pipeline import VanillaPipelineConfig
from nerfstudio.plugins.types import MethodSpecification

from instance_nerf.data.datamanager import InstanceDataManagerConfig
from instance_nerf.data.dataparser import InstanceDataParserConfig
from instance_nerf.engine.configs import nerfacto_optimizers
from instance_nerf.engine.trainer import WeightsOnlyTrainerConfig
from instance_nerf.models.instance_nerfacto import InstanceNerfModelConfig


def instance_optimizers(steps: int = 200000) -> dict:
    """Nerfacto's groups plus the instance field's."""
    groups = nerfacto_optimizers(steps)
    groups["instance_field"] = {
        "optimizer": AdamOptimizerConfig(lr=3e-2, eps=1e-15),
        "scheduler": ExponentialDecaySchedulerConfig(lr_final=3e-3, max_steps=steps),
    }
    return groups


def instance_nerf_config() -> WeightsOnlyTrainerConfig:
    """Default trainer config of the ``instance-nerf`` method."""
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
            model=InstanceNerfModelConfig(eval_num_rays_per_chunk=1 << 15, average_init_density=0.01),
        ),
        optimizers=instance_optimizers(),
        viewer=ViewerConfig(num_rays_per_chunk=1 << 15),
        vis="viewer",
    )


instance_nerf_method = MethodSpecification(
    config=instance_nerf_config(),
    description="Nerfacto + an instance field (Instance-NeRF): joint or two-stage on a nerfacto checkpoint",
)
