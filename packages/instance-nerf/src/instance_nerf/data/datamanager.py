"""Datamanager with patch sampling for the smoothness regulariser (single process, no spawning)."""

from __future__ import annotations

from dataclasses import dataclass, field

from nerfstudio.data.datamanagers.base_datamanager import (
    VanillaDataManager,
    VanillaDataManagerConfig,
)
from nerfstudio.data.pixel_samplers import PatchPixelSamplerConfig, PixelSampler

from instance_nerf.data.dataset import InstanceDataset


@dataclass
class InstanceDataManagerConfig(VanillaDataManagerConfig):
    """VanillaDataManager config with 8x8 patches by default."""

    _target: type = field(default_factory=lambda: InstanceDataManager)
    patch_size: int = 8
    """Side of the square pixel patches; 1 = independent random pixels (no regulariser)."""


class InstanceDataManager(VanillaDataManager[InstanceDataset]):
    """Tags each training batch with its patch size so the model knows the ray layout."""

    config: InstanceDataManagerConfig

    def _get_pixel_sampler(self, dataset: InstanceDataset, num_rays_per_batch: int) -> PixelSampler:
        # nerfstudio's PatchPixelSampler rounds the batch with its default patch size (32) before
        # reading the requested one, which gives 0 rays for batches < 1024; pass it up front.
        patch = int(self.config.patch_size)
        if patch > 1:
            if num_rays_per_batch < patch * patch:
                raise ValueError(
                    f"{num_rays_per_batch} rays per batch is less than one {patch}x{patch} patch"
                )
            return PatchPixelSamplerConfig(patch_size=patch).setup(
                patch_size=patch, num_rays_per_batch=num_rays_per_batch
            )
        return super()._get_pixel_sampler(dataset, num_rays_per_batch)

    def next_train(self, step: int):
        ray_bundle, batch = super().next_train(step)
        batch["patch_size"] = int(self.config.patch_size)
        return ray_bundle, batch
