"""The framework stack works: rasterio reads a real GeoTIFF and an smp Unet runs on it."""

import numpy as np
import rasterio
import segmentation_models_pytorch as smp
import torch


def test_rasterio_and_smp_unet_on_real_tile(raster_dir):
    with rasterio.open(raster_dir / "rgb1.tif") as src:
        arr = src.read()
        assert src.crs is not None and src.count == 3
    assert arr.shape == (3, 400, 400) and arr.dtype == np.uint8
    model = smp.Unet(
        "resnet18", encoder_weights=None, encoder_depth=3, decoder_channels=(16, 8, 4), classes=2
    )
    model.eval()
    x = torch.from_numpy(arr[:, :384, :384].astype(np.float32) / 255.0)[None]
    with torch.no_grad():
        y = model(x)
    assert y.shape == (1, 2, 384, 384)
    assert torch.isfinite(y).all()
