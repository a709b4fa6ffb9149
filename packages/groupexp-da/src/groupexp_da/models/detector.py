"""``GroupExpVoxelNet``: VoxelNet + object descriptor + Gaussian groups + group branches."""

from __future__ import annotations

import torch
from mmdet3d.models.detectors import VoxelNet
from mmdet3d.registry import MODELS

from groupexp_da.data.io import GroupExpError
from groupexp_da.models.descriptor import gather_object_points
from groupexp_da.models.group_losses import (
    attraction_loss,
    attraction_loss_code,
    repulsion_loss,
    repulsion_loss_code,
)
from groupexp_da.models.group_targets import ABSENT, IGNORE, OWN
from groupexp_da.models.grouping import GaussianGroups

GROUP_DEFAULTS = dict(
    enabled=True,
    n_groups=3,
    alpha=0.8,
    var_floor=1e-3,
    assign="gmm",
    keep_nonempty=True,
    var_reg=1.0,
    center="mixture",
    lambda_rep=0.5,
    lambda_att=0.5,
    lambda_det=1.0,
    loss_form="paper",
    update_domains="auto",
    default_domain="source",
    max_points=50,
    other_groups="negative",
)


@MODELS.register_module()
class GroupExpVoxelNet(VoxelNet):
    """VoxelNet trained with GroupEXP-DA's group losses; inference is the plain VoxelNet.

    Training adds, per step: descriptors of the labelled cars, their group (Eq. 2), the
    blended prototypes, ``loss_att``/``loss_rep`` and the per-group detection losses of the
    shared RPN, then the EMA update of the group buffers. With ``collect_groups`` set,
    ``predict`` returns the union of baseline and group detections (pseudo labelling).
    """

    def __init__(
        self, *args, obj_descriptor: dict | None = None, group_cfg: dict | None = None, **kwargs
    ) -> None:
        super().__init__(*args, **kwargs)
        self.group_cfg = dict(GROUP_DEFAULTS, **(group_cfg or {}))
        g = self.group_cfg
        head_n = getattr(self.bbox_head, "n_groups", None)
        if head_n != g["n_groups"]:
            raise GroupExpError(
                f"model.group_cfg.n_groups={g['n_groups']} but "
                f"model.bbox_head.n_groups={head_n} (bbox_head must be a "
                "GroupExpAnchor3DHead with the same n_groups)"
            )
        if g["center"] not in ("none", "mixture"):
            raise GroupExpError(
                f"model.group_cfg.center must be 'none' or 'mixture', got {g['center']!r}"
            )
        if g["loss_form"] not in ("paper", "code"):
            raise GroupExpError(
                f"model.group_cfg.loss_form must be 'paper' or 'code', got {g['loss_form']!r}"
            )
        self.obj_descriptor = MODELS.build(dict(type="ObjectDescriptor", **(obj_descriptor or {})))
        self.groups = GaussianGroups(
            g["n_groups"],
            self.obj_descriptor.out_channels,
            g["alpha"],
            g["var_floor"],
            g["assign"],
            g["keep_nonempty"],
            g["var_reg"],
            center=g["center"] == "mixture",
        )
        self.collect_groups = False
        self.group_log: list[torch.Tensor] = []  # per step (M, 6), read by GroupStatsHook

    # -- descriptors -------------------------------------------------------------------------
    def describe(self, points: list, data_samples: list, generator=None) -> dict:
        """Descriptors of the positive (label 0) boxes holding points, with bookkeeping."""
        boxes, labels = [], []
        for ds in data_samples:
            gt = ds.gt_instances_3d
            b = gt.bboxes_3d  # mmdet3d's target code may have replaced the boxes by their tensor
            boxes.append((b.tensor if hasattr(b, "tensor") else b)[:, :7])
            labels.append(gt.labels_3d)
        pts, mask, sidx, bidx, npts = gather_object_points(
            points, boxes, self.group_cfg["max_points"], generator
        )
        offsets = torch.cumsum(torch.tensor([0] + [len(b) for b in boxes[:-1]]), 0).tolist()
        flat = torch.tensor(
            [offsets[s] + b for s, b in zip(sidx.tolist(), bidx.tolist())], dtype=torch.long
        )
        lab = torch.cat(labels) if labels else torch.zeros(0, dtype=torch.long)
        pos = (lab[flat.to(lab.device)] == 0) if len(flat) else torch.zeros(0, dtype=torch.bool)
        pos = pos.to(mask.device)
        feats = self.obj_descriptor(pts[pos], mask[pos])
        return {
            "feats": feats,
            "sample_idx": sidx[pos],
            "box_idx": bidx[pos],
            "num_points": npts,
            "flat_idx": flat.to(mask.device)[pos],
            "boxes": boxes,
        }

    def _domains(self, data_samples: list) -> list[str]:
        d = self.group_cfg["default_domain"]
        return [ds.metainfo.get("domain", d) for ds in data_samples]

    # -- training ----------------------------------------------------------------------------
    def branch_codes(self, data_samples: list, obj: dict, groups: torch.Tensor) -> list:
        """Per sample, (n_groups, K) codes of its GT boxes per branch: own-group positives
        ``OWN``; ignore-band and point-less cars ``IGNORE`` in every branch; other groups' cars
        ``ABSENT`` (negatives) or ``IGNORE`` (``other_groups='ignore'``)."""
        g = self.group_cfg
        out = []
        for s, ds in enumerate(data_samples):
            lab = ds.gt_instances_3d.labels_3d
            sel = obj["sample_idx"] == s
            b_idx = obj["box_idx"][sel].to(lab.device)
            grp = torch.full_like(lab, -1)
            grp[b_idx] = groups[sel].to(lab.device)
            has_desc = grp >= 0
            own = grp[None, :] == torch.arange(g["n_groups"], device=lab.device)[:, None]
            ignore = ((lab < 0) | ((lab == 0) & ~has_desc))[None].expand_as(own)
            if g["other_groups"] == "ignore":
                ignore = ignore | ((lab == 0) & has_desc)[None] & ~own
            code = torch.where(ignore, IGNORE, ABSENT)
            out.append(torch.where(own, OWN, code))
        return out

    def loss(self, batch_inputs_dict: dict, batch_data_samples: list, **kwargs) -> dict:
        x = self.extract_feat(batch_inputs_dict)
        losses = self.bbox_head.loss(x, batch_data_samples, **kwargs)
        g = self.group_cfg
        if not g["enabled"]:
            return losses
        self.groups.require_initialized("model.groups")
        obj = self.describe(batch_inputs_dict["points"], batch_data_samples)
        feats = obj["feats"]
        groups = self.groups.assign(feats.detach())
        domains = self._domains(batch_data_samples)
        update = g["update_domains"]
        if update == "auto":  # explorative update: target cars when the batch has any
            update = ("target",) if "target" in domains else ("source",)
        upd = torch.tensor(
            [domains[s] in update for s in obj["sample_idx"].tolist()],
            dtype=torch.bool,
            device=feats.device,
        )
        stats = self.groups.batch_stats(feats[upd], groups[upd])
        mu = self.groups.blend(stats)
        center = None
        if self.groups.center and len(feats):  # blended like mu, so mu - center has no drift
            a = self.groups.alpha
            center = a * self.groups.mixture_mean() + (1 - a) * feats.detach().mean(0)
        if g["loss_form"] == "paper":
            losses["loss_att"] = g["lambda_att"] * attraction_loss(feats, groups, mu, center)
            losses["loss_rep"] = g["lambda_rep"] * repulsion_loss(mu, center)
        else:
            losses["loss_att"] = g["lambda_att"] * attraction_loss_code(
                feats, groups, g["n_groups"]
            )
            losses["loss_rep"] = g["lambda_rep"] * repulsion_loss_code(mu)
        metas = [ds.metainfo for ds in batch_data_samples]
        codes = self.branch_codes(batch_data_samples, obj, groups)
        boxes = [ds.gt_instances_3d.bboxes_3d for ds in batch_data_samples]
        query = mu if center is None else mu - center
        w_det = g["lambda_det"] / g["n_groups"]
        losses.update(self.bbox_head.loss_groups(x, query, boxes, codes, metas, w_det))
        self.groups.commit(stats)
        counts = torch.bincount(groups, minlength=g["n_groups"])
        for i in range(g["n_groups"]):
            losses[f"grp_n{i}"] = counts[i].float()
            losses[f"grp_w{i}"] = self.groups.weight[i].detach().clone()
        self._log_objects(obj, groups, domains)
        return losses

    def _log_objects(self, obj: dict, groups: torch.Tensor, domains: list[str]) -> None:
        if len(groups) == 0:
            return
        boxes = torch.cat(obj["boxes"])[obj["flat_idx"].to(obj["boxes"][0].device)]
        npts = obj["num_points"][obj["flat_idx"]]
        dom = torch.tensor([domains[s] == "target" for s in obj["sample_idx"].tolist()])
        row = torch.stack(
            [
                groups.float().cpu(),
                npts.float().cpu(),
                boxes[:, 3:6].prod(1).detach().cpu(),
                boxes[:, :2].norm(dim=1).detach().cpu(),
                dom.float(),
            ],
            1,
        )
        self.group_log.append(row)

    # -- inference ---------------------------------------------------------------------------
    def predict(self, batch_inputs_dict: dict, batch_data_samples: list, **kwargs):
        if not self.collect_groups:
            return super().predict(batch_inputs_dict, batch_data_samples, **kwargs)
        self.groups.require_initialized("model.groups (collect_groups)")
        x = self.extract_feat(batch_inputs_dict)
        metas = [ds.metainfo for ds in batch_data_samples]
        mu = self.groups.mu
        if self.groups.center:
            mu = mu - self.groups.mixture_mean()
        results = self.bbox_head.predict_union(x, mu, metas)
        return self.add_pred_to_datasample(batch_data_samples, results)
