"""T15 (slow): a short GroupEXP-DA stage-1 training on synthetic frames behaves."""

import pytest
import torch
from mmengine.dataset import pseudo_collate
from mmengine.optim import OptimWrapper

import groupexp_da.register  # noqa: F401
from groupexp_da.engine.config import load_config


@pytest.mark.slow
def test_t15_thirty_steps_loss_falls_groups_stay_alive_rep_does_not_rise(tmp_path):
    """30 CPU steps (batch 2) of the shipped stage-1 config from a k-means start: the
    detection loss falls, every group keeps an EMA weight > 0.05 and L_rep does not rise."""
    from mmdet3d.registry import DATASETS, MODELS
    from mmdet3d.utils import register_all_modules

    from groupexp_da.data.synth import write_domain
    from groupexp_da.engine.hooks import collect_descriptors

    register_all_modules(init_default_scope=True)
    write_domain(tmp_path / "source", "source", 10, seed=0)
    write_domain(tmp_path / "target", "target", 3, seed=1)
    cfg = load_config("pointpillars_synth_groupexp_src_cpu", source=str(tmp_path / "source"),
                      target=str(tmp_path / "target"))
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    ds = DATASETS.build(cfg.train_dataloader.dataset)
    batches = [pseudo_collate([ds[(2 * i) % len(ds)], ds[(2 * i + 1) % len(ds)]])
               for i in range(len(ds) // 2)]
    model.groups.fit_init(collect_descriptors(model, batches))
    optim = OptimWrapper(torch.optim.AdamW(model.parameters(), lr=1e-3))
    model.train()
    det, rep, weights = [], [], []
    for step in range(30):
        log = model.train_step(batches[step % len(batches)], optim)
        det.append(sum(float(v) for k, v in log.items()
                       if k.startswith(("loss_cls", "loss_bbox", "loss_dir"))))
        rep.append(float(log["loss_rep"]))
        weights.append(model.groups.weight.clone())
    first, last = sum(det[:5]) / 5, sum(det[-5:]) / 5
    assert last < 0.8 * first, (first, last)
    w = torch.stack(weights)
    assert float(w[-1].min()) > 0.05, w[-1].tolist()
    assert float(w[5:].min()) > 0.05, w.min(0).values.tolist()  # no group died on the way
    assert sum(rep[-5:]) / 5 <= sum(rep[:5]) / 5 + 1e-3, (rep[:5], rep[-5:])
