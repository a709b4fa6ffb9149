"""3D RoIAlign, boxes, NMS, the box coder and mask paste on hand-checked numbers."""

from __future__ import annotations

import torch
import torchvision

from instance_nerf.rcnn.ops import (
    AABBCoder,
    LevelMapper,
    batched_nms_3d,
    box_iou_3d,
    paste_masks_3d,
    roi_align_3d,
)


def _ramp(n: int = 8) -> torch.Tensor:
    c = torch.arange(n, dtype=torch.float64) + 0.5
    x, y, z = torch.meshgrid(c, c, c, indexing="ij")
    return (x + 10 * y + 100 * z)[None, None]


def test_roi_align_exact_on_a_linear_field():
    out = roi_align_3d(_ramp(), torch.tensor([[0, 2, 2, 2, 6, 6, 6]], dtype=torch.float64), 2)
    assert out.shape == (1, 1, 2, 2, 2)
    assert out[0, 0, 0, 0, 0] == 333 and out[0, 0, 1, 1, 1] == 555 and out[0, 0, 1, 0, 0] == 335


def test_roi_align_matches_torchvision_per_slice():
    torch.manual_seed(0)
    img = torch.rand(1, 3, 7, 9, dtype=torch.float64)  # (N, C, W, L)
    feat = img[..., None].expand(1, 3, 7, 9, 5).contiguous()  # constant along z
    box2 = torch.tensor(
        [[0, 1.2, 0.7, 5.9, 7.3]], dtype=torch.float64
    )  # torchvision: [b, x1, y1, x2, y2] on (H=W, W=L)
    ref = torchvision.ops.roi_align(img, box2[:, [0, 2, 1, 4, 3]], (3, 4), 1.0, 2, aligned=True)
    ours = roi_align_3d(
        feat, torch.tensor([[0, 1.2, 0.7, 0.6, 5.9, 7.3, 4.4]], dtype=torch.float64), (3, 4, 2)
    )
    assert torch.allclose(ours[..., 0], ref, atol=1e-10) and torch.allclose(
        ours[..., 1], ref, atol=1e-10
    )


def test_roi_align_gradcheck():
    feat = torch.rand(1, 2, 3, 4, 5, dtype=torch.float64, requires_grad=True)
    rois = torch.tensor([[0, 0.3, 0.6, 0.2, 2.7, 3.1, 4.4]], dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda f: roi_align_3d(f, rois, 2), (feat,))


def test_level_mapper():
    m = LevelMapper(2, 5, 160.0)
    boxes = torch.tensor([[0, 0, 0, s, s, s] for s in (40.0, 160.0, 1000.0)])
    assert m(boxes).tolist() == [0, 2, 3]


def test_box_iou_nms_and_coder():
    a, b = torch.tensor([[0.0, 0, 0, 2, 2, 2]]), torch.tensor([[1.0, 1, 1, 3, 3, 3]])
    assert abs(float(box_iou_3d(a, b)) - 1 / 15) < 1e-7
    boxes = torch.tensor([[0.0, 0, 0, 2, 2, 2], [0, 0, 0, 2, 2, 1.8], [5, 5, 5, 6, 6, 6]])
    keep = batched_nms_3d(boxes, torch.tensor([0.9, 0.8, 0.7]), torch.zeros(3), 0.15)
    assert keep.tolist() == [0, 2]
    ref, gt = torch.tensor([[0.0, 0, 0, 2, 4, 8]]), torch.tensor([[1.0, 1, 1, 3, 5, 9]])
    d = AABBCoder.encode(gt, ref)
    assert torch.allclose(d, torch.tensor([[0.5, 0.25, 0.125, 0, 0, 0]]))
    assert torch.allclose(AABBCoder.decode(d, ref)[:, 0], gt)


def test_mask_target_and_paste():
    m = torch.zeros(1, 1, 8, 8, 8)
    m[..., 2:6, 2:6, 2:6] = 1
    t = roi_align_3d(m, torch.tensor([[0, 0.0, 0, 0, 8, 8, 8]]), 4)[0, 0] >= 0.5
    line = torch.tensor([0, 1, 1, 0], dtype=torch.bool)
    assert torch.equal(t, line[:, None, None] & line[None, :, None] & line[None, None, :])
    pasted = (
        paste_masks_3d(torch.ones(1, 4, 4, 4), torch.tensor([[2.0, 2, 2, 6, 6, 6]]), (8, 8, 8))[0]
        >= 0.5
    )
    assert int(pasted.sum()) == 64 and bool(pasted[2:6, 2:6, 2:6].all())
