"""D4 test-time augmentation: each transform is undone, and TTA of an equivariant model is a no-op."""

import pytest
import torch
import torch.nn as nn

from cd3d.models import ChangeDetector
from cd3d.models.tta import D4, FLIPS, apply, transforms, undo
from cd3d.models.wrapper import Predictor


def test_each_transform_is_undone_and_all_eight_differ():
    x = torch.rand(2, 3, 6, 6)
    seen = []
    for t in D4:
        y = apply(x, t)
        torch.testing.assert_close(undo(y, t), x, rtol=0, atol=0)
        assert not any(torch.equal(y, s) for s in seen)
        seen.append(y)
    assert len(seen) == 8 and set(FLIPS) <= set(D4)
    # on a non-square map a 90° rotation swaps the axes and undo swaps them back
    r = torch.rand(1, 4, 10)
    assert apply(r, (1, False)).shape == (1, 10, 4) and undo(apply(r, (3, True)), (3, True)).equal(
        r
    )
    assert (
        transforms(False) == ((0, False),)
        and len(transforms(True)) == 4
        and len(transforms("d4")) == 8
    )
    with pytest.raises(ValueError, match="tta mode"):
        transforms("rot45")


class GroupAveraged(Predictor, nn.Module):
    """A Siamese U-Net made D4-equivariant by averaging its outputs over the group."""

    def __init__(self) -> None:
        super().__init__()
        kw = {"encoder_name": "resnet18", "encoder_depth": 3, "decoder_channels": (8, 8, 8)}
        self.det = ChangeDetector("siam_unet", kw, height_scale=5.0)
        nn.init.normal_(self.det.net.heads.head_3d[-1].weight, std=0.1)  # leave the zero init

    def forward(self, before, after):
        logits = height = 0
        for t in D4:
            lo, h = self.det(apply(before, t), apply(after, t))
            logits, height = logits + undo(lo, t), height + undo(h, t)
        return logits / 8, height / 8


@pytest.mark.parametrize("size", [(32, 32), (32, 48), (33, 50)])
def test_tta_of_equivariant_models_equals_plain(size):
    torch.manual_seed(0)
    before, after = torch.rand(2, 3, *size), torch.rand(2, 3, *size)
    pixel = ChangeDetector("pixel_mlp", {"hidden": 8}, height_scale=10.0)  # 1×1 convs + 2×2 pooling
    for model in (pixel, GroupAveraged()):
        p0, h0 = model.predict(before, after)
        for mode in ("flip", "d4"):
            p, h = model.predict(before, after, tta=mode)
            assert p.shape == p0.shape == (2, *size) and h.shape == h0.shape
            torch.testing.assert_close(p, p0, atol=1e-5, rtol=1e-4)
            torch.testing.assert_close(h, h0, atol=1e-4, rtol=1e-4)
    # a plain (not equivariant) network does change under TTA, so the comparison above can fail
    plain = GroupAveraged().det
    assert not torch.allclose(
        plain.predict(before, after, tta="d4")[1], plain.predict(before, after)[1]
    )
