"""CUDA checks (skipped without a GPU): bf16 channels_last Swin training step and the GPU
benchmark's quick path."""

from __future__ import annotations

import pytest
import torch

pytestmark = pytest.mark.gpu
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@needs_cuda
def test_swin_bf16_channels_last_step():
    from bus_classify.engine.module import BusClassifier

    m = BusClassifier(
        model="swin_tiny_patch4_window7_224", num_classes=2, img_size=224, channels_last=True
    ).cuda()
    opt = torch.optim.AdamW(m.parameters(), lr=1e-4)
    x = torch.randn(8, 3, 224, 224, device="cuda")
    y = torch.randint(0, 2, (8,), device="cuda")
    losses = []
    for _ in range(3):
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = torch.nn.functional.cross_entropy(m(x).float(), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


@needs_cuda
def test_gpu_benchmark_quick(capsys):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_swin.py"
    spec = importlib.util.spec_from_file_location("gpu_swin", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    res = mod.main(["--device", "cuda", "--quick"])
    assert res["results"]["train_b8"]["img_s"] > 0
