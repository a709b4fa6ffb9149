"""Guided-filter refinement snaps a coarse mask onto an image edge; the composite rule."""

from __future__ import annotations

import numpy as np
import pytest

from instance_nerf.refine.refiners import GuidedRefiner, box_mean, composite, default_radius


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


def test_default_radius_is_two_percent_at_least_one():
    assert [default_radius((n, n)) for n in (32, 64, 100, 512)] == [1, 1, 2, 10]


def test_composite_never_erases_an_instance():
    # uniform guide: the filter is a double box blur; a 2x2 blob peaks at 4/9 after the first pass
    # (below 0.5), so it fades away, and the composite keeps its rendered pixels instead
    img = np.full((16, 16, 3), 0.5)
    ids = np.zeros((16, 16), int)
    ids[3:5, 3:5] = 1
    ids[8:16, 8:16] = 2  # a large block: its 8x8 interior survives a 3x3 blur
    assert (GuidedRefiner(radius=1)(img, ids == 1) < 0.5).all()
    out = composite(img, ids, GuidedRefiner(radius=1))
    assert (out[3:5, 3:5] == 1).all() and (out == 1).sum() == 4
    assert (out[9:15, 9:15] == 2).all() and (out[ids == 0] == 0).all()


def test_cascadepsp_needs_a_local_weights_file(tmp_path):

    from instance_nerf.data.io import InstanceNerfError
    from instance_nerf.engine.pipeline import make_refiner

    with pytest.raises(InstanceNerfError, match=r"cascade/model: CascadePSP weights not found"):
        make_refiner("cascadepsp", tmp_path / "cascade")
    with pytest.raises(InstanceNerfError, match="needs --cascadepsp-dir"):
        make_refiner("cascadepsp", None)
    assert not (tmp_path / "cascade").exists()  # nothing created, nothing downloaded


@pytest.mark.slow
def test_cascadepsp_random_weights_plumbing(tmp_path):
    """A random-weight CascadePSP network (the optional package's) saved as DataParallel would save it."""
    import torch

    pytest.importorskip("segmentation_refinement")
    from segmentation_refinement.models.psp.pspnet import RefinementModule

    from instance_nerf.data.io import InstanceNerfError
    from instance_nerf.refine.cascadepsp import CascadePSPRefiner

    torch.manual_seed(0)
    net = RefinementModule()
    (tmp_path / "w").mkdir()
    torch.save({f"module.{k}": v for k, v in net.state_dict().items()}, tmp_path / "w" / "model")
    img, mask = _step()
    for fast in (True, False):
        ref = CascadePSPRefiner(tmp_path / "w", fast=fast, size=128)
        q = ref(img, mask)
        assert q.shape == (64, 64) and q.dtype == np.float64 and 0 <= q.min() <= q.max() <= 1
    ids = composite(img, mask.astype(np.int64) * 3, ref)
    assert set(np.unique(ids)) <= {0, 3}
    torch.save({"other": torch.zeros(1)}, tmp_path / "w" / "model")
    with pytest.raises(InstanceNerfError, match="model: not a CascadePSP weights file"):
        CascadePSPRefiner(tmp_path / "w")
