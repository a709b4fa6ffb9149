"""Grid extraction and point queries on an analytic field (no training needed)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from instance_nerf.engine.grid import extract_grid, grid_axes, query_points, write_ply


def analytic(p: torch.Tensor, dirs: torch.Tensor):
    sigma = torch.where(p.norm(dim=-1) < 0.5, 10.0, 0.0)
    rgb = ((dirs + 1) / 2).mean(0)  # averaged over the view directions
    logits = torch.stack([(p[:, 0] < 0).float(), (p[:, 0] >= 0).float()], -1) * 5
    return rgb, sigma, logits


def test_grid_convention_on_analytic_field():
    aabb = np.array([[-1.0, -1.0, -1.0], [1.0, 1.0, 0.5]])
    cams = torch.tensor([[0.0, 0.0, 10.0], [0.0, 0.0, -10.0]])
    g = extract_grid(analytic, aabb, 8, cams, chunk=50)
    assert g["rgbsigma"].shape == (8, 8, 6, 4)  # (W, L, H, 4): x, y, z with the longest side = 8
    axes = grid_axes(aabb, 8)
    assert axes[2][0] == pytest.approx(-1 + 0.125) and axes[2][-1] == pytest.approx(0.5 - 0.125)
    assert (g["instance"][:4] == 0).all() and (g["instance"][4:] == 1).all()  # x < 0 -> id 0
    sig = g["rgbsigma"][..., 3]
    assert (
        sig[3, 3, 3] == 10.0 and sig[0, 0, 0] == 0.0
    )  # (-.125,-.125,-.125) inside; corner outside
    # rgb: z-components of the two view directions cancel -> 0.5; x,y symmetric -> 0.5 at the centre
    assert np.allclose(g["rgbsigma"][..., 2], 0.5, atol=0.01)
    assert g["instance_prob"].min() > 0.99
    ga = extract_grid(analytic, aabb, 8, cams, alpha=True)
    assert ga["rgbsigma"][3, 3, 3, 3] == pytest.approx(1 - np.exp(-10 * 0.25), rel=1e-5)


def test_query_points_and_ply(tmp_path):
    pts = torch.tensor([[-0.2, 0.0, 0.0], [0.3, 0.1, 0.0], [0.9, 0.9, 0.9]])
    res = query_points(analytic, pts)
    assert res["instance"].tolist() == [0, 1, 1]
    assert res["probability"][0] == pytest.approx(1 / (1 + np.exp(-5)), rel=1e-5)
    assert res["density"].tolist() == [10.0, 10.0, 0.0]
    write_ply(tmp_path / "a.ply", pts.numpy(), np.ones((3, 3)))
    text = (tmp_path / "a.ply").read_text().splitlines()
    assert text[2] == "element vertex 3" and text[-1].endswith("255 255 255")


def test_degenerate_aabb():
    with pytest.raises(ValueError, match="degenerate"):
        grid_axes(np.zeros((2, 3)), 8)


def test_mesh_export_of_a_voxel_cube(tmp_path):
    from instance_nerf.engine.grid import export_instances_mesh

    inst = np.zeros((6, 6, 6), dtype=np.int16)
    inst[1:5, 1:5, 1:5] = 1
    rgbsigma = np.zeros((6, 6, 6, 4), dtype=np.float32)
    rgbsigma[..., 3] = 10.0
    grid = {
        "instance": inst,
        "rgbsigma": rgbsigma,
        "bbox_min": np.zeros(3),
        "bbox_max": np.ones(3) * 6,
    }
    tris = export_instances_mesh(grid, tmp_path, min_density=5.0)
    assert list(tris) == [1] and tris[1] > 0
    lines = (tmp_path / "instance_001_mesh.ply").read_text().splitlines()
    n = int(lines[2].split()[-1])
    verts = np.array([[float(v) for v in ln.split()] for ln in lines[9 : 9 + n]])
    # the level-0.5 surface of voxels 1..4 lies half a voxel outside their centres: [1, 5]
    assert np.allclose(verts.min(0), 1.0) and np.allclose(verts.max(0), 5.0)
