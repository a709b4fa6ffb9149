"""GroupEXP-DA grouping math: descriptor gathering (T1-T2), k-means init, Eq. 1-2, EMA, losses."""

import math

import numpy as np
import pytest
import torch

from groupexp_da.data.geometry import points_in_box
from groupexp_da.data.io import GroupExpError
from groupexp_da.models.descriptor import ObjectDescriptor, gather_object_points
from groupexp_da.models.group_losses import attraction_loss, repulsion_loss
from groupexp_da.models.grouping import GaussianGroups


def _box_points(box, n, rng):
    """``n`` points strictly inside a yaw-0 box."""
    lo = np.array([box[0] - box[3] / 2, box[1] - box[4] / 2, box[2]]) + 0.05
    hi = np.array([box[0] + box[3] / 2, box[1] + box[4] / 2, box[2] + box[5]]) - 0.05
    return rng.uniform(lo, hi, size=(n, 3))


def test_t1_gather_points_membership_and_centring():
    rng = np.random.default_rng(0)
    boxes = np.array(
        [
            [5.0, 0.0, -1.0, 4.0, 2.0, 1.5, 0.0],
            [15.0, 5.0, -1.0, 4.0, 2.0, 1.5, 0.0],
            [10.0, -5.0, -1.0, 4.0, 2.0, 1.5, 0.7],
        ]
    )
    rot = boxes[2].copy()
    rot[6] = 0.0
    local = _box_points(rot, 60, rng) - rot[:3]
    c, s = math.cos(0.7), math.sin(0.7)
    in_c = (
        np.stack(
            [c * local[:, 0] - s * local[:, 1], s * local[:, 0] + c * local[:, 1], local[:, 2]], 1
        )
        + boxes[2, :3]
    )
    pts = np.vstack([_box_points(boxes[0], 3, rng), in_c, rng.uniform(-30, -20, (40, 3))])
    t_pts = torch.tensor(pts, dtype=torch.float32)
    out, mask, sidx, bidx, npts = gather_object_points(
        [t_pts],
        [torch.tensor(boxes).float()],
        max_points=50,
        generator=torch.Generator().manual_seed(0),
    )
    assert out.shape == (2, 50, 3)
    assert mask.sum(1).tolist() == [3, 50]
    assert bidx.tolist() == [0, 2] and sidx.tolist() == [0, 0]
    assert npts.tolist() == [3, 0, 60]
    for k, b in zip(bidx.tolist(), boxes[bidx.numpy()]):
        member = points_in_box(pts, b)
        assert member.sum() == npts[k]
        centre = b[:3] + [0, 0, b[5] / 2]
        got = out[bidx.tolist().index(k)][mask[bidx.tolist().index(k)]].numpy()
        want = pts[member] - centre
        # every gathered point is one of the member points minus the gravity centre
        d = np.abs(got[:, None, :] - want[None]).max(-1).min(1)
        assert d.max() < 1e-5


def test_t2_descriptor_shape_and_permutation_invariance():
    torch.manual_seed(0)
    net = ObjectDescriptor().eval()
    pts = torch.randn(3, 20, 3)
    mask = torch.ones(3, 20, dtype=torch.bool)
    mask[1, 12:] = False
    f = net(pts, mask)
    assert f.shape == (3, 512)
    perm = torch.randperm(12)
    pts2 = pts.clone()
    pts2[1, :12] = pts[1, perm]
    pts2[1, 12:] = 99.0  # padding content must not matter
    wider = torch.cat([pts2, torch.zeros(3, 5, 3)], 1)  # re-padded to 25
    mask2 = torch.cat([mask, torch.zeros(3, 5, dtype=torch.bool)], 1)
    assert (net(wider, mask2) - f).abs().max() < 1e-6


def test_t3_kmeans_init_is_mle_of_the_clusters():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(30, 2, generator=g) * 0.1
    b = torch.randn(10, 2, generator=g) * 0.1 + 5.0
    groups = GaussianGroups(2, 2)
    labels = groups.fit_init(torch.cat([a, b]))
    big = int(torch.argmax(groups.weight))
    small = 1 - big
    assert torch.allclose(groups.weight.sort().values, torch.tensor([0.25, 0.75]))
    assert (groups.mu[big] - a.mean(0)).abs().max() < 0.05
    assert (groups.mu[small] - 5.0).abs().max() < 0.05
    assert torch.allclose(groups.var[big], a.var(0, unbiased=False), atol=1e-6)
    assert torch.allclose(groups.var[small], b.var(0, unbiased=False), atol=1e-6)
    assert (labels[:30] == labels[0]).all() and bool(groups.initialized)
    with pytest.raises(GroupExpError, match="n_groups=3"):
        GaussianGroups(3, 2).fit_init(torch.zeros(2, 2))


def _two_groups(w):
    g = GaussianGroups(2, 2)
    g.mu.copy_(torch.tensor([[0.0, 0.0], [4.0, 0.0]]))
    g.var.copy_(torch.tensor([[1.0, 1.0], [9.0, 9.0]]))
    g.weight.copy_(torch.tensor(w))
    g.initialized.fill_(True)
    return g


def test_t4_gmm_assignment_eq1_eq2():
    x = torch.tensor([[0.0, 3.0]])
    g = _two_groups([0.5, 0.5])
    lj = g.log_joint(x)[0]
    assert torch.allclose(lj, torch.tensor([-7.0310, -6.1171]), atol=1e-4)
    assert g.assign(x).item() == 1  # the wide group wins though mu0 is nearer (3 vs 5)
    g = _two_groups([0.9, 0.1])
    assert torch.allclose(g.log_joint(x)[0], torch.tensor([-6.4432, -7.7266]), atol=1e-4)
    assert g.assign(x).item() == 0
    post = g.posterior(torch.randn(7, 2) * 3)
    assert torch.allclose(post.sum(1), torch.ones(7))
    near = GaussianGroups(2, 2, assign="nearest")
    near.mu.copy_(g.mu)
    assert near.assign(x).item() == 0


def test_t5_ema_update_alpha_08():
    g = GaussianGroups(2, 2, alpha=0.8)
    g.mu.copy_(torch.tensor([[1.0, 0.0], [7.0, 7.0]]))
    g.var.copy_(torch.ones(2, 2))
    g.weight.copy_(torch.tensor([0.5, 0.5]))
    x = torch.tensor([[0.0, 0.0], [0.0, 2.0], [0.0, 4.0], [5.0, 5.0]], requires_grad=True)
    stats = g.batch_stats(x, torch.tensor([0, 0, 0, 1]))
    mixed = g.blend(stats)
    assert mixed.requires_grad  # differentiable prototype
    assert torch.allclose(mixed[0], torch.tensor([0.8 * 1 + 0.2 * 0, 0.8 * 0 + 0.2 * 2]))
    g.commit(stats)
    assert torch.allclose(g.mu, mixed.detach())  # buffer after commit == prototype used
    assert torch.allclose(g.weight, torch.tensor([0.55, 0.45]))
    assert torch.allclose(g.var[0], torch.tensor([0.8, 0.8 + 0.2 * 8 / 3]), atol=1e-6)
    assert torch.allclose(g.var[1], torch.ones(2))  # one sample: variance kept
    # the spec's numbers: mu (1,0) + batch mean (0,1) -> (0.8, 0.2)
    h = GaussianGroups(1, 2, alpha=0.8)
    h.mu.copy_(torch.tensor([[1.0, 0.0]]))
    h.commit(h.batch_stats(torch.tensor([[0.0, 1.0]]), torch.tensor([0])))
    assert torch.allclose(h.mu, torch.tensor([[0.8, 0.2]]))
    # empty group: mu and var kept, weight decays by alpha
    g2 = GaussianGroups(2, 2, alpha=0.8)
    before_mu, before_var = g2.mu.clone(), g2.var.clone()
    g2.commit(g2.batch_stats(torch.tensor([[1.0, 1.0], [2.0, 2.0]]), torch.tensor([0, 0])))
    assert torch.equal(g2.mu[1], before_mu[1]) and torch.equal(g2.var[1], before_var[1])
    assert torch.isclose(g2.weight[1], torch.tensor(0.8 * 0.5))


def test_t6_repulsion():
    mu = torch.tensor([[1.0, 0, 0], [1, 1, 0], [-1, 0, 0]], requires_grad=True)
    loss = repulsion_loss(mu)
    assert abs(loss.item() - 0.70711) < 1e-5
    loss.backward()
    assert mu.grad[2].abs().max() == 0 and mu.grad[0].abs().max() > 0


def test_t7_attraction():
    f = torch.tensor([[1.0, 0], [0, 1], [1, 1]])
    mu = torch.tensor([[1.0, 0], [0, 1]])
    loss = attraction_loss(f, torch.tensor([0, 0, 1]), mu)
    assert abs(loss.item() * 3 - 1.29289) < 1e-5
    assert abs(loss.item() - 0.43096) < 1e-5


def test_dominant_group_cannot_empty_the_others():
    g = _two_groups([0.999, 0.001])
    g2 = GaussianGroups(3, 2)
    g2.mu.copy_(torch.tensor([[0.0, 0.0], [4.0, 0.0], [0.0, 9.0]]))
    g2.var.copy_(torch.tensor([[100.0, 100.0], [0.01, 0.01], [0.01, 0.01]]))
    g2.weight.copy_(torch.tensor([0.98, 0.01, 0.01]))
    x = torch.tensor([[0.0, 0.5], [3.0, 0.0], [1.0, 1.0], [0.5, 7.0], [2.0, 2.0]])
    assert g2.log_joint(x).argmax(1).tolist() == [0, 0, 0, 0, 0]  # collapse without the guard
    groups = g2.assign(x)
    assert sorted(set(groups.tolist())) == [0, 1, 2]
    assert groups[1] == 1 and groups[3] == 2  # the best-scoring object for each empty group
    g2.keep_nonempty = False
    assert g2.assign(x).tolist() == [0, 0, 0, 0, 0]
    assert g.assign(torch.tensor([[0.0, 3.0]])).item() == 0  # fewer objects than groups: as is


def test_var_reg_adds_to_the_variance_in_eq1_only():
    """var_reg = 1 (the authors' reg_covar): variances (2,2), (10,10) in Eq. 1, by hand
    log .5 − ½(2 log 2π + 2 log 2 + 9/2) = −5.4742 and log .5 − ½(2 log 2π + 2 log 10 + 25/10)
    = −6.0836, so the nearer group wins where the wide one did without it (T4)."""
    g = _two_groups([0.5, 0.5])
    g.var_reg = 1.0
    x = torch.tensor([[0.0, 3.0]])
    assert torch.allclose(g.log_joint(x)[0], torch.tensor([-5.4742, -6.0836]), atol=1e-4)
    assert g.assign(x).item() == 0
    assert torch.equal(g.var, torch.tensor([[1.0, 1.0], [9.0, 9.0]]))  # buffers untouched


def test_centred_assignment_ignores_a_common_drift():
    """A shift shared by every descriptor (the descriptor net drifting between EMA updates)
    sends every object to one group in the raw frame; centred, the groups are unchanged."""
    g = GaussianGroups(2, 2, keep_nonempty=False)
    g.mu.copy_(torch.tensor([[0.0, 0.0], [4.0, 0.0]]))
    g.weight.copy_(torch.tensor([0.5, 0.5]))
    x = torch.tensor([[0.2, 0.0], [-0.3, 0.1], [3.9, 0.2], [4.2, -0.1]])
    drift = torch.tensor([6.0, 1.0])
    assert g.assign(x).tolist() == [0, 0, 1, 1]
    assert g.assign(x + drift).tolist() == [1, 1, 1, 1]
    g.center = True
    assert torch.allclose(g.mixture_mean(), torch.tensor([2.0, 0.0]))
    assert g.assign(x).tolist() == g.assign(x + drift).tolist() == [0, 0, 1, 1]


def test_centred_losses_equal_eq6_eq7_of_the_centred_vectors():
    off = torch.tensor([30.0, -5.0, 12.0])
    mu = torch.tensor([[1.0, 0, 0], [1, 1, 0], [-1, 0, 0]])
    assert repulsion_loss(mu + off).item() > 2.9  # a shared offset: every pair nearly parallel
    assert abs(repulsion_loss(mu + off, center=off).item() - 0.70711) < 1e-4
    f = torch.tensor([[1.0, 0], [0, 1], [1, 1]])
    m2 = torch.tensor([[1.0, 0], [0, 1]])
    o2 = torch.tensor([50.0, 50.0])
    centred = attraction_loss(f + o2, torch.tensor([0, 0, 1]), m2 + o2, center=o2)
    assert abs(centred.item() - 0.43096) < 1e-4
