"""Framework smoke test: timm Swin forward/backward and a tiny CLIP through the transformers
zero-shot pipeline, all offline with random weights."""

from __future__ import annotations

import numpy as np
import timm
import torch
from PIL import Image


def test_timm_tiny_swin_forward_backward():
    model = timm.create_model(
        "swin_tiny_patch4_window7_224",
        pretrained=False,
        num_classes=2,
        img_size=32,
        window_size=4,
        embed_dim=16,
        depths=(1, 1),
        num_heads=(1, 2),
    )
    x = torch.randn(2, 3, 32, 32)
    y = torch.tensor([0, 1])
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    first = None
    for _ in range(5):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        first = first if first is not None else loss.item()
    assert model(x).shape == (2, 2)
    assert float(loss) < first
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_tiny_clip_zero_shot_pipeline(tmp_path):
    from transformers import pipeline

    from bus_classify.models.tiny_vlm import build_tiny_clip, tiny_tokenizer

    tok = tiny_tokenizer()
    assert tok.pad_token_id == 0 and tok.bos_token_id == 2 and tok.eos_token_id == 3
    build_tiny_clip(tmp_path / "clip")
    pipe = pipeline("zero-shot-image-classification", model=str(tmp_path / "clip"), device="cpu")
    img = Image.fromarray((np.random.default_rng(0).random((48, 48, 3)) * 255).astype(np.uint8))
    res = pipe(
        img,
        candidate_labels=[
            "a breast ultrasound with no lump",
            "an ultrasound image of a breast lump",
        ],
        hypothesis_template="{}",
    )
    assert len(res) == 2 and abs(sum(r["score"] for r in res) - 1) < 1e-5
    assert abs(res[0]["score"] - res[1]["score"]) > 1e-4  # texts did not collapse
