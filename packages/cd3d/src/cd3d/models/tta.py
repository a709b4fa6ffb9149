"""Test-time augmentation: the dihedral group D4 applied to both epochs and undone on both outputs.

The 3D map lives on the half-resolution grid; inputs are padded to even sizes first, so every flip
or 90° rotation of the image maps 2×2 pixel blocks onto 2×2 blocks and the same transform applied
to the half grid is exact.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

#: (number of 90° rotations, flip left-right before rotating)
D4: tuple[tuple[int, bool], ...] = tuple((k, f) for f in (False, True) for k in range(4))
FLIPS: tuple[tuple[int, bool], ...] = (
    (0, False),
    (0, True),
    (2, True),
    (2, False),
)  # id, lr, ud, both


def transforms(tta: bool | str) -> tuple[tuple[int, bool], ...]:
    """The transforms of a TTA mode: off (identity), ``True``/``"flip"`` (4 flips) or ``"d4"`` (8)."""
    if tta in (False, None, "none"):
        return ((0, False),)
    if tta in (True, "flip"):
        return FLIPS
    if tta == "d4":
        return D4
    raise ValueError(f"unknown tta mode {tta!r}; choose none, flip or d4")


def apply(x: torch.Tensor, t: tuple[int, bool]) -> torch.Tensor:
    """Apply transform ``t`` to the last two dimensions of ``x``."""
    k, flip = t
    if flip:
        x = x.flip(-1)
    return torch.rot90(x, k, dims=(-2, -1)) if k else x


def undo(x: torch.Tensor, t: tuple[int, bool]) -> torch.Tensor:
    """Inverse of :func:`apply`: ``undo(apply(x, t), t) == x``."""
    k, flip = t
    if k:
        x = torch.rot90(x, -k, dims=(-2, -1))
    return x.flip(-1) if flip else x


Model = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def predict_with_tta(
    model: Model,
    before: torch.Tensor,
    after: torch.Tensor,
    tta: bool | str = False,
    amp: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean change probability N×H×W and height N×⌈H/2⌉×⌈W/2⌉ over the transforms of ``tta``.

    Odd sizes are padded to even by edge replication so the half-resolution grid stays aligned.
    """
    h, w = before.shape[-2:]
    ph, pw = h % 2, w % 2
    if ph or pw:
        before = F.pad(before, (0, pw, 0, ph), mode="replicate")
        after = F.pad(after, (0, pw, 0, ph), mode="replicate")
    ts = transforms(tta)
    p_sum = h_sum = 0
    for t in ts:
        with torch.autocast(before.device.type, dtype=torch.bfloat16, enabled=amp):
            logits, hh = model(apply(before, t), apply(after, t))
        p_sum = p_sum + undo(logits.float().softmax(1)[:, 1], t)
        h_sum = h_sum + undo(hh.float()[:, 0], t)
    n = len(ts)
    return (p_sum / n)[:, :h, :w], (h_sum / n)[:, : (h + 1) // 2, : (w + 1) // 2]
