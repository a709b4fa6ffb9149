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


def test_training_resumes_per_epoch_to_the_same_weights(tmp_path):
    from instance_nerf.rcnn.data import synth_grids
    from instance_nerf.rcnn.train import train_rcnn

    synth_grids(tmp_path / "g", range(1000, 1003), resolution=16, objects=(2, 3))
    kw = dict(backbone="tiny", epochs_rpn=2, epochs_heads=1, batch_size=2, progress=False)
    full = train_rcnn(tmp_path / "g", tmp_path / "a", **kw)
    assert full["finished"] and [h["stage"] for h in full["history"]] == ["rpn", "rpn", "heads"]
    part = train_rcnn(tmp_path / "g", tmp_path / "b", max_epochs=1, **kw)
    assert not part["finished"] and len(part["history"]) == 1
    assert not (tmp_path / "b" / "best.pt").exists()
    rest = train_rcnn(tmp_path / "g", tmp_path / "b", **kw)
    assert rest["finished"] and len(rest["history"]) == 3
    a = NeRFRCNN.load(tmp_path / "a" / "last.pt").state_dict()
    b = NeRFRCNN.load(tmp_path / "b" / "last.pt").state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    # the heads stage changed only the heads
    first = torch.load(tmp_path / "a" / "best.pt", weights_only=True)["history"]
    assert first[-1]["stage"] == "heads" and "proposal_recall25" in first[-1]


def test_rpn_proposals_file_and_heads_from_rpn(tmp_path, capsys):
    import json

    from instance_nerf.cli import main
    from instance_nerf.data.io import read_npz
    from instance_nerf.rcnn.data import synth_grids

    synth_grids(tmp_path / "g", range(1000, 1003), resolution=16, objects=(2, 3))
    rpn = tmp_path / "rpn"
    assert (
        main(["rpn", "train", "--data", str(tmp_path / "g"), "--out", str(rpn), "--epochs", "2"])
        == 0
    )
    hist = json.loads((rpn / "history.json").read_text())
    assert [h["stage"] for h in hist] == ["rpn", "rpn"]
    grid = tmp_path / "g" / "grids" / "01002.npz"
    out = tmp_path / "rois.npz"
    assert (
        main(
            [
                "rpn",
                "predict",
                "--ckpt",
                str(rpn / "best.pt"),
                "--grid",
                str(grid),
                "--out",
                str(out),
                "--top",
                "50",
            ]
        )
        == 0
    )
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    rois = read_npz(out, ("boxes", "scores", "bbox_min", "bbox_max", "nms"))
    assert rois["boxes"].shape == (summary["proposals"], 6) and 0 < summary["proposals"] <= 50
    assert np.all(np.diff(rois["scores"]) <= 0) and np.all(
        rois["boxes"][:, 3:] > rois["boxes"][:, :3]
    )
    assert float(rois["nms"]) == pytest.approx(0.3)
    # rcnn train --rpn: the backbone and FCOS head stay those of the RPN checkpoint
    rc = tmp_path / "rcnn"
    args = [
        "rcnn",
        "train",
        "--data",
        str(tmp_path / "g"),
        "--out",
        str(rc),
        "--rpn",
        str(rpn / "best.pt"),
    ]
    assert main(args + ["--epochs-heads", "1"]) == 0
    a, b = NeRFRCNN.load(rpn / "best.pt").state_dict(), NeRFRCNN.load(rc / "last.pt").state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a if not k.startswith("roi_heads."))
    assert not all(torch.equal(a[k], b[k]) for k in a if k.startswith("roi_heads."))
