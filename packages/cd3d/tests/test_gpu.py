"""CUDA paths: bf16 autocast + channels_last forward/backward and tiled predict on the GPU."""

import pytest
import torch

from cd3d.engine.infer import infer
from cd3d.engine.losses import ChangeLoss
from cd3d.models import ChangeDetector

pytestmark = pytest.mark.gpu
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@cuda
@pytest.mark.parametrize("name", ["siam_unet", "mtbit"])
def test_bf16_channels_last_train_step(name):
    dev = torch.device("cuda")
    det = (
        ChangeDetector(name, {"encoder_name": "resnet18"})
        .to(dev)
        .to(memory_format=torch.channels_last)
    )
    x = torch.rand(2, 3, 400, 400, device=dev).contiguous(memory_format=torch.channels_last)
    mask = (torch.rand(2, 400, 400, device=dev) > 0.9).long()
    h = torch.zeros(2, 200, 200, device=dev)
    opt = torch.optim.AdamW(det.parameters(), lr=1e-3)
    losses = []
    for _ in range(5):
        with torch.autocast("cuda", dtype=torch.bfloat16):
            logits, hh = det.forward_scaled(x, x.flip(-1))
        loss = ChangeLoss()(logits, hh, mask, h)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert hh.shape == (2, 1, 200, 200) and losses[-1] < losses[0]


@cuda
def test_infer_amp_matches_fp32():
    dev = torch.device("cuda")
    torch.manual_seed(0)
    det = ChangeDetector("siam_unet", {"encoder_name": "resnet18"}).to(dev).eval()
    a, b = torch.rand(1, 3, 256, 256, device=dev), torch.rand(1, 3, 256, 256, device=dev)
    p32, h32 = infer(det, a, b)
    p16, h16 = infer(det, a, b, amp=True)
    assert (p32 - p16).abs().max() < 0.1 and h16.shape == h32.shape
