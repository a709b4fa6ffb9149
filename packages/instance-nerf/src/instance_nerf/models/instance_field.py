"""Nerfacto field with an extra instance branch: own hash grid + detached geometry feature -> logits."""

from __future__ import annotations

from typing import Literal

import torch
from nerfstudio.field_components.encodings import HashEncoding
from nerfstudio.field_components.mlp import MLP
from nerfstudio.fields.nerfacto_field import NerfactoField
from torch import Tensor, nn


class InstanceNerfactoField(NerfactoField):
    """NerfactoField plus ``instance_logits(positions, geo_feat)``.

    The instance branch never back-propagates into the density network: the geometry feature is
    detached, and positions are the contracted, [0, 1]-normalised sample positions that
    :meth:`get_density` already computed.
    """

    def __init__(
        self,
        *args,
        num_instances: int,
        instance_num_levels: int = 16,
        instance_max_res: int = 1024,
        instance_log2_hashmap_size: int = 17,
        instance_hidden_dim: int = 64,
        instance_num_layers: int = 3,
        implementation: Literal["tcnn", "torch"] = "torch",
        **kwargs,
    ) -> None:
        super().__init__(*args, implementation=implementation, **kwargs)
        if num_instances < 1:
            raise ValueError("num_instances must be >= 1 (background counts as one)")
        self.num_instances = num_instances
        self.instance_encoding = HashEncoding(
            num_levels=instance_num_levels,
            min_res=16,
            max_res=instance_max_res,
            log2_hashmap_size=instance_log2_hashmap_size,
            features_per_level=2,
            implementation=implementation,
        )
        self.instance_mlp = MLP(
            in_dim=self.instance_encoding.get_out_dim() + self.geo_feat_dim,
            num_layers=instance_num_layers,
            layer_width=instance_hidden_dim,
            out_dim=num_instances,
            activation=nn.ReLU(),
            out_activation=None,
            implementation=implementation,
        )

    def instance_parameters(self) -> list[nn.Parameter]:
        """Parameters of the instance branch only."""
        return list(self.instance_encoding.parameters()) + list(self.instance_mlp.parameters())

    def nerf_parameters(self) -> list[nn.Parameter]:
        """Density/colour parameters (everything except the instance branch)."""
        ids = {id(p) for p in self.instance_parameters()}
        return [p for p in self.parameters() if id(p) not in ids]

    def instance_logits(self, positions: Tensor, geo_feat: Tensor) -> Tensor:
        """Per-sample logits (..., L) from normalised positions (..., 3) and geometry features."""
        shape = positions.shape[:-1]
        enc = self.instance_encoding(positions.detach().reshape(-1, 3))
        feat = torch.cat([enc, geo_feat.detach().reshape(-1, self.geo_feat_dim).to(enc)], dim=-1)
        return self.instance_mlp(feat).reshape(*shape, self.num_instances).float()

    def normalized_positions(self, positions: Tensor) -> Tensor:
        """World positions -> the [0, 1] coordinates the hash grids use (same as get_density)."""
        if self.spatial_distortion is not None:
            pos = (self.spatial_distortion(positions) + 2.0) / 4.0
        else:
            from nerfstudio.data.scene_box import SceneBox

            pos = SceneBox.get_normalized_positions(positions, self.aabb)
        inside = ((pos > 0.0) & (pos < 1.0)).all(dim=-1, keepdim=True)
        return pos * inside
