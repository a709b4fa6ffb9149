"""GroupEXP-DA model parts: attention (T8), head (T9-T10), detector gradients (T11),
checkpoints (T14)."""

import copy
import pickle

import pytest
import torch
from mmdet3d.structures import LiDARInstance3DBoxes
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.structures import InstanceData

import groupexp_da.register  # noqa: F401
from groupexp_da.data.io import GroupExpError
from groupexp_da.engine.config import load_config, resolve_config
from groupexp_da.models.group_attention import GroupRegionCrossAttention


def _register():
    from mmdet3d.utils import register_all_modules

    register_all_modules(init_default_scope=True)


def _naive(layer_stack, mu, feat):
    """Reference: explicit K/V over all H·W cells (what the fast form avoids)."""
    for k, layer in enumerate(layer_stack.layers):
        b, c, h, w = feat.shape
        cells = feat.flatten(2).transpose(1, 2)  # (B, HW, C)
        keys = layer.k(cells)  # (B, HW, d)
        vals = layer.v(cells)  # (B, HW, C)
        q = layer.q(mu)
        a = torch.softmax(keys @ q * layer.scale, dim=1)  # (B, HW)
        ctx = (a[..., None] * vals).sum(1)
        feat = torch.relu(layer.proj(layer.norm(feat + ctx[:, :, None, None])))
        if k < len(layer_stack.update):
            mu = torch.relu(layer_stack.update[k](mu))
    return feat


def test_t8_attention_shape_equivariance_and_exact_fast_form():
    torch.manual_seed(0)
    attn = GroupRegionCrossAttention(query_dim=512, channels=192, d_attn=512).eval()
    feat = torch.randn(2, 192, 80, 80)
    mu = torch.randn(512)
    out = attn(mu, feat)
    assert out.shape == (2, 192, 80, 80)
    perm = torch.randperm(80 * 80)
    shuffled = feat.flatten(2)[:, :, perm].reshape_as(feat)
    out_p = attn(mu, shuffled)
    assert (out_p.flatten(2) - out.flatten(2)[:, :, perm]).abs().max() < 1e-5
    assert (_naive(attn, mu, feat) - out).abs().max() < 1e-5
    assert torch.equal(attn(mu.clone(), feat), out)
    assert (attn(torch.randn(512), feat) - out).abs().max() > 1e-3
    # the authors' LayerNorm over (C, H, W) is not equivariant to moving cells
    ln = GroupRegionCrossAttention(
        query_dim=8, channels=4, d_attn=8, norm="layernorm_chw", grid=(6, 6)
    ).eval()
    with torch.no_grad():
        for layer in ln.layers:
            layer.norm.weight.uniform_(0.5, 1.5)
    f = torch.randn(1, 4, 6, 6)
    p = torch.randperm(36)
    m = torch.randn(8)
    a = ln(m, f.flatten(2)[:, :, p].reshape_as(f)).flatten(2)
    assert (a - ln(m, f).flatten(2)[:, :, p]).abs().max() > 1e-3


def test_t8_all_groups_at_once_equal_one_group_at_a_time():
    """forward_groups (first layer's conv shared through the GroupNorm fold, later layers
    batched) equals calling the stack once per prototype, for both norms, with gradients."""
    torch.manual_seed(0)
    for norm, grid in (("group", None), ("layernorm_chw", (20, 16))):
        attn = GroupRegionCrossAttention(
            query_dim=32, channels=24, d_attn=16, norm=norm, grid=grid
        ).eval()
        with torch.no_grad():
            for layer in attn.layers:
                layer.norm.weight.uniform_(0.5, 1.5)
                layer.norm.bias.uniform_(-0.5, 0.5)
        feat = (torch.randn(2, 24, 20, 16) * 3 + 0.7).requires_grad_(True)
        mu = torch.randn(3, 32)
        each = torch.stack([attn(mu[i], feat) for i in range(3)])
        (g_each,) = torch.autograd.grad(each.square().sum(), feat)
        at_once = attn.forward_groups(mu, feat)
        (g_once,) = torch.autograd.grad(at_once.square().sum(), feat)
        assert at_once.shape == (3, 2, 24, 20, 16)
        assert (at_once - each).abs().max() < 1e-5 * each.abs().max()
        assert (g_once - g_each).abs().max() < 1e-4 * g_each.abs().max()


def _head_cfg(name="pointpillars_synth_groupexp_src_cpu"):
    cfg = Config.fromfile(str(resolve_config(name)))
    head = copy.deepcopy(cfg.model.bbox_head)
    head.update(train_cfg=cfg.model.train_cfg, test_cfg=cfg.model.test_cfg)
    return head


def _heads():
    from mmdet3d.registry import MODELS

    _register()
    torch.manual_seed(0)
    gh = MODELS.build(_head_cfg())
    base_cfg = _head_cfg()
    base_cfg.type = "IgnoreAwareAnchor3DHead"
    for k in ("n_groups", "query_dim", "group_attn"):
        base_cfg.pop(k)
    bh = MODELS.build(base_cfg)
    missing = bh.load_state_dict(gh.state_dict(), strict=False)
    assert not missing.missing_keys
    return gh.eval(), bh.eval()


META = [dict(box_type_3d=LiDARInstance3DBoxes)]


def test_t9_group_head_shapes_predict_equal_baseline_union_ids():
    gh, bh = _heads()
    torch.manual_seed(1)
    x = (torch.randn(2, 192, 80, 80),)
    mu = torch.randn(3, 512)
    branches = gh.forward_groups(x, mu)
    assert len(branches) == 3
    for cls, reg, dirc in branches:
        assert cls.shape == (2, 2, 80, 80) and reg.shape == (2, 14, 80, 80)
        assert dirc.shape == (2, 4, 80, 80)
    samples = [type("S", (), {"metainfo": META[0]})() for _ in range(2)]
    with torch.no_grad():
        a = gh.predict(x, samples)
        b = bh.predict(x, samples)
        for ra, rb in zip(a, b):
            assert torch.equal(ra.bboxes_3d.tensor, rb.bboxes_3d.tensor)
            assert torch.equal(ra.scores_3d, rb.scores_3d)
        union = gh.predict_union(x, mu, META * 2)
    ids = torch.cat([u.group_ids for u in union])
    assert len(ids) > 0 and set(ids.tolist()) <= {0, 1, 2, 3}
    with pytest.raises(GroupExpError, match="n_groups=3"):
        gh.forward_groups(x, mu[:2])


CAR_A = [10.0, 2.0, -0.1, 3.9, 1.6, 1.56, 0.0]
CAR_B = [25.0, -6.0, -0.1, 4.2, 1.8, 1.6, 1.2]
CAR_C = [30.0, 8.0, -0.1, 4.0, 1.7, 1.6, 0.0]


def _cell(car):
    return int((car[1] + 19.2) / 0.48), int(car[0] / 0.48)


def test_t10_branch_selectivity_and_ignore():
    from mmdet3d.registry import MODELS

    _register()
    cfg = Config.fromfile(str(resolve_config("pointpillars_synth_groupexp_src_cpu")))
    det = MODELS.build(cfg.model)
    gt = InstanceData()
    gt.bboxes_3d = LiDARInstance3DBoxes(torch.tensor([CAR_A, CAR_B, CAR_C]))
    gt.labels_3d = torch.tensor([0, 0, -1])
    sample = type("S", (), {"gt_instances_3d": gt, "metainfo": META[0]})()
    obj = {"sample_idx": torch.tensor([0, 0]), "box_idx": torch.tensor([0, 1])}
    from groupexp_da.models.group_head import branch_instances

    codes = det.branch_codes([sample], obj, torch.tensor([0, 1]))
    targets = branch_instances([gt.bboxes_3d], codes)
    head = det.bbox_head
    torch.manual_seed(1)
    cls, reg, dirc = head.forward_single(torch.randn(1, 192, 80, 80))
    for branch, (own, other) in enumerate(((CAR_A, CAR_B), (CAR_B, CAR_A))):
        c = cls.detach().clone().requires_grad_(True)
        t = targets[branch][0]
        assert t.labels_3d.tolist() == [0, -1]  # own car positive, ignore box kept as -1
        losses = head.loss_by_feat([c], [reg.detach()], [dirc.detach()], [t], META)
        sum(sum(v) for v in losses.values()).backward()
        g = c.grad.abs()[0]
        oy, ox = _cell(own)
        py, px = _cell(other)
        iy, ix = _cell(CAR_C)
        rot_own = 0 if own[6] < 0.6 else 1
        rot_other = 0 if other[6] < 0.6 else 1
        assert g[rot_own, oy, ox] > 0  # own-group anchor trained (positive)
        assert g[rot_other, py, px] > 0  # the other group's car is a negative, with gradient
        assert g[0, iy, ix] == 0  # the -1 box: zero gradient in every branch


CAR_D = [10.6, 2.3, -0.1, 3.9, 1.6, 1.56, 0.1]  # overlaps CAR_A's anchors
CAR_E = [18.0, -12.0, -0.1, 5.2, 2.0, 1.6, 0.0]  # too big for 0.6 IoU: low-quality match only


@pytest.mark.parametrize("domain_w", [None, (0.0, 1.0, 1.0)])
def test_t10_batched_branch_targets_equal_per_branch_reference(domain_w):
    """loss_groups (one IoU matrix per sample, all branches assigned together) gives the same
    losses and gradients as the parent's loss_by_feat run once per branch, with ignore boxes,
    a branch without own boxes, an empty frame, overlapping and low-quality-only cars."""
    from mmdet3d.registry import MODELS

    from groupexp_da.models.group_head import branch_instances
    from groupexp_da.models.group_targets import ABSENT, IGNORE, OWN, fast_targets_apply

    _register()
    cfg = _head_cfg()
    if domain_w is not None:
        cfg.domain_loss_weights = dict(source=domain_w)
    torch.manual_seed(0)
    head = MODELS.build(cfg).eval()  # eval: no attention dropout, both paths see equal maps
    assert fast_targets_apply(head)
    boxes = [
        LiDARInstance3DBoxes(torch.tensor([CAR_A, CAR_B, CAR_C, CAR_D])),
        LiDARInstance3DBoxes(torch.zeros(0, 7)),
        LiDARInstance3DBoxes(torch.tensor([CAR_B, CAR_C, CAR_E])),
    ]
    o, i, a = OWN, IGNORE, ABSENT
    codes = [
        torch.tensor([[o, a, i, a], [a, o, i, o], [a, a, i, a]]),
        torch.zeros(3, 0, dtype=torch.long),
        torch.tensor([[i, i, a], [o, a, a], [a, o, o]]),
    ]
    metas = [
        dict(box_type_3d=LiDARInstance3DBoxes, domain=d) for d in ("source", "target", "source")
    ]
    x = torch.randn(3, 192, 80, 80, requires_grad=True)
    mu = torch.randn(3, 512)
    fast = head.loss_groups((x,), mu, boxes, codes, metas, weight=0.5)
    (g_fast,) = torch.autograd.grad(sum(v[0] for v in fast.values()), x)
    ref = head.loss_groups_reference((x,), mu, branch_instances(boxes, codes), metas, weight=0.5)
    (g_ref,) = torch.autograd.grad(sum(v[0] for v in ref.values()), x)
    assert fast.keys() == ref.keys() and len(fast) == 9
    for k in ref:
        torch.testing.assert_close(fast[k][0], ref[k][0], rtol=1e-5, atol=1e-7)
    assert float(ref["loss_bbox_g0"][0]) > 0 and float(ref["loss_bbox_g2"][0]) > 0
    torch.testing.assert_close(g_fast, g_ref, rtol=1e-4, atol=1e-9)


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    from groupexp_da.data.synth import write_domain

    root = tmp_path_factory.mktemp("gx")
    write_domain(root / "source", "source", 4, seed=0)
    write_domain(root / "target", "target", 3, seed=1)
    return root


def _detector_and_batch(synth, name="pointpillars_synth_groupexp_src_cpu", **group):
    from mmdet3d.registry import DATASETS, MODELS

    _register()
    cfg = load_config(name, source=str(synth / "source"), target=str(synth / "target"))
    cfg.model.group_cfg.update(group)
    torch.manual_seed(0)
    det = MODELS.build(cfg.model)
    ds = DATASETS.build(cfg.train_dataloader.dataset)
    torch.manual_seed(0)
    batch = det.data_preprocessor(pseudo_collate([ds[0], ds[1]]), True)
    return cfg, det, batch


def _init_groups(det, batch):
    det.eval()
    with torch.no_grad():
        obj = det.describe(batch["inputs"]["points"], batch["data_samples"])
    det.train()
    det.groups.fit_init(obj["feats"])
    return obj


def test_t11_gradient_flow(synth):
    cfg, det, batch = _detector_and_batch(synth)
    with pytest.raises(GroupExpError, match="GroupInitHook"):
        det.loss(batch["inputs"], batch["data_samples"])
    _init_groups(det, batch)
    det.train()
    mu_before = det.groups.mu.clone()
    losses = det.loss(batch["inputs"], batch["data_samples"])
    assert {"loss_att", "loss_rep", "loss_cls_g0", "loss_bbox_g2", "grp_n0"} <= set(losses)
    assert not torch.equal(det.groups.mu, mu_before)  # EMA committed
    desc = [p for p in det.obj_descriptor.parameters()]

    def grads(loss, params):
        gs = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
        return sum(float(g.abs().sum()) for g in gs if g is not None)

    group_det = sum(sum(v) for k, v in losses.items() if k.startswith("loss_") and "_g" in k)
    assert grads(losses["loss_att"], desc) > 0
    # centred k-means prototypes start apart (relu(cos) = 0 for every pair, no gradient);
    # the paper-literal frame (center='none') has parallel-ish prototypes and a gradient
    assert float(losses["loss_rep"]) == 0.0 or grads(losses["loss_rep"], desc) > 0
    _, detn, batchn = _detector_and_batch(synth, center="none", var_reg=0.0)
    _init_groups(detn, batchn)
    detn.train()
    ln = detn.loss(batchn["inputs"], batchn["data_samples"])
    assert float(ln["loss_rep"]) > 0
    assert grads(ln["loss_rep"], list(detn.obj_descriptor.parameters())) > 0
    assert grads(group_det, desc) > 0  # through the blended prototypes into the attention
    assert grads(group_det, list(det.bbox_head.group_attn.parameters())) > 0
    assert grads(group_det, list(det.bbox_head.conv_cls.parameters())) > 0  # shared RPN
    assert grads(group_det, list(det.backbone.parameters())) > 0
    assert all(not b.requires_grad for b in det.groups.buffers())
    # lambda_rep = lambda_att = 0: the detection loss alone still trains the descriptor
    _, det0, batch0 = _detector_and_batch(synth, lambda_rep=0.0, lambda_att=0.0)
    _init_groups(det0, batch0)
    l0 = det0.loss(batch0["inputs"], batch0["data_samples"])
    assert float(l0["loss_att"]) == 0.0
    tot = sum(sum(v) if isinstance(v, list) else v for k, v in l0.items() if "loss" in k)
    assert grads(tot, list(det0.obj_descriptor.parameters())) > 0


def test_t11_groups_disabled_equals_baseline(synth):
    from mmdet3d.registry import MODELS

    cfg, det, batch = _detector_and_batch(synth, enabled=False)
    base_cfg = copy.deepcopy(
        Config.fromfile(str(resolve_config("pointpillars_synth_ros_cpu"))).model
    )
    base = MODELS.build(base_cfg)
    assert not base.load_state_dict(det.state_dict(), strict=False).missing_keys
    det.train()
    base.train()
    other = copy.deepcopy(batch)  # mmdet3d's target code edits the GT instances in place
    torch.manual_seed(5)
    a = det.loss(batch["inputs"], batch["data_samples"])
    torch.manual_seed(5)
    b = base.loss(other["inputs"], other["data_samples"])
    assert set(a) == set(b)
    for k in a:
        assert all(torch.equal(x, y) for x, y in zip(a[k], b[k])), k


def test_head_detector_n_groups_mismatch_is_a_config_error():
    from mmdet3d.registry import MODELS

    _register()
    cfg = Config.fromfile(str(resolve_config("pointpillars_synth_groupexp_src_cpu")))
    cfg.model.bbox_head.n_groups = 2
    with pytest.raises(GroupExpError, match="model.bbox_head.n_groups=2"):
        MODELS.build(cfg.model)


def test_t14_checkpoint_round_trip_and_ros_start(synth, tmp_path):
    from mmdet3d.registry import MODELS

    from groupexp_da.engine.checkpoint import load_weights, save_checkpoint
    from groupexp_da.engine.st3d import GROUP_KEYS

    cfg, det, batch = _detector_and_batch(synth)
    _init_groups(det, batch)
    p = save_checkpoint(tmp_path / "gx.pth", det.state_dict())
    det2 = MODELS.build(cfg.model)
    assert not bool(det2.groups.initialized)
    load_weights(det2, p)
    for k in ("mu", "var", "weight", "initialized"):
        assert torch.equal(getattr(det2.groups, k), getattr(det.groups, k))
    ros = MODELS.build(Config.fromfile(str(resolve_config("pointpillars_synth_ros_cpu"))).model)
    rp = save_checkpoint(tmp_path / "ros.pth", ros.state_dict())
    det3 = MODELS.build(cfg.model)
    allowed = load_weights(det3, rp, allow_missing=GROUP_KEYS)
    assert any(k.startswith("groups.") for k in allowed)
    assert torch.equal(det3.backbone.blocks[0][0].weight, ros.backbone.blocks[0][0].weight)
    assert not bool(det3.groups.initialized)
    with pytest.raises(GroupExpError, match="lacks weights"):
        load_weights(MODELS.build(cfg.model), rp)
    bad = tmp_path / "bad.pth"
    pickle.dump({"x": 1}, open(bad, "wb"))
    with pytest.raises(GroupExpError, match="not a groupexp-da checkpoint"):
        load_weights(det3, bad)
