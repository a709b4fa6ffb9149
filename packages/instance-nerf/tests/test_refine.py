"""Guided-filter refinement snaps a coarse mask onto an image edge; the composite rule."""

from __future__ import annotations

import numpy as np

from instance_nerf.refine.refiners import GuidedRefiner, box_mean, composite


def _step():
    img = np.zeros((64, 64, 3))
    img[:, 32:] = 1.0
    return img, np.broadcast_to(np.arange(64) >= 32, (64, 64))


def test_box_mean_clips_windows():
    x = np.arange(4.0)[None].repeat(3, 0)
    m = box_mean(x, 1)
    assert m[0, 0] == 0.5 and m[1, 1] == 1.0 and m[2, 3] == 2.5


def test_guided_filter_snaps_to_the_step():
    img, step = _step()
    ref = GuidedRefiner(radius=2, eps=1e-3)
    for start in (33, 31):
        coarse = np.broadcast_to(np.arange(64) >= start, (64, 64))
        out = ref(img, coarse) >= 0.5
        assert (out == step).all(), start
    assert ((ref(img, step) >= 0.5) == step).all()


def test_composite_takes_the_strongest_refined_instance():
    img, step = _step()
    ids = np.where(np.arange(64) >= 33, 2, 1)[None].repeat(
        64, 0
    )  # boundary one column off the edge
    out = composite(img, ids, GuidedRefiner(radius=2))
    assert (out[:, 32:] == 2).all() and (out[:, :32] == 1).all()
    assert composite(img, np.zeros((64, 64), int), GuidedRefiner()).max() == 0
