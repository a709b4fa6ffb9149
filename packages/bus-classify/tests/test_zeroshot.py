"""Zero-shot VLM paths end-to-end on tiny random models, and answer parsing."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bus_classify.eval.zeroshot import clip_probs, load_prompts, parse_label, zero_shot
from bus_classify.models.tiny_vlm import build_tiny_clip, build_tiny_llava


@pytest.mark.parametrize(
    "answer,label",
    [
        ("Label: lump. Reason: a hypoechoic mass is visible.", 1),
        ("Label: no lump\nReason: homogeneous tissue, no lump seen.", 0),
        ("label = No_Lump; reason: normal parenchyma", 0),
        ("There is no mass in this image. It looks normal.", 0),
        ("A spiculated malignant lesion is present.", 1),
        ("The breast tissue appears normal.", 0),
        ("lump or no lump", None),
        ("", None),
        ("I cannot tell from this image", None),
        ("mass the photo photo", 1),
    ],
)
def test_parse_label(answer, label):
    assert parse_label(answer) == label


def test_clip_zero_shot_end_to_end(tmp_path, split_csv):
    model = build_tiny_clip(tmp_path / "clip")
    m = zero_shot(model, split_csv, tmp_path / "out", kind="auto")
    saved = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert saved["details"]["argmax"]["n"] == m["details"]["argmax"]["n"] > 0
    assert 0 <= saved["accuracy"] <= 1
    assert (tmp_path / "out" / "answers.csv").exists()


def test_clip_prompts_do_not_collapse(tmp_path, busi_dir):
    from PIL import Image

    model = build_tiny_clip(tmp_path / "clip")
    img = Image.open(next((busi_dir / "benign").glob("benign (1).png"))).convert("RGB")
    probs = clip_probs(model, [img], load_prompts())
    assert probs.shape == (1, 2) and np.isclose(probs.sum(), 1.0)
    # distinct text embeddings give unequal prompt probabilities
    assert abs(probs[0, 0] - 0.5) > 1e-4


def test_generative_zero_shot_counts_unparsed(tmp_path, split_csv):
    model = build_tiny_llava(tmp_path / "llava")
    m = zero_shot(model, split_csv, tmp_path / "out", kind="auto", limit=3, max_new_tokens=6)
    d = m["details"]
    rows = (tmp_path / "out" / "answers.csv").read_text().strip().splitlines()
    assert len(rows) == 4  # header + 3
    n_unparsed = sum(1 for r in rows[1:] if ",unparsed," in r)
    assert d["unparsed"] == n_unparsed
    assert d["coverage"] == pytest.approx(1 - n_unparsed / 3)
