"""ST3D's ignore band: GT label -1 contributes zero loss in mmdet3d's assigner/head."""

import numpy as np
import torch
from mmdet3d.registry import MODELS
from mmdet3d.structures import LiDARInstance3DBoxes
from mmengine.config import Config
from mmengine.structures import InstanceData

import groupexp_da.register  # noqa: F401
from groupexp_da.engine.config import resolve_config


def _head(**kwargs):
    from mmdet3d.utils import register_all_modules

    register_all_modules(init_default_scope=True)
    cfg = Config.fromfile(str(resolve_config("pointpillars_synth_source_only_cpu")))
    head_cfg = cfg.model.bbox_head.copy()
    head_cfg.update(train_cfg=cfg.model.train_cfg, test_cfg=cfg.model.test_cfg, **kwargs)
    torch.manual_seed(0)
    return MODELS.build(head_cfg)


def _feats(head, requires_grad=True):
    torch.manual_seed(1)
    x = torch.randn(1, 192, 80, 80)
    cls, reg, dirc = head.forward_single(x)
    cls = cls.detach().requires_grad_(requires_grad)
    return cls, reg.detach(), dirc.detach()


def _gt(boxes, labels):
    g = InstanceData()
    g.bboxes_3d = LiDARInstance3DBoxes(torch.tensor(boxes, dtype=torch.float32))
    g.labels_3d = torch.tensor(labels)
    return g


CAR_A = [10.0, 2.0, -0.1, 3.9, 1.6, 1.56, 0.0]
CAR_B = [25.0, -6.0, -0.1, 4.2, 1.8, 1.6, 1.2]
META = [dict(box_type_3d=LiDARInstance3DBoxes)]


def _loss(head, cls, reg, dirc, gt):
    losses = head.loss_by_feat([cls], [reg], [dirc], [gt], META)
    return sum(sum(v) if isinstance(v, list) else v for v in losses.values()), losses


def test_ignored_box_has_zero_loss_and_zero_gradient():
    head = _head()
    cls, reg, dirc = _feats(head)
    # A positive, B ignored (-1)
    total, losses = _loss(head, cls, reg, dirc, _gt([CAR_A, CAR_B], [0, -1]))
    total.backward()
    # channel r = anchor rotation r (0, pi/2); cells are 0.48 m (stride 2 on 0.24 m pillars)
    grad = cls.grad.abs()[0]
    bx, by = int(CAR_B[0] / 0.48), int((CAR_B[1] + 19.2) / 0.48)
    ax, ay = int(CAR_A[0] / 0.48), int((CAR_A[1] + 19.2) / 0.48)
    assert grad[1, by, bx] == 0.0, "the anchor on the ignored box still receives loss"
    assert grad[0, ay, ax] > 0.0  # the positive anchor on car A does
    # without B at all, that anchor is a plain negative and gets gradient
    cls2 = cls.detach().clone().requires_grad_(True)
    total2, _ = _loss(head, cls2, reg, dirc, _gt([CAR_A], [0]))
    total2.backward()
    assert cls2.grad.abs()[0, 1, by, bx] > 0.0
    # changing the logit of B's anchor does not change the loss at all
    cls3 = cls.detach().clone()
    cls3[0, 1, by, bx] += 5.0
    t_before = _loss(head, cls.detach(), reg, dirc, _gt([CAR_A, CAR_B], [0, -1]))[0]
    t_after = _loss(head, cls3, reg, dirc, _gt([CAR_A, CAR_B], [0, -1]))[0]
    assert torch.isclose(t_before, t_after, rtol=0, atol=1e-7)


def test_frame_with_only_ignored_boxes():
    head = _head()
    cls, reg, dirc = _feats(head)
    total, losses = _loss(head, cls, reg, dirc, _gt([CAR_B], [-1]))
    total.backward()
    bx, by = int(CAR_B[0] / 0.48), int((CAR_B[1] + 19.2) / 0.48)
    assert cls.grad.abs()[0, 1, by, bx] == 0.0
    assert float(sum(losses["loss_bbox"])) == 0.0  # no positives, no regression loss
    assert np.isfinite(float(total))


def _two_domain_losses(weights: dict | None, requires_grad: bool = False):
    """Losses of one source and one target frame (a car in each) in one batch."""
    head = _head(domain_loss_weights=weights)
    torch.manual_seed(1)
    cls, reg, dirc = head.forward_single(torch.randn(2, 192, 80, 80))
    cls, reg, dirc = (t.detach().requires_grad_(requires_grad) for t in (cls, reg, dirc))
    metas = [dict(box_type_3d=LiDARInstance3DBoxes, domain=d) for d in ("source", "target")]
    gts = [_gt([CAR_A], [0]), _gt([CAR_B, CAR_A], [0, -1])]
    losses = head.loss_by_feat([cls], [reg], [dirc], gts, metas)
    return {k: sum(v) for k, v in losses.items()}, (cls, reg, dirc)


def test_domain_loss_weights_split_the_batch_loss_by_domain():
    """Every loss is a sum over anchors with one batch normaliser, so a per-domain weight w
    turns L into L_target + w * L_source; (0, 1, 1) leaves the source frame's box and
    direction losses and removes its classification loss and gradient."""
    full, _ = _two_domain_losses(None)
    same, _ = _two_domain_losses(dict(source=(1, 1, 1)))
    for k in full:
        assert torch.equal(full[k], same[k])
    no_src = _two_domain_losses(dict(source=(0, 0, 0)))[0]
    no_tgt = _two_domain_losses(dict(target=(0, 0, 0)))[0]
    half = _two_domain_losses(dict(source=(0.5, 0.25, 2.0)))[0]
    for k, w in (("loss_cls", 0.5), ("loss_bbox", 0.25), ("loss_dir", 2.0)):
        src, tgt = no_tgt[k], no_src[k]
        assert src > 0 and tgt > 0, k  # both frames contribute to every loss
        torch.testing.assert_close(src + tgt, full[k])
        torch.testing.assert_close(half[k], tgt + w * src)
    box_only, (cls, reg, _) = _two_domain_losses(dict(source=(0, 1, 1)), requires_grad=True)
    torch.testing.assert_close(box_only["loss_cls"], no_src["loss_cls"])
    torch.testing.assert_close(box_only["loss_bbox"], full["loss_bbox"])
    sum(box_only.values()).backward()
    assert cls.grad[0].abs().max() == 0.0  # the source frame: no classification gradient
    assert cls.grad[1].abs().max() > 0.0
    assert reg.grad[0].abs().max() > 0.0  # but box regression gradient


def test_domain_loss_weights_bad_value_names_the_key():
    import pytest

    from groupexp_da.data.io import GroupExpError

    with pytest.raises(GroupExpError, match="domain_loss_weights.source"):
        _head(domain_loss_weights=dict(source=(0, 1)))
