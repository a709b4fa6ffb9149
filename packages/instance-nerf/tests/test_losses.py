"""Logit rendering, cross-entropy and the depth-weighted patch regulariser on hand-computed cases."""

from __future__ import annotations

import math

import pytest
import torch
from nerfstudio.cameras.rays import Frustums, RaySamples

from instance_nerf.models.losses import instance_ce_loss, patch_smoothness_loss, render_logits


def test_render_logits_matches_hand_quadrature():
    # one ray, 3 samples: sigma = [1, 2, 0.5], delta = [0.5, 0.5, 1.0]
    sigma = torch.tensor([1.0, 2.0, 0.5])
    starts = torch.tensor([0.0, 0.5, 1.0])
    ends = torch.tensor([0.5, 1.0, 2.0])
    samples = RaySamples(
        frustums=Frustums(
            origins=torch.zeros(1, 3, 3),
            directions=torch.tensor([0.0, 0.0, 1.0]).expand(1, 3, 3),
            starts=starts.view(1, 3, 1),
            ends=ends.view(1, 3, 1),
            pixel_area=torch.ones(1, 3, 1),
        ),
        deltas=(ends - starts).view(1, 3, 1),
    )
    weights = samples.get_weights(sigma.view(1, 3, 1))
    # hand quadrature: alpha_k = 1 - exp(-sigma_k delta_k), T_k = exp(-sum_{j<k} sigma_j delta_j)
    a = [1 - math.exp(-0.5), 1 - math.exp(-1.0), 1 - math.exp(-0.5)]
    t = [1.0, math.exp(-0.5), math.exp(-1.5)]
    w = [t[k] * a[k] for k in range(3)]
    assert torch.allclose(weights.view(-1), torch.tensor(w), atol=1e-6)
    logits = torch.tensor([[[2.0, -1.0], [0.0, 3.0], [-4.0, 1.0]]])  # (1, 3 samples, L=2)
    out = render_logits(logits, weights)
    expect = [w[0] * 2 + w[1] * 0 + w[2] * -4, w[0] * -1 + w[1] * 3 + w[2] * 1]
    assert out.shape == (1, 2)
    assert torch.allclose(out[0], torch.tensor(expect), atol=1e-6)
    # logits are accumulated raw: this differs from accumulating softmax probabilities
    probs = render_logits(logits.softmax(-1), weights)
    assert not torch.allclose(out.softmax(-1), probs / probs.sum(), atol=1e-3)


def test_ce_ignores_minus_one():
    logits = torch.tensor([[2.0, 0.0], [0.0, 2.0], [5.0, -5.0]])
    labels = torch.tensor([0, -1, 1])
    expect = (math.log(1 + math.exp(-2.0)) + math.log(1 + math.exp(10.0))) / 2
    assert instance_ce_loss(logits, labels).item() == pytest.approx(expect, rel=1e-5)
    assert instance_ce_loss(logits, torch.full((3,), -1)).item() == 0.0


def test_patch_regulariser_hand_example():
    # one 2x2 patch, L = 1 logit channel, rays in row-major order
    logits = torch.tensor([[0.0], [1.0], [2.0], [4.0]])  # [[0, 1], [2, 4]]
    depth = torch.tensor([[1.0], [1.0], [1.0], [2.0]])  # [[1, 1], [1, 2]]
    # horizontal pairs: (0,1) diff^2 = 1, ddepth 0 -> w 1 ; (2,4) diff^2 = 4, ddepth 1 -> w e^-1
    h = (1 * 1 + 4 * math.exp(-1)) / (1 + math.exp(-1))
    # vertical pairs: (0,2) diff^2 = 4, w 1 ; (1,4) diff^2 = 9, w e^-1
    v = (4 * 1 + 9 * math.exp(-1)) / (1 + math.exp(-1))
    got = patch_smoothness_loss(logits, depth, patch_size=2)
    assert got.item() == pytest.approx(h + v, rel=1e-6)
    # constant logits cost nothing; depth scale 0 gives uniform weights
    assert patch_smoothness_loss(torch.ones(4, 3), depth, 2).item() == 0.0
    uniform = patch_smoothness_loss(logits, depth, 2, depth_scale=0.0).item()
    assert uniform == pytest.approx((1 + 4) / 2 + (4 + 9) / 2)
    # averaged over L channels
    two = patch_smoothness_loss(torch.cat([logits, torch.zeros(4, 1)], 1), depth, 2)
    assert two.item() == pytest.approx((h + v) / 2, rel=1e-6)


def test_patch_regulariser_rejects_bad_layout():
    with pytest.raises(ValueError, match="patches"):
        patch_smoothness_loss(torch.zeros(10, 2), torch.zeros(10, 1), patch_size=2)


def test_regulariser_gradient_pulls_neighbours_together():
    logits = torch.tensor([[0.0], [1.0], [0.0], [1.0]], requires_grad=True)
    loss = patch_smoothness_loss(logits, torch.zeros(4, 1), 2)
    loss.backward()
    assert logits.grad[0, 0] < 0 and logits.grad[1, 0] > 0
