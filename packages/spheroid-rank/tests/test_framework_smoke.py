"""Framework smoke test: a lightly SimCLR step (backbone + SimCLRProjectionHead + NTXentLoss)."""

import torch
from lightly.loss import NTXentLoss
from lightly.models.modules import SimCLRProjectionHead

from spheroid_rank.data.transforms import ssl_view
from spheroid_rank.models.backbones import create_backbone


def test_lightly_simclr_steps_lower_loss():
    torch.manual_seed(0)
    backbone = create_backbone("spheroid_cnn_small", in_chans=1)
    head = SimCLRProjectionHead(backbone.num_features, 64, 32)
    crit = NTXentLoss(temperature=0.5)
    params = list(backbone.parameters()) + list(head.parameters())
    opt = torch.optim.SGD(params, lr=0.1, momentum=0.9)
    imgs = torch.rand(16, 1, 40, 40)
    view = ssl_view(32, channels=1)
    x0 = torch.stack([view(i) for i in imgs])
    x1 = torch.stack([view(i) for i in imgs])
    before = [p.detach().clone() for p in params]
    losses = []
    for _ in range(8):
        loss = crit(head(backbone(x0)), head(backbone(x1)))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss))
    assert all(torch.isfinite(torch.tensor(losses)))
    assert losses[-1] < losses[0] - 0.05
    assert any(not torch.equal(a, p) for a, p in zip(before, params))
