"""nerfstudio entry point: ``ns-train instance-nerf`` (imports the config module; nothing imports this one)."""

from __future__ import annotations

from nerfstudio.plugins.types import MethodSpecification

from instance_nerf.engine.config import instance_nerf_config

instance_nerf_method = MethodSpecification(
    config=instance_nerf_config(),
    description="Nerfacto + an instance field (Instance-NeRF): joint or two-stage on a nerfacto checkpoint",
)
