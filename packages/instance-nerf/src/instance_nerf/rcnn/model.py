"""NeRF-RCNN: VGG-FPN backbone + FCOS3D proposals + RoI heads; config, save and weights-only load."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn

from instance_nerf.data.io import InstanceNerfError, atomic_path
from instance_nerf.models.offline import load_weights
from instance_nerf.rcnn.backbone import PRESETS, VGGFPN3D, stem_stride_for
from instance_nerf.rcnn.fcos import FCOS3DHead, fcos_loss, fcos_postprocess
from instance_nerf.rcnn.heads import RoIHeads3D
from instance_nerf.rcnn.ops import paste_masks_3d


@dataclass
class NeRFRCNNConfig:
    """Everything needed to rebuild the network (stored in checkpoints as a plain dict)."""

    backbone: str = "tiny"
    """``tiny``, ``small`` or ``vgg19``."""
    classes: list[str] = field(default_factory=lambda: ["background", "box", "sphere", "cylinder"])
    """Class names, background first (L = len(classes))."""
    resolution: int = 64
    """Longest grid side the network was built for (sets the stem stride)."""
    in_channels: int = 4
    """RGB + alpha."""
    rpn_pre_nms: int = 2500
    rpn_post_nms_train: int = 2500
    rpn_post_nms_test: int = 2500
    rpn_nms: float = 0.3
    """Proposal NMS (paper: 0.3)."""
    det_nms: float = 0.15
    """Detection NMS per class (paper: 0.15)."""
    score_thresh: float = 0.5
    """Detections kept above this score (paper: 0.5)."""
    rois_per_scene: int = 512
    """Sampled RoIs per scene for the head losses (25 % positive)."""

    @property
    def stem_stride(self) -> int:
        return stem_stride_for(self.resolution)


class NeRFRCNN(nn.Module):
    """``forward(grids, targets)`` → losses in training; ``predict(grid)`` → boxes, labels, scores, masks."""

    def __init__(self, config: NeRFRCNNConfig):
        super().__init__()
        self.config = config
        preset = PRESETS[config.backbone]
        self.backbone = VGGFPN3D(preset, config.stem_stride, config.in_channels)
        self.strides = self.backbone.strides
        self.rpn = FCOS3DHead(preset.fpn_ch, len(self.strides), preset.fcos_convs)
        self.roi_heads = RoIHeads3D(
            self.strides,
            40.0 * self.strides[0],
            preset.fpn_ch,
            preset.box_fc,
            preset.mask_convs,
            preset.mask_ch,
            len(config.classes),
            config.rois_per_scene,
            score_thresh=0.05,
            nms=config.det_nms,
        )

    def proposals(
        self, feats: list[Tensor], grid_size: tuple[int, int, int], rpn_out=None
    ) -> list[Tensor]:
        c = self.config
        post = c.rpn_post_nms_train if self.training else c.rpn_post_nms_test
        out = fcos_postprocess(
            rpn_out or self.rpn(feats), self.strides, grid_size, c.rpn_pre_nms, c.rpn_nms, post
        )
        return [b for b, _ in out]

    def forward(self, grids: Tensor, targets: list[dict], stage: str = "all") -> dict[str, Tensor]:
        """Losses: ``rpn`` (backbone + FCOS), ``heads`` (RoI heads on frozen features) or ``all``."""
        size = tuple(grids.shape[2:])
        losses: dict[str, Tensor] = {}
        if stage == "heads":
            with torch.no_grad():
                feats = self.backbone(grids)
                rpn_out = self.rpn(feats)
        else:
            feats = self.backbone(grids)
            rpn_out = self.rpn(feats)
            losses.update(fcos_loss(rpn_out, self.strides, [t["boxes"] for t in targets]))
        if stage in ("heads", "all"):
            props = self.proposals([f.detach() for f in feats], size, rpn_out)
            losses.update(
                self.roi_heads(
                    feats if stage == "all" else [f.detach() for f in feats], props, targets
                )
            )
        return losses

    @torch.no_grad()
    def predict(
        self, grid: Tensor, score_thresh: float | None = None, with_proposals: bool = False
    ) -> dict[str, Tensor]:
        """One grid (4, W, L, H) → boxes (K, 6) voxels, labels, scores, masks (K, W, L, H) bool, sorted by score.

        ``with_proposals`` adds the FCOS proposals (``proposals`` (P, 6), ``proposal_scores``) after NMS.
        """
        self.eval()
        size = tuple(grid.shape[1:])
        feats = self.backbone(grid[None])
        c = self.config
        props, prop_scores = fcos_postprocess(
            self.rpn(feats), self.strides, size, c.rpn_pre_nms, c.rpn_nms, c.rpn_post_nms_test
        )[0]
        det = self.roi_heads.detect(feats, [props], size)[0]
        thresh = self.config.score_thresh if score_thresh is None else score_thresh
        keep = det["scores"] > thresh
        det = {k: v[keep] for k, v in det.items()}
        det["masks"] = paste_masks_3d(det.pop("mask_probs"), det["boxes"], size) >= 0.5
        if with_proposals:
            det["proposals"], det["proposal_scores"] = props, prop_scores
        return det

    # ------------------------------------------------------------------ checkpoints
    def checkpoint(self, **extra) -> dict:
        cfg = dataclasses.asdict(self.config)
        return {
            "config": cfg,
            "classes": list(self.config.classes),
            "state_dict": self.state_dict(),
            **extra,
        }

    def save(self, path: str | Path, **extra) -> Path:
        """``{config, classes, state_dict}`` (+ ``extra``), written atomically."""
        with atomic_path(path) as tmp:
            torch.save(self.checkpoint(**extra), tmp)
        return Path(path)

    @classmethod
    def load(cls, path: str | Path, map_location: str = "cpu") -> NeRFRCNN:
        """Rebuild from a checkpoint loaded with ``weights_only=True``."""
        state = read_rcnn_checkpoint(path)
        model = cls(NeRFRCNNConfig(**state["config"]))
        try:
            model.load_state_dict(state["state_dict"])
        except RuntimeError as exc:
            raise InstanceNerfError(
                f"{path}: weights do not fit the stored config ({str(exc).splitlines()[0]})"
            ) from None
        return model.to(map_location)

    def check_grid(self, grid: Tensor, source: str | Path) -> None:
        """A grid whose channels or size differ from the checkpoint's raises an error naming ``source``."""
        if grid.ndim != 4 or grid.shape[0] != self.config.in_channels:
            raise InstanceNerfError(
                f"{source}: grid has shape {tuple(grid.shape)}; expected ({self.config.in_channels}, W, L, H) "
                "(rgbsigma stored as (W, L, H, 4))"
            )
        if max(grid.shape[1:]) != self.config.resolution:
            raise InstanceNerfError(
                f"{source}: grid's longest side is {max(grid.shape[1:])} voxels, the checkpoint was trained at "
                f"{self.config.resolution} (extract the grid with --resolution {self.config.resolution})"
            )


def read_rcnn_checkpoint(path: str | Path) -> dict:
    """Weights-only read of a NeRF-RCNN checkpoint; checks its keys."""
    state = load_weights(path, what="instance-nerf RCNN checkpoint")
    if not isinstance(state, dict) or not {"config", "classes", "state_dict"} <= set(state):
        keys = sorted(state)[:4] if isinstance(state, dict) else type(state).__name__
        raise InstanceNerfError(
            f"{path}: not an instance-nerf RCNN checkpoint (has {keys}, needs config/classes/state_dict)"
        )
    return state
