"""A bitemporal transformer in the spirit of MTBIT: CNN features → semantic tokens → transformer
encoder over both epochs' tokens → transformer decoder projecting tokens back onto pixels →
signed feature difference → U-Net style upsampling → 2D and 3D heads."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
from segmentation_models_pytorch.decoders.unet.decoder import UnetDecoder
from segmentation_models_pytorch.encoders import get_encoder

from .common import Heads, load_encoder_weights, pad_to_multiple
from .registry import register_model


class Tokenizer(nn.Module):
    """Spatial attention pooling of a feature map into ``length`` semantic tokens."""

    def __init__(self, dim: int, length: int) -> None:
        super().__init__()
        self.attn = nn.Conv2d(dim, length, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.attn(x).flatten(2).softmax(-1)  # N×L×HW
        return a @ x.flatten(2).transpose(1, 2)  # N×L×D


class CrossBlock(nn.Module):
    """Pixels (queries) attend to the tokens (keys/values), then an MLP; pre-norm residuals."""

    def __init__(self, dim: int, heads: int, mlp: int = 2) -> None:
        super().__init__()
        self.n1, self.n2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.mlp = nn.Sequential(nn.Linear(dim, dim * mlp), nn.GELU(), nn.Linear(dim * mlp, dim))

    def forward(self, x: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        q = self.n1(x)
        x = x + self.attn(q, tokens, tokens, need_weights=False)[0]
        return x + self.mlp(self.n2(x))


@register_model("mtbit")
class MTBITLike(nn.Module):
    """Multitask bitemporal image transformer (2D + 3D change) on an smp encoder."""

    def __init__(
        self,
        encoder_name: str = "resnet18",
        encoder_depth: int = 3,
        encoder_weights: str | None = None,
        encoder_weights_path: str | None = None,
        dim: int = 64,
        token_len: int = 4,
        enc_layers: int = 1,
        dec_layers: int = 2,
        heads: int = 4,
        decoder_channels: Sequence[int] = (64, 32, 16),
        in_channels: int = 3,
        classes: int = 2,
    ) -> None:
        super().__init__()
        if len(decoder_channels) != encoder_depth:
            raise ValueError(
                f"decoder_channels needs {encoder_depth} entries, got {len(decoder_channels)}"
            )
        self.encoder = get_encoder(
            encoder_name, in_channels=in_channels, depth=encoder_depth, weights=encoder_weights
        )
        load_encoder_weights(self.encoder, encoder_weights_path)
        ch = list(self.encoder.out_channels)
        self.proj = nn.Conv2d(ch[-1], dim, 1)
        self.tokenizer = Tokenizer(dim, token_len)
        self.token_pos = nn.Parameter(torch.randn(1, 2 * token_len, dim) * 0.02)
        layer = nn.TransformerEncoderLayer(
            dim, heads, dim * 2, dropout=0.0, batch_first=True, norm_first=True
        )
        self.token_encoder = nn.TransformerEncoder(layer, enc_layers, enable_nested_tensor=False)
        self.pixel_decoder = nn.ModuleList(CrossBlock(dim, heads) for _ in range(dec_layers))
        self.unproj = nn.Conv2d(dim, ch[-1], 1)
        self.decoder = UnetDecoder(ch, list(decoder_channels), n_blocks=encoder_depth)
        self.heads = Heads(decoder_channels[-1], classes)
        self.multiple = 2**encoder_depth
        self.token_len = token_len

    def _refine(self, x: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        n, d, h, w = x.shape
        q = x.flatten(2).transpose(1, 2)
        for blk in self.pixel_decoder:
            q = blk(q, tokens)
        return q.transpose(1, 2).reshape(n, d, h, w)

    def forward(
        self, before: torch.Tensor, after: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(logits_2d N×C×H×W, height N×1×⌈H/2⌉×⌈W/2⌉)``."""
        before, size = pad_to_multiple(before, self.multiple)
        after, _ = pad_to_multiple(after, self.multiple)
        n = before.shape[0]
        feats = self.encoder(torch.cat([before, after], 0))
        deep = self.proj(feats[-1])
        tok = self.tokenizer(deep)  # 2N×L×D
        tok = torch.cat([tok[:n], tok[n:]], 1) + self.token_pos  # N×2L×D: both epochs' tokens
        tok = self.token_encoder(tok)
        ta, tb = tok[:, : self.token_len], tok[:, self.token_len :]
        ra, rb = self._refine(deep[:n], ta), self._refine(deep[n:], tb)
        # signed differences (after - before): the 3D head needs the direction of the change
        fused = [f[n:] - f[:n] for f in feats[:-1]]
        fused.append(self.unproj(rb - ra))
        return self.heads(self.decoder(fused), size)
