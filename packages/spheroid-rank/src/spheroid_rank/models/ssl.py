"""SSL methods composed from lightly blocks: SimCLR (default), BYOL, DINO, MAE.

Every method exposes ``loss(views, epoch, max_epochs)``, ``embed(x)`` and
``after_step(step, total)`` (momentum updates), so one Lightning module trains them all.
"""

from __future__ import annotations

import copy
import math

import torch
from lightly.loss import DINOLoss, NegativeCosineSimilarity, NTXentLoss
from lightly.models import utils as lutils
from lightly.models.modules import (
    BYOLPredictionHead,
    BYOLProjectionHead,
    DINOProjectionHead,
    SimCLRProjectionHead,
)
from lightly.models.modules.masked_vision_transformer_decoder_timm import (
    MaskedVisionTransformerDecoderTIMM,
)
from lightly.models.modules.masked_vision_transformer_timm import MaskedVisionTransformerTIMM
from lightly.models.utils import deactivate_requires_grad, update_momentum
from lightly.utils.scheduler import cosine_schedule
from torch import Tensor, nn

from spheroid_rank.models.backbones import create_backbone, feature_dim

METHODS: dict[str, type[SSLMethod]] = {}


def register_method(name: str):
    """Class decorator adding an SSL method to :data:`METHODS`."""

    def deco(cls):
        METHODS[name] = cls
        cls.method_name = name
        return cls

    return deco


class SSLMethod(nn.Module):
    """Base class: a backbone plus method-specific heads."""

    method_name = "base"

    def __init__(self, backbone: str, in_chans: int, img_size: int) -> None:
        super().__init__()
        self.backbone = create_backbone(backbone, in_chans, img_size)
        self.dim = feature_dim(self.backbone)

    def embed(self, x: Tensor) -> Tensor:
        return self.backbone(x)

    def loss(self, views: list[Tensor], epoch: int, max_epochs: int) -> Tensor:
        raise NotImplementedError

    def after_step(self, step: int, total: int) -> None:
        """Hook after an optimiser step (momentum encoders)."""


@register_method("simclr")
class SimCLR(SSLMethod):
    """SimCLR: projection head + NT-Xent over two views."""

    def __init__(
        self,
        backbone: str = "resnet18",
        in_chans: int = 1,
        img_size: int = 64,
        proj_dim: int = 128,
        temperature: float = 0.2,
    ) -> None:
        super().__init__(backbone, in_chans, img_size)
        self.head = SimCLRProjectionHead(self.dim, 512, proj_dim)
        self.criterion = NTXentLoss(temperature=temperature)

    def loss(self, views, epoch, max_epochs):
        z0, z1 = (self.head(self.backbone(v)) for v in views[:2])
        return self.criterion(z0, z1)


@register_method("byol")
class BYOL(SSLMethod):
    """BYOL: online projection+prediction, momentum target, negative cosine similarity."""

    def __init__(
        self, backbone: str = "resnet18", in_chans: int = 1, img_size: int = 64, proj_dim: int = 128
    ) -> None:
        super().__init__(backbone, in_chans, img_size)
        self.projection = BYOLProjectionHead(self.dim, 1024, proj_dim)
        self.prediction = BYOLPredictionHead(proj_dim, 1024, proj_dim)
        self.backbone_m = copy.deepcopy(self.backbone)
        self.projection_m = copy.deepcopy(self.projection)
        deactivate_requires_grad(self.backbone_m)
        deactivate_requires_grad(self.projection_m)
        self.criterion = NegativeCosineSimilarity()

    def loss(self, views, epoch, max_epochs):
        x0, x1 = views[:2]
        p0 = self.prediction(self.projection(self.backbone(x0)))
        p1 = self.prediction(self.projection(self.backbone(x1)))
        with torch.no_grad():
            t0 = self.projection_m(self.backbone_m(x0))
            t1 = self.projection_m(self.backbone_m(x1))
        return 0.5 * (self.criterion(p0, t1) + self.criterion(p1, t0))

    def after_step(self, step, total):
        m = cosine_schedule(step, max(total, 1), 0.99, 1.0)
        update_momentum(self.backbone, self.backbone_m, m)
        update_momentum(self.projection, self.projection_m, m)


@register_method("dino")
class DINO(SSLMethod):
    """DINO with two global views: student/teacher heads and lightly's DINOLoss."""

    def __init__(
        self, backbone: str = "resnet18", in_chans: int = 1, img_size: int = 64, out_dim: int = 1024
    ) -> None:
        super().__init__(backbone, in_chans, img_size)
        self.head = DINOProjectionHead(self.dim, 512, 64, out_dim, batch_norm=True)
        self.backbone_t = copy.deepcopy(self.backbone)
        self.head_t = DINOProjectionHead(self.dim, 512, 64, out_dim, batch_norm=True)
        self.head_t.load_state_dict(self.head.state_dict())
        deactivate_requires_grad(self.backbone_t)
        deactivate_requires_grad(self.head_t)
        self.criterion = DINOLoss(output_dim=out_dim, warmup_teacher_temp_epochs=5)

    def loss(self, views, epoch, max_epochs):
        with torch.no_grad():
            teacher = [self.head_t(self.backbone_t(v)) for v in views]
        student = [self.head(self.backbone(v)) for v in views]
        return self.criterion(teacher, student, epoch=min(epoch, 4))

    def after_step(self, step, total):
        m = cosine_schedule(step, max(total, 1), 0.996, 1.0)
        update_momentum(self.backbone, self.backbone_t, m)
        update_momentum(self.head, self.head_t, m)


@register_method("mae")
class MAE(SSLMethod):
    """Masked autoencoder on a timm ViT (patch 8) with lightly's masked ViT blocks."""

    def __init__(
        self,
        backbone: str = "vit_tiny_patch16_224",
        in_chans: int = 1,
        img_size: int = 64,
        mask_ratio: float = 0.75,
        decoder_dim: int = 128,
    ) -> None:
        nn.Module.__init__(self)
        if not backbone.startswith(("vit", "deit")):
            raise ValueError(f"MAE needs a ViT backbone, got {backbone!r}")
        vit = create_backbone(backbone, in_chans, img_size)
        self.backbone = MaskedVisionTransformerTIMM(vit=vit)
        self.dim = vit.embed_dim
        self.patch = vit.patch_embed.patch_size[0]
        self.seq_len = self.backbone.sequence_length
        self.mask_ratio = mask_ratio
        self.decoder_embed = nn.Linear(self.dim, decoder_dim)
        self.decoder = MaskedVisionTransformerDecoderTIMM(
            num_patches=vit.patch_embed.num_patches, embed_dim=decoder_dim, depth=2, num_heads=4
        )
        self.predict = nn.Linear(decoder_dim, self.patch**2 * in_chans)

    def embed(self, x: Tensor) -> Tensor:
        return self.backbone(x)  # class token of the unmasked image

    def loss(self, views, epoch, max_epochs):
        images = views[0]
        b = images.shape[0]
        idx_keep, idx_mask = lutils.random_token_mask(
            size=(b, self.seq_len), mask_ratio=self.mask_ratio, device=images.device
        )
        enc = self.backbone.encode(images=images, idx_keep=idx_keep)
        x = self.decoder_embed(enc)
        full = lutils.repeat_token(self.decoder.mask_token, (b, self.seq_len)).to(x.dtype)
        full = lutils.set_at_index(full, idx_keep, x)
        pred = self.predict(self.decoder(full))
        pred = lutils.get_at_index(pred, idx_mask)
        target = lutils.get_at_index(lutils.patchify(images, self.patch), idx_mask - 1)
        return nn.functional.mse_loss(pred, target)


def build_method(name: str, **kwargs) -> SSLMethod:
    """Instantiate a registered SSL method."""
    if name not in METHODS:
        raise ValueError(f"unknown SSL method {name!r}; choose from {sorted(METHODS)}")
    return METHODS[name](**kwargs)


def warmup_cosine(step: int, total: int, warmup: int) -> float:
    """Learning-rate factor: linear warm-up then cosine decay to 0.1."""
    if step < warmup:
        return (step + 1) / max(warmup, 1)
    t = (step - warmup) / max(total - warmup, 1)
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(t, 1.0)))
