"""Instance-NeRF model: nerfacto + an instance field rendered with the same weights as colour."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from nerfstudio.field_components.field_heads import FieldHeadNames
from nerfstudio.field_components.spatial_distortions import SceneContraction
from nerfstudio.model_components.losses import scale_gradients_by_distance_squared
from nerfstudio.models.nerfacto import NerfactoModel, NerfactoModelConfig
from torch.nn import Parameter

from instance_nerf.models.instance_field import InstanceNerfactoField
from instance_nerf.models.losses import instance_ce_loss, patch_smoothness_loss, render_logits
from instance_nerf.models.offline import latest_checkpoint, load_checkpoint, offline_lpips
from instance_nerf.models.palette import colorize

DEFAULT_NUM_INSTANCES = 8


@dataclass
class InstanceFieldConfig:
    """Sizes of the instance branch: its own hash grid and MLP (the geometry feature comes from nerfacto)."""

    num_levels: int = 16
    """Hash-grid levels."""
    max_res: int = 1024
    """Finest hash-grid resolution."""
    log2_hashmap_size: int = 17
    """log2 of the hash-table size per level."""
    hidden_dim: int = 64
    """Width of the logits MLP."""
    num_layers: int = 3
    """Layers of the logits MLP."""


@dataclass
class InstanceNerfModelConfig(NerfactoModelConfig):
    """Nerfacto config plus the instance field and its losses."""

    _target: type = field(default_factory=lambda: InstanceNerfModel)
    num_instances: int = 0
    """Number of logits L (background included); 0 = take it from the dataparser's metadata."""
    nerfacto_checkpoint: Path | None = None
    """Two-stage mode: a nerfacto .ckpt (or its run folder) to load before training the instance field."""
    init_checkpoint: Path | None = None
    """Stage B: an instance-nerf .ckpt (or run folder) whose every matching key is loaded, the instance field
    included; the NeRF part is then frozen like a nerfacto checkpoint's."""
    freeze_nerf: bool = True
    """With a nerfacto checkpoint, freeze density/colour and train only the instance field."""
    instance_loss_mult: float = 1.0
    """Weight of the instance losses relative to the colour loss (joint mode)."""
    regularizer_mult: float = 1.0
    """lambda: weight of the depth-weighted patch smoothness term relative to cross-entropy."""
    regularizer_depth_scale: float = 1.0
    """Depth differences are multiplied by this before exp(-d^2)."""
    instance_field: InstanceFieldConfig = field(default_factory=InstanceFieldConfig)
    """Sizes of the instance branch."""


class InstanceNerfModel(NerfactoModel):
    """Nerfacto with instance logits; joint training or two-stage (frozen nerfacto)."""

    config: InstanceNerfModelConfig

    def populate_modules(self) -> None:
        if self.config.predict_normals:
            raise ValueError("instance-nerf does not support predict_normals")
        with offline_lpips():
            super().populate_modules()
        meta = self.kwargs.get("metadata", {}) or {}
        num = self.config.num_instances or int(meta.get("num_instances", 0) or 0)
        self.num_instances = num if num > 0 else DEFAULT_NUM_INSTANCES
        contraction = (
            None if self.config.disable_scene_contraction else SceneContraction(order=float("inf"))
        )
        c = self.config
        self.field = InstanceNerfactoField(
            self.scene_box.aabb,
            hidden_dim=c.hidden_dim,
            num_levels=c.num_levels,
            max_res=c.max_res,
            base_res=c.base_res,
            features_per_level=c.features_per_level,
            log2_hashmap_size=c.log2_hashmap_size,
            hidden_dim_color=c.hidden_dim_color,
            hidden_dim_transient=c.hidden_dim_transient,
            spatial_distortion=contraction,
            num_images=self.num_train_data,
            use_average_appearance_embedding=c.use_average_appearance_embedding,
            appearance_embedding_dim=c.appearance_embed_dim if c.use_appearance_embedding else 0,
            average_init_density=c.average_init_density,
            implementation=c.implementation,
            num_instances=self.num_instances,
            instance_num_levels=c.instance_field.num_levels,
            instance_max_res=c.instance_field.max_res,
            instance_log2_hashmap_size=c.instance_field.log2_hashmap_size,
            instance_hidden_dim=c.instance_field.hidden_dim,
            instance_num_layers=c.instance_field.num_layers,
        )
        self.nerf_frozen = False
        start = c.init_checkpoint if c.init_checkpoint is not None else c.nerfacto_checkpoint
        if start is not None:
            self.load_nerfacto(start)
            if c.freeze_nerf:
                self.freeze_nerf()

    # ----------------------------------------------------------------- two-stage helpers
    def load_nerfacto(self, path: Path) -> None:
        """Load density/colour/proposal weights from a nerfacto checkpoint (weights_only)."""
        path = Path(path)
        if path.is_dir():
            sub = path / "nerfstudio_models"
            path = latest_checkpoint(sub if sub.is_dir() else path)
        state = load_checkpoint(path)["pipeline"]
        # a checkpoint from multi-GPU training keeps DDP's "module." inside the model prefix
        weights = {}
        for key, value in state.items():
            for prefix in ("_model.module.", "_model."):
                if key.startswith(prefix):
                    weights[key[len(prefix) :]] = value
                    break
        skip = ("lpips.", "camera_optimizer.", "device_indicator_param")
        weights = {k: v for k, v in weights.items() if not k.startswith(skip)}
        own = self.state_dict()
        bad = [k for k, v in weights.items() if k in own and own[k].shape != v.shape]
        if bad:
            raise ValueError(
                f"{path}: nerfacto weights do not fit this model (e.g. {bad[0]}: "
                f"{tuple(weights[bad[0]].shape)} vs {tuple(own[bad[0]].shape)}); use the same nerfacto sizes"
            )
        missing, unexpected = self.load_state_dict(weights, strict=False)
        missing = [k for k in missing if not k.startswith(("field.instance_", *skip))]
        if missing or unexpected:
            raise ValueError(
                f"{path}: not a nerfacto checkpoint (missing {missing[:3]}, unexpected {unexpected[:3]})"
            )

    def freeze_nerf(self) -> None:
        """Stop gradients to everything except the instance branch."""
        keep = {id(p) for p in self.field.instance_parameters()}
        for p in self.parameters():
            if id(p) not in keep:
                p.requires_grad_(False)
        self.nerf_frozen = True

    def get_param_groups(self) -> dict[str, list[Parameter]]:
        inst = self.field.instance_parameters()
        if self.nerf_frozen:
            return {"instance_field": inst}
        groups = {
            "proposal_networks": list(self.proposal_networks.parameters()),
            "fields": self.field.nerf_parameters(),
            "instance_field": inst,
        }
        self.camera_optimizer.get_param_groups(param_groups=groups)
        return groups

    # ----------------------------------------------------------------- forward
    def get_outputs(self, ray_bundle):
        # This repeats NerfactoModel.get_outputs instead of calling it, because the instance branch needs
        # two intermediates nerfacto does not return: the contracted sample positions and the geometry
        # feature of the final samples. Recomputing them would cost a second density pass. The nerfacto
        # part runs without gradients when the NeRF is frozen (two-stage mode).
        frozen = self.nerf_frozen
        with torch.set_grad_enabled(torch.is_grad_enabled() and not frozen):
            if self.training and not frozen:
                self.camera_optimizer.apply_to_raybundle(ray_bundle)
            ray_samples, weights_list, ray_samples_list = self.proposal_sampler(
                ray_bundle, density_fns=self.density_fns
            )
            density, geo = self.field.get_density(ray_samples)
            positions = self.field._sample_locations
            field_outputs = self.field.get_outputs(ray_samples, density_embedding=geo)
            field_outputs[FieldHeadNames.DENSITY] = density
            if self.config.use_gradient_scaling and not frozen:
                field_outputs = scale_gradients_by_distance_squared(field_outputs, ray_samples)
            weights = ray_samples.get_weights(field_outputs[FieldHeadNames.DENSITY])
            weights_list.append(weights)
            ray_samples_list.append(ray_samples)
            outputs = {
                "rgb": self.renderer_rgb(rgb=field_outputs[FieldHeadNames.RGB], weights=weights),
                "accumulation": self.renderer_accumulation(weights=weights),
                "expected_depth": self.renderer_expected_depth(
                    weights=weights, ray_samples=ray_samples
                ),
            }
            with torch.no_grad():
                outputs["depth"] = self.renderer_depth(weights=weights, ray_samples=ray_samples)
            for i in range(self.config.num_proposal_iterations):
                outputs[f"prop_depth_{i}"] = self.renderer_depth(
                    weights=weights_list[i], ray_samples=ray_samples_list[i]
                )
        logits = self.field.instance_logits(positions, geo)
        outputs["instance_logits"] = render_logits(logits, weights.detach())
        with torch.no_grad():
            outputs["instance"] = colorize(outputs["instance_logits"].argmax(dim=-1))
        if self.training:
            outputs["weights_list"] = weights_list
            outputs["ray_samples_list"] = ray_samples_list
        return outputs

    # ----------------------------------------------------------------- losses / metrics
    def get_metrics_dict(self, outputs, batch):
        metrics = super().get_metrics_dict(outputs, batch)
        if "instance" in batch:
            labels = batch["instance"].to(self.device).reshape(-1)
            valid = labels >= 0
            if bool(valid.any()):
                pred = outputs["instance_logits"].argmax(dim=-1)
                metrics["instance_acc"] = (pred[valid] == labels[valid]).float().mean()
        return metrics

    def get_loss_dict(self, outputs, batch, metrics_dict=None):
        if self.nerf_frozen:
            loss_dict = {}
        else:
            loss_dict = super().get_loss_dict(outputs, batch, metrics_dict)
        if "instance" not in batch:
            if self.nerf_frozen:
                raise ValueError(
                    "two-stage instance training needs instance masks (none in the batch)"
                )
            return loss_dict
        labels = batch["instance"].to(self.device)
        if int(labels.max()) >= self.num_instances:
            raise ValueError(
                f"instance id {int(labels.max())} >= num_instances {self.num_instances}"
            )
        mult = self.config.instance_loss_mult
        loss_dict["instance_ce_loss"] = mult * instance_ce_loss(outputs["instance_logits"], labels)
        patch = int(batch.get("patch_size", 1))
        if self.training and patch > 1 and self.config.regularizer_mult > 0:
            loss_dict["instance_reg_loss"] = (
                mult
                * self.config.regularizer_mult
                * patch_smoothness_loss(
                    outputs["instance_logits"],
                    outputs["expected_depth"],
                    patch,
                    self.config.regularizer_depth_scale,
                )
            )
        return loss_dict

    def get_image_metrics_and_images(self, outputs, batch):
        metrics, images = super().get_image_metrics_and_images(outputs, batch)
        images["instance"] = outputs["instance"]
        if "instance" in batch:
            gt = batch["instance"].to(self.device)[..., 0]
            valid = gt >= 0
            if bool(valid.any()):
                pred = outputs["instance_logits"].argmax(dim=-1)
                metrics["instance_acc"] = float((pred[valid] == gt[valid]).float().mean())
            images["instance"] = torch.cat([colorize(gt.clamp_min(0)), outputs["instance"]], dim=1)
        return metrics, images
