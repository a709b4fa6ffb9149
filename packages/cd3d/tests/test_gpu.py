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


@cuda
def test_cuda_predict_matches_cpu(tmp_path):
    """The device pipeline (pinned reads, blending on the GPU, async copies) gives the CPU result."""
    import numpy as np
    import rasterio
    from rasterio.transform import Affine

    from cd3d.engine.predict import PredictConfig, predict_rasters

    rng = np.random.default_rng(0)
    prof = dict(driver="GTiff", width=300, height=260, count=3, dtype="uint8", crs="EPSG:25830",
                transform=Affine(0.5, 0, 355000, 0, -0.5, 4612000))  # fmt: skip
    for name in ("a.tif", "b.tif"):
        with rasterio.open(tmp_path / name, "w", **prof) as d:
            d.write(rng.integers(1, 256, (3, 260, 300), dtype=np.uint8))
    torch.manual_seed(0)
    det = ChangeDetector("pixel_mlp", {"hidden": 8}, height_scale=10.0)
    outs = {}
    for dev, amp in (("cpu", False), ("cuda", False), ("cuda", None)):
        cfg = PredictConfig(tile=96, overlap=32, batch_size=3, device=dev, amp=amp)
        paths = predict_rasters(det, tmp_path / "a.tif", tmp_path / "b.tif", tmp_path / f"{dev}{amp}", cfg,
                                progress=False)  # fmt: skip
        outs[dev, amp] = [rasterio.open(paths[k]).read(1) for k in ("change_2d", "change_3d")]
    (c2, c3), (g2, g3), (b2, b3) = outs.values()
    assert np.abs(c2.astype(int) - g2).max() <= 1 and np.allclose(c3, g3, atol=1e-3)
    assert np.abs(c2.astype(int) - b2).mean() < 2 and np.abs(c3 - b3).max() < 0.5  # bf16 default
