"""Mask2Former plumbing offline with a tiny random model; the class map; our merge equals the processor's."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from instance_nerf.data.io import InstanceNerfError
from instance_nerf.masks2d.classmap import load_class_map

LABELS = ["chair", "wall-other-merged", "person"]


@pytest.fixture(scope="module")
def tiny_m2f(tmp_path_factory):
    from instance_nerf.masks2d.mask2former import tiny_mask2former

    return tiny_mask2former(tmp_path_factory.mktemp("m2f"), LABELS)


def test_class_map_by_name():
    cm = load_class_map("coco_to_nyu40")
    assert cm.lookup("chair") == (5, False) and cm.lookup("Couch") == (6, False)
    assert cm.lookup("wall-other-merged") == (0, True) and cm.lookup("person") == (39, False)
    with pytest.raises(InstanceNerfError, match="none of its 2 labels"):
        load_class_map("coco_to_nyu40").__class__({"chair": 5}, set(), None).model_table(
            {0: "cat", 1: "dog"}
        )


def test_segmenter_offline_and_merge_equal(tiny_m2f, monkeypatch):
    from instance_nerf.masks2d.mask2former import Mask2FormerSegmenter, panoptic_merge

    seg_model = Mask2FormerSegmenter(tiny_m2f, threshold=0.0, resize=False)
    import os

    assert os.environ["HF_HUB_OFFLINE"] == "1"
    img = (np.random.default_rng(0).random((64, 64, 3)) * 255).astype(np.uint8)
    seg, records = seg_model(img)
    assert seg.shape == (64, 64) and seg.min() >= 0
    assert set(np.unique(seg[seg > 0]).tolist()) <= {r["id"] for r in records}
    assert all(r["class_id"] in (0, 5, 39) for r in records)
    out = seg_model.raw(img)
    for thr in (0.0, 0.2):
        ref = seg_model.processor.post_process_panoptic_segmentation(
            out, threshold=thr, label_ids_to_fuse=set(), target_sizes=[(64, 64)]
        )[0]
        ours, segs = panoptic_merge(
            out.class_queries_logits[0], out.masks_queries_logits[0], (64, 64), thr
        )
        ref_seg = ref["segmentation"].to(torch.int32)
        if not ref["segments_info"]:
            ref_seg = torch.zeros_like(ref_seg)
        assert torch.equal(ours, ref_seg) and segs == ref["segments_info"]


def test_bad_model_folders(tmp_path, tiny_m2f):
    from instance_nerf.masks2d.mask2former import check_model_dir

    with pytest.raises(InstanceNerfError, match="not found"):
        check_model_dir(tmp_path / "nope")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(InstanceNerfError, match="not a Mask2Former"):
        check_model_dir(tmp_path / "other")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "config.json").write_text((tiny_m2f / "config.json").read_text())
    with pytest.raises(InstanceNerfError, match="no weights"):
        check_model_dir(tmp_path / "empty")
