"""Siamese U-Net on any segmentation_models_pytorch encoder (including ``tu-*`` timm encoders)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
from segmentation_models_pytorch.decoders.unet.decoder import UnetDecoder
from segmentation_models_pytorch.encoders import get_encoder

from .common import FUSIONS, Heads, fuse, load_encoder_weights, pad_to_multiple
from .registry import register_model


@register_model("siam_unet")
class SiamUnet(nn.Module):
    """Encode both epochs, fuse each feature level (``diff``/``absdiff``/``concat``), decode with
    a U-Net decoder, and predict 2D change logits (input grid) and height change (half grid).

    The default ``diff`` keeps the sign of the change, which the 3D head needs to tell a new
    building (+dH) from a demolished one (-dH); ``absdiff`` is symmetric in the two epochs and
    therefore sign-blind (fine for 2D-only use). ``shared_encoder=False`` gives each epoch its
    own encoder. ``encoder_weights`` is passed to
    smp and should stay None unless the weights are cached locally; ``encoder_weights_path``
    loads a local state dict instead.
    """

    def __init__(
        self,
        encoder_name: str = "resnet18",
        encoder_depth: int = 5,
        encoder_weights: str | None = None,
        encoder_weights_path: str | None = None,
        decoder_channels: Sequence[int] = (256, 128, 64, 32, 16),
        fusion: str = "diff",
        shared_encoder: bool = True,
        in_channels: int = 3,
        classes: int = 2,
    ) -> None:
        super().__init__()
        if fusion not in FUSIONS:
            raise ValueError(f"unknown fusion {fusion!r}; choose from {FUSIONS}")
        if len(decoder_channels) != encoder_depth:
            raise ValueError(
                f"decoder_channels needs {encoder_depth} entries, got {len(decoder_channels)}"
            )
        self.fusion = fusion
        self.encoder = get_encoder(
            encoder_name, in_channels=in_channels, depth=encoder_depth, weights=encoder_weights
        )
        load_encoder_weights(self.encoder, encoder_weights_path)
        self.encoder_b = None
        if not shared_encoder:
            self.encoder_b = get_encoder(
                encoder_name, in_channels=in_channels, depth=encoder_depth, weights=encoder_weights
            )
            load_encoder_weights(self.encoder_b, encoder_weights_path)
        ch = list(self.encoder.out_channels)
        if fusion == "concat":
            ch = [2 * c for c in ch]
        self.decoder = UnetDecoder(ch, list(decoder_channels), n_blocks=encoder_depth)
        self.heads = Heads(decoder_channels[-1], classes)
        self.multiple = 2**encoder_depth

    def forward(
        self, before: torch.Tensor, after: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(logits_2d N×C×H×W, height N×1×⌈H/2⌉×⌈W/2⌉)``."""
        before, size = pad_to_multiple(before, self.multiple)
        after, _ = pad_to_multiple(after, self.multiple)
        if self.encoder_b is None:
            n = before.shape[0]
            feats = self.encoder(torch.cat([before, after], 0))
            fa, fb = [f[:n] for f in feats], [f[n:] for f in feats]
        else:
            fa, fb = self.encoder(before), self.encoder_b(after)
        fused = [fuse(a, b, self.fusion) for a, b in zip(fa, fb)]
        return self.heads(self.decoder(fused), size)
