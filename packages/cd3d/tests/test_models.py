"""Model shapes for several encoders, fusion modes, the registry and a loss that goes down."""

import pytest
import torch
import torch.nn as nn

import cd3d
from cd3d.engine.losses import ChangeLoss
from cd3d.models import ChangeDetector

#: small constructor arguments per registered model; a model missing here is built with its defaults
SMALL = {
    "siam_unet": {"encoder_name": "resnet18", "encoder_depth": 3, "decoder_channels": (16, 8, 8)},
    "mtbit": {"encoder_name": "resnet18", "dim": 16, "heads": 2, "decoder_channels": (16, 8, 8)},
    "pixel_mlp": {"hidden": 8},
}
SIZES = [(50, 70), (33, 32), (64, 64)]  # odd and non-multiple-of-stride sizes


@pytest.mark.parametrize("name", cd3d.list_models())
@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_registry_contract(name, size):
    """Every registered model: (before, after) -> logits N×2×H×W and height N×1×⌈H/2⌉×⌈W/2⌉, finite,
    trainable, and rebuildable by ChangeDetector from its config."""
    torch.manual_seed(0)
    h, w = size
    det = ChangeDetector(name, SMALL.get(name, {}), height_scale=10.0)
    x, y = torch.rand(2, 3, h, w), torch.rand(2, 3, h, w)
    logits, hh = det(x, y)
    assert logits.shape == (2, 2, h, w)
    assert hh.shape == (2, 1, (h + 1) // 2, (w + 1) // 2)
    assert torch.isfinite(logits).all() and torch.isfinite(hh).all()
    (logits.mean() + hh.mean()).backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in det.parameters())
    prob, ph = det.predict(x, y)
    assert (
        not det.training and prob.shape == (2, h, w) and ph.shape == (2, (h + 1) // 2, (w + 1) // 2)
    )
    assert ((prob >= 0) & (prob <= 1)).all()
    again = ChangeDetector(**det.config())
    again.load_state_dict(det.state_dict())
    torch.testing.assert_close(again.predict(x, y)[0], prob)


@pytest.mark.parametrize(
    "kw",
    [
        {
            "encoder_name": "tu-resnet10t",
            "encoder_depth": 3,
            "decoder_channels": (16, 8, 8),
            "fusion": "concat",
            "shared_encoder": False,
        },
        {
            "encoder_name": "mobilenet_v2",
            "encoder_depth": 4,
            "decoder_channels": (16, 16, 8, 8),
            "fusion": "diff",
        },
    ],
)
def test_siam_unet_encoders(kw):
    m = cd3d.create_model("siam_unet", **kw).eval()
    x = torch.rand(2, 3, 50, 70)  # sizes not divisible by the encoder stride
    with torch.no_grad():
        logits, h = m(x, x)
    assert logits.shape == (2, 2, 50, 70)
    assert h.shape == (2, 1, 25, 35)


def test_fusion_semantics():
    m = cd3d.create_model(
        "siam_unet", encoder_name="resnet18", encoder_depth=3, decoder_channels=(8, 8, 8)
    )
    with pytest.raises(ValueError, match="fusion"):
        cd3d.create_model("siam_unet", fusion="max")
    torch.manual_seed(0)
    sym = cd3d.create_model(
        "siam_unet",
        encoder_name="resnet18",
        encoder_depth=3,
        decoder_channels=(8, 8, 8),
        fusion="absdiff",
    ).eval()
    for head in (m.heads.head_3d[-1], sym.heads.head_3d[-1]):  # leave the zero init
        nn.init.normal_(head.weight)
    m.eval()
    a, b = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        # absdiff is symmetric: construction and demolition look the same to it
        for x, y in zip(sym(a, b), sym(b, a)):
            torch.testing.assert_close(x, y)
        # the default signed difference keeps the direction of the change
        assert m.fusion == "diff"
        assert not torch.allclose(m(a, b)[1], m(b, a)[1])


def test_registry_accepts_user_models():
    @cd3d.register_model("test_const")
    class Const(nn.Module):
        def __init__(self, value: float = 1.0):
            super().__init__()
            self.value = value
            self.p = nn.Parameter(torch.zeros(1))

        def forward(self, before, after):
            n, _, h, w = before.shape
            return torch.zeros(n, 2, h, w) + self.p, torch.full(
                (n, 1, h // 2, w // 2), self.value
            ) + self.p

    assert "test_const" in cd3d.list_models()
    det = ChangeDetector("test_const", {"value": 0.5}, height_scale=10.0)
    _, h = det(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8))
    assert torch.allclose(h, torch.full_like(h, 5.0))  # scaled units -> metres
    with pytest.raises(KeyError, match="unknown model"):
        cd3d.create_model("nope")


def test_loss_parts_and_training_lowers_loss():
    torch.manual_seed(0)
    before, after = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    mask = (after.mean(1) > 0.5).long()
    target = mask.float().reshape(2, 16, 2, 16, 2).mean((2, 4)) * 0.5
    det = ChangeDetector(
        "siam_unet",
        {"encoder_name": "resnet18", "encoder_depth": 3, "decoder_channels": (16, 8, 8)},
        height_scale=1.0,
    )
    crit = ChangeLoss(dice=0.5, focal=0.5, mask_3d_to_change=True)
    opt = torch.optim.AdamW(det.parameters(), lr=3e-3)
    losses = []
    for _ in range(25):
        logits, h = det.forward_scaled(before, after)
        parts = crit(logits, h, mask, target)
        assert set(parts) == {"ce", "dice", "focal", "mse", "loss"}
        opt.zero_grad()
        parts["loss"].backward()
        opt.step()
        losses.append(parts["loss"].item())
    assert losses[-1] < 0.5 * losses[0]


def test_loss_lambda_and_weights_by_hand():
    logits = torch.zeros(1, 2, 1, 2)
    mask = torch.tensor([[[0, 1]]])
    h, t = torch.tensor([[[[0.5]]]]), torch.tensor([[[0.0]]])
    parts = ChangeLoss(lambda_3d=2.0)(logits, h, mask, t)
    assert parts["ce"].item() == pytest.approx(torch.log(torch.tensor(2.0)).item())
    assert parts["loss"].item() == pytest.approx(parts["ce"].item() + 2 * 0.25)
