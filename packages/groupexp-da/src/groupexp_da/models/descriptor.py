"""Object descriptor: the points inside each labelled box → one d_obj vector (training only)."""

from __future__ import annotations

import torch
from mmdet3d.registry import MODELS
from torch import Tensor, nn


def points_in_boxes_mask(points: Tensor, boxes: Tensor) -> Tensor:
    """(N, 3+) points, (K, 7) bottom-centred LiDAR boxes → (K, N) inside mask (pure torch)."""
    d = points[None, :, :3] - boxes[:, None, :3]
    c, s = torch.cos(boxes[:, 6:7]), torch.sin(boxes[:, 6:7])
    lx = c * d[..., 0] + s * d[..., 1]
    ly = -s * d[..., 0] + c * d[..., 1]
    return (
        (lx.abs() <= 0.5 * boxes[:, 3:4])
        & (ly.abs() <= 0.5 * boxes[:, 4:5])
        & (d[..., 2] >= 0)
        & (d[..., 2] <= boxes[:, 5:6])
    )


def gather_object_points(
    points: list[Tensor],
    boxes: list[Tensor],
    max_points: int = 50,
    generator: torch.Generator | None = None,
):
    """Points of every box, centred on its gravity centre (no rotation, as the authors' code).

    Returns ``pts`` (M, P, 3), ``mask`` (M, P), ``sample_idx`` (M,), ``box_idx`` (M,) for the M
    boxes holding at least one point, and ``num_points`` (total boxes,) for all of them (0 =
    no descriptor). Boxes with more than ``max_points`` keep a random subset. Vectorised: each
    inside point gets a random key and the ``max_points`` smallest keys per box are kept, so
    there is no per-box loop (and no device sync per box on a GPU).
    """
    objs, masks, sidx, bidx, counts = [], [], [], [], []
    dev = points[0].device if points else torch.device("cpu")
    for s, (p, b) in enumerate(zip(points, boxes)):
        b = b[:, :7].to(p)
        if len(b) == 0:
            continue
        inside = points_in_boxes_mask(p, b)
        counts.append(inside.sum(1))
        cand = torch.nonzero(inside.any(0)).flatten()  # points inside some box
        sub = inside[:, cand]  # (K, n)
        keys = torch.rand(sub.shape, generator=generator).to(p.device)
        keys = torch.where(sub, keys, torch.full_like(keys, 2.0))
        width = min(max_points, sub.shape[1])
        order = keys.topk(width, dim=1, largest=False).indices  # (K, width)
        valid = torch.gather(sub, 1, order)
        centre = b[:, :3].clone()
        centre[:, 2] += 0.5 * b[:, 5]
        rel = p[cand[order], :3] - centre[:, None, :]
        has = valid.any(1)
        objs.append(torch.where(valid[..., None], rel, torch.zeros_like(rel))[has])
        masks.append(valid[has])
        k_idx = torch.nonzero(has).flatten()
        bidx.append(k_idx)
        sidx.append(torch.full_like(k_idx, s))
    num_points = torch.cat(counts) if counts else torch.zeros(0, dtype=torch.long, device=dev)
    width = max((o.shape[1] for o in objs), default=0)
    m = sum(len(o) for o in objs)
    pts = torch.zeros(m, width, 3, device=dev)
    mask = torch.zeros(m, width, dtype=torch.bool, device=dev)
    row = 0
    for o, v in zip(objs, masks):
        pts[row : row + len(o), : o.shape[1]] = o
        mask[row : row + len(o), : o.shape[1]] = v
        row += len(o)
    empty = torch.zeros(0, dtype=torch.long, device=dev)
    return (
        pts,
        mask,
        torch.cat(sidx) if sidx else empty,
        torch.cat(bidx) if bidx else empty,
        num_points,
    )


@MODELS.register_module()
class ObjectDescriptor(nn.Module):
    """Shared per-point MLP 3→64→128→256→512 (BN + ReLU), max-pool per object, MLP head.

    The per-point layers run on the valid points only (flattened), so padding never enters
    BatchNorm statistics; the object-level MLP uses LayerNorm because a batch may hold a
    single object (BatchNorm cannot normalise one sample).
    """

    def __init__(
        self,
        in_channels: int = 3,
        point_channels: tuple[int, ...] = (64, 128, 256, 512),
        out_channels: int = 512,
        hidden: int = 512,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        layers, c = [], in_channels
        for o in point_channels:
            layers += [nn.Linear(c, o, bias=False), nn.BatchNorm1d(o), nn.ReLU(inplace=True)]
            c = o
        self.point_mlp = nn.Sequential(*layers)
        head = []
        for _ in range(2):
            head += [
                nn.Linear(c, hidden),
                nn.LayerNorm(hidden),
                nn.ReLU(inplace=True),
                nn.Dropout(dropout),
            ]
            c = hidden
        head.append(nn.Linear(c, out_channels))
        self.head = nn.Sequential(*head)
        self.out_channels = out_channels
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, pts: Tensor, mask: Tensor) -> Tensor:
        """(M, P, 3) centred points + (M, P) mask → (M, out_channels)."""
        m = pts.shape[0]
        if m == 0:
            return pts.new_zeros(0, self.out_channels)
        obj = torch.nonzero(mask)[:, 0]
        flat = pts[mask]
        if self.training and len(flat) < 2:  # BatchNorm cannot normalise a single point
            self.point_mlp.eval()
            f = self.point_mlp(flat)
            self.point_mlp.train()
        else:
            f = self.point_mlp(flat)
        pooled = f.new_zeros(m, f.shape[1]).scatter_reduce(
            0, obj[:, None].expand_as(f), f, reduce="amax", include_self=False
        )
        return self.head(pooled)
