"""3D VGG backbone with an FPN: 4 levels (strides s₀, 2s₀, 4s₀, 8s₀), presets ``tiny``, ``small``, ``vgg19``."""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F
from torch import Tensor, nn


@dataclass(frozen=True)
class Preset:
    """Conv widths per level (a 2× max-pool before levels 1–3), FPN width and head sizes."""

    levels: tuple[tuple[int, ...], ...]
    fpn_ch: int
    fcos_convs: int
    box_fc: int
    mask_convs: int
    mask_ch: int


PRESETS = {
    "tiny": Preset(((16, 16), (32, 32), (64, 64), (64, 64)), 32, 2, 128, 2, 32),
    "small": Preset(((32, 32), (64, 64), (128, 128), (256, 256)), 128, 4, 256, 4, 128),
    # the paper's VGG19: 64×2 + 128×2 | 256×4 | 512×4 | 512×4, FPN 256
    "vgg19": Preset(((64, 64, 128, 128), (256,) * 4, (512,) * 4, (512,) * 4), 256, 4, 512, 4, 256),
}


def stem_stride_for(max_dim: int) -> int:
    """4 for grids ≥ 160 voxels, 2 for ≥ 48, else 1."""
    return 4 if max_dim >= 160 else (2 if max_dim >= 48 else 1)


def _conv(cin: int, cout: int, k: int = 3, s: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv3d(cin, cout, k, s, k // 2, bias=False), nn.BatchNorm3d(cout), nn.ReLU(inplace=True)
    )


class VGGFPN3D(nn.Module):
    """Stem (k7 conv, stride ``stem_stride``) → 4 VGG levels → FPN outputs of ``fpn_ch`` channels."""

    def __init__(self, preset: Preset, stem_stride: int, in_ch: int = 4):
        super().__init__()
        first = preset.levels[0][0]
        stem = [_conv(in_ch, first, 7, 2 if stem_stride >= 2 else 1)]
        if stem_stride == 4:
            stem.append(nn.MaxPool3d(3, 2, 1))
        self.stem = nn.Sequential(*stem)
        self.stages = nn.ModuleList()
        cin = first
        for i, widths in enumerate(preset.levels):
            layers: list[nn.Module] = [nn.MaxPool3d(2, 2, ceil_mode=True)] if i > 0 else []
            for w in widths:
                layers.append(_conv(cin, w))
                cin = w
            self.stages.append(nn.Sequential(*layers))
        outs = [w[-1] for w in preset.levels]
        self.lateral = nn.ModuleList(nn.Conv3d(c, preset.fpn_ch, 1) for c in outs)
        self.output = nn.ModuleList(
            nn.Conv3d(preset.fpn_ch, preset.fpn_ch, 3, padding=1) for _ in outs
        )
        self.strides = [stem_stride * 2**i for i in range(len(outs))]

    def forward(self, x: Tensor) -> list[Tensor]:
        feats = []
        x = self.stem(x)
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        lat = [lateral(f) for lateral, f in zip(self.lateral, feats)]
        for i in range(len(lat) - 2, -1, -1):
            lat[i] = lat[i] + F.interpolate(lat[i + 1], size=lat[i].shape[2:], mode="nearest")
        return [conv(t) for conv, t in zip(self.output, lat)]
