"""Datamanager with patch sampling for the smoothness regulariser (single process, no spawning)."""

from __future__ import annotations

from dataclasses import dataclass, field

from nerfstudio.data.datamanagers.base_datamanager import VanillaDataManager, VanillaDataManagerConfig

from instance_nerf.data.dataparser import InstanceDataParserConfig
from instance_nerf.data.dataset import InstanceDataset


@dataclass
class InstanceDataManagerConfig(VanillaDataManagerConfig):
    """VanillaDataManager config with 8x8 patches by default."""

    _target: type = field(default_factory=lambda: InstanceDataManager)
    dataparser: InstanceDataParserConfig = field(default_factory=InstanceDataParserConfig)
    patch_size: int = 8
    """Side of the square pixel patches; 1 = independent random pixels (no regulariser)."""


class InstanceDataManager(VanillaDataManager[InstanceDataset]):
    """Tags each training batch with its patch size so the model knows the ray layout."""

    config: InstanceDataManagerConfig

    def next_train(self, step: int):
        ray_bundle, batch = super().next_train(step)
        batch["patch_size"] = int(self.config.patch_size)
        return ray_bundle, batch
