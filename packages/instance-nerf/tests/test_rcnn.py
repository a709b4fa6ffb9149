"""NeRF-RCNN: FCOS targets, AP, shapes, a falling loss, checkpoints and training grids."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from instance_nerf.data.io import InstanceNerfError
from instance_nerf.rcnn.evaluate import average_precision, detection_ap
from instance_nerf.rcnn.fcos import fcos_targets
from instance_nerf.rcnn.model import NeRFRCNN, NeRFRCNNConfig


def test_fcos_targets_hand_case():
    shapes = [(4, 4, 4), (2, 2, 2), (1, 1, 1), (1, 1, 1)]  # a 16³ grid at strides 4–32
    pos, reg, ctr = fcos_targets(shapes, [4, 8, 16, 32], torch.tensor([[4.0, 4, 4, 12, 12, 12]]))
    assert int(pos.sum()) == 8 and bool(pos[:64].sum() == 8)
    idx = torch.nonzero(pos).flatten()
    assert torch.allclose(reg[idx[0]], torch.tensor([0.5, 0.5, 0.5, 1.5, 1.5, 1.5]))
    assert torch.allclose(ctr[idx], torch.full((8,), math.sqrt(1 / 27)), atol=1e-6)
    cells = [(int(i) // 16, int(i) // 4 % 4, int(i) % 4) for i in idx]
    assert {c for cell in cells for c in cell} == {1, 2}  # locations 6 and 10


def test_average_precision_hand_cases():
    assert average_precision(np.array([True, True]), np.array([0.9, 0.8]), 2) == 1.0
    # FP first then TP: precision at recall 1 is 1/2
    assert average_precision(np.array([False, True]), np.array([0.9, 0.8]), 1) == 0.5
    assert average_precision(np.array([True]), np.array([0.9]), 2) == 0.5
    box = torch.tensor([[0.0, 0, 0, 2, 2, 2]])
    m = torch.zeros(1, 4, 4, 4, dtype=torch.bool)
    m[0, :2, :2, :2] = True
    gt = {"boxes": box, "labels": torch.tensor([1]), "masks": m}
    shifted = {
        "boxes": box + 0.5,
        "labels": torch.tensor([1]),
        "scores": torch.tensor([0.9]),
        "masks": m,
    }
    ap = detection_ap([shifted], [gt], 2)  # box IoU (1.5³)/(2·8 − 1.5³) = 0.268
    assert ap["box_ap25"] == 1.0 and ap["box_ap50"] == 0.0 and ap["mask_ap50"] == 1.0


def _scene(size=(16, 16, 8)):
    grid = torch.zeros(4, *size)
    masks = torch.zeros(2, *size, dtype=torch.bool)
    masks[0, 2:7, 2:7, 0:5] = True
    masks[1, 9:14, 8:14, 0:4] = True
    grid[3] = masks.any(0).float()
    grid[:3] = masks[0].float() * 0.8
    boxes = torch.tensor([[2.0, 2, 0, 7, 7, 5], [9, 8, 0, 14, 14, 4]])
    return grid, {"boxes": boxes, "labels": torch.tensor([1, 2]), "masks": masks}


def test_rcnn_tiny_shapes_and_falling_loss():
    torch.manual_seed(0)
    model = NeRFRCNN(NeRFRCNNConfig(backbone="tiny", resolution=16, rois_per_scene=64))
    grid, target = _scene()
    feats = model.backbone(grid[None])
    assert [f.shape[1] for f in feats] == [32] * 4 and model.strides == [1, 2, 4, 8]
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    first = None
    for _ in range(15):
        losses = model(grid[None], [target], stage="all")
        assert set(losses) == {
            "loss_fcos_cls",
            "loss_fcos_iou",
            "loss_fcos_ctr",
            "loss_cls",
            "loss_reg",
            "loss_mask",
        }
        loss = sum(losses.values())
        first = float(loss) if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss) < 0.7 * first
    det = model.predict(grid, score_thresh=0.0)
    k = len(det["scores"])
    assert (
        det["boxes"].shape == (k, 6)
        and det["masks"].shape == (k, 16, 16, 8)
        and det["masks"].dtype == torch.bool
    )


def test_checkpoint_round_trip_and_bad_files(tmp_path):
    model = NeRFRCNN(NeRFRCNNConfig(backbone="tiny", resolution=16))
    path = model.save(tmp_path / "r.pt")
    again = NeRFRCNN.load(path)
    assert all(
        torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values())
    )
    torch.save({"weights": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(InstanceNerfError, match="other.pt: not an instance-nerf RCNN checkpoint"):
        NeRFRCNN.load(tmp_path / "other.pt")
    (tmp_path / "junk.pt").write_text("hello")
    with pytest.raises(InstanceNerfError, match="junk.pt: not a") as exc:
        NeRFRCNN.load(tmp_path / "junk.pt")
    assert "weights_only=False" not in str(exc.value)
    with pytest.raises(InstanceNerfError, match="g.npz: grid's longest side is 32"):
        model.check_grid(torch.zeros(4, 32, 32, 16), "g.npz")


def test_synth_grids_boxes_fit_masks_and_augment(tmp_path):
    from instance_nerf.rcnn.data import GridDataset, augment, synth_grids

    summary = synth_grids(tmp_path, range(1000, 1003), resolution=24, objects=(3, 4))
    assert summary["scenes"] == 3 and summary["val"] == 1
    grid, t = GridDataset(tmp_path, "train")[0]
    assert grid.shape[0] == 4 and max(grid.shape[1:]) == 24 and grid.dtype == torch.float32
    for m, b in zip(t["masks"], t["boxes"]):
        ijk = torch.nonzero(m)
        lo, hi = ijk.min(0).values.float(), ijk.max(0).values.float() + 1
        assert torch.all((lo >= b[:3] - 1) & (hi <= b[3:] + 1))  # voxels inside the AABB (±1 voxel)
    rng = np.random.default_rng(0)
    for _ in range(6):
        g2, m2, b2 = augment(grid, t["masks"], t["boxes"].clone(), rng)
        for m, b in zip(m2, b2):
            ijk = torch.nonzero(m)
            lo, hi = ijk.min(0).values.float(), ijk.max(0).values.float() + 1
            assert torch.all((lo >= b[:3] - 1) & (hi <= b[3:] + 1))
