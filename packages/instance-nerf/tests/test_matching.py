"""Projection of a known box and the paper's matching rule, on hand-checked numbers."""

from __future__ import annotations

import numpy as np
import pytest

from instance_nerf.matching.match import match_view
from instance_nerf.matching.project import PinholeCamera, project_instances


def _box_scene():
    mask = np.zeros((20, 20, 20), dtype=np.int16)
    mask[6:14, 6:14, 0:10] = 1  # the box [.3,.7]² × [0,.5] in a [0,1]³ grid
    c2w = np.eye(4)
    c2w[:3, 3] = [0.5, 0.5, 2.0]  # looking down −z, right +x, up +y
    cam = PinholeCamera(c2w, 64.0, 64.0, 32.0, 32.0, 64, 64)
    return mask, cam


def test_raycast_known_box_is_the_pinhole_rectangle():
    mask, cam = _box_scene()
    lab = project_instances(mask, mask > 0, np.zeros(3), np.ones(3), cam, "raycast")
    rows, cols = np.nonzero(lab)
    assert len(rows) == 324 and (lab[lab > 0] == 1).all()
    assert rows.min() == 23 and rows.max() == 40 and cols.min() == 23 and cols.max() == 40


def test_splat_known_box_covers_the_centres_only_nearby():
    mask, cam = _box_scene()
    lab = project_instances(mask, mask > 0, np.zeros(3), np.ones(3), cam, "splat")
    assert (lab[24:40, 24:40] == 1).all()
    rows, cols = np.nonzero(lab)
    assert rows.min() >= 22 and rows.max() <= 41 and cols.min() >= 22 and cols.max() <= 41


def test_raycast_occluder_hides_the_mask():
    mask, cam = _box_scene()
    occ = mask > 0
    occ[:, :, 15] = True  # an unmasked slab above the box
    lab = project_instances(mask, occ, np.zeros(3), np.ones(3), cam, "raycast")
    assert lab.max() == 0


def _view():
    seg = np.zeros((6, 6), dtype=np.int64)
    seg[0:4, 0:4] = 1  # A
    seg[4:6, 4:6] = 2  # B
    seg[0, 5] = 3  # C
    proj = np.zeros((6, 6), dtype=np.int64)
    proj[0:4, 0:3] = 7
    proj[3:6, 3:6] = 9
    proj[0:4, 0:3] = 7
    segments = [{"id": i, "is_background": False} for i in (1, 2, 3)]
    return seg, segments, proj


def test_match_rule_on_six_by_six_view():
    seg, segments, proj = _view()
    ids, stats = match_view(seg, segments, proj)
    assert (ids[0:4, 0:4] == 7).all()  # IoU 12/16 with 7, 1/24 with 9
    assert (ids[4:6, 4:6] == 9).all()  # 4/9
    assert ids[0, 5] == -1  # no overlap
    assert (ids[seg == 0] == -1).all()  # void
    assert stats["matched"] == 2 and stats["unmatched"] == 1


def test_match_threshold_is_strictly_above_five_percent():
    seg = np.zeros((5, 4), dtype=np.int64)
    seg[:] = 1  # a 20-px segment
    segments = [{"id": 1, "is_background": False}]
    proj = np.zeros((5, 4), dtype=np.int64)
    proj[0, 0] = 4  # 1 px: IoU .05 → unmatched
    assert (match_view(seg, segments, proj)[0] == -1).all()
    proj[0, 1] = 4  # 2 px: IoU .1 → matched
    assert (match_view(seg, segments, proj)[0] == 4).all()


def test_split_and_merge():
    proj = np.zeros((4, 8), dtype=np.int64)
    proj[:, :4] = 3
    seg = np.zeros((4, 8), dtype=np.int64)
    seg[:, :2], seg[:, 2:4] = 1, 2  # two halves of projection 3
    segs = [{"id": 1}, {"id": 2}]
    ids, _ = match_view(seg, segs, proj)
    assert (ids[:, :4] == 3).all()

    proj = np.zeros((4, 4), dtype=np.int64)
    proj.reshape(-1)[:10] = 1
    proj.reshape(-1)[10:] = 2
    seg = np.ones((4, 4), dtype=np.int64)  # G covers 10 px of 1 and 6 of 2
    ids, _ = match_view(seg, [{"id": 1}], proj)
    assert (ids == 1).all()  # IoU .625 vs .375
    ids, _ = match_view(seg, [{"id": 1}], proj, split_merged=True)
    assert (ids == proj).all()


def test_no_projection_void_and_background():
    seg = np.array([[0, 1], [2, 2]])
    segs = [{"id": 1, "is_background": True}, {"id": 2, "is_background": False}]
    ids, _ = match_view(seg, segs, np.zeros((2, 2), dtype=np.int64))
    assert ids.tolist() == [[-1, 0], [-1, -1]]


@pytest.mark.parametrize("mode", ["raycast", "splat"])
def test_projection_on_synthetic_scene_agrees_with_gt(tiny_scene, tmp_path, mode):
    """Oracle 3D masks projected into the views reproduce most GT object pixels."""
    from instance_nerf.data.dataset import load_instance_mask
    from instance_nerf.data.io import read_npz
    from instance_nerf.matching.scene import oracle_masks3d, project_scene

    m3d = oracle_masks3d(tiny_scene, tmp_path / "masks3d.npz")
    occ = read_npz(tiny_scene / "scene.npz")["instance_grid"] >= 0
    counts = project_scene(tiny_scene, occ, m3d, tmp_path / "proj", mode)
    agree, total = 0, 0
    for stem in counts:
        gt = load_instance_mask(tiny_scene / "instances" / f"{stem}.png")
        pr = load_instance_mask(tmp_path / "proj" / f"{stem}.png")
        obj = gt > 0
        agree += int((pr[obj] == gt[obj]).sum())
        total += int(obj.sum())
    assert total > 0 and agree / total > (0.8 if mode == "raycast" else 0.6)
