"""T15 (slow): a short GroupEXP-DA stage-1 training on synthetic frames behaves."""

import pytest
import torch
from mmengine.dataset import pseudo_collate
from mmengine.optim import OptimWrapper

import groupexp_da.register  # noqa: F401
from groupexp_da.engine.config import load_config


def _thirty_steps(root, **group):
    """30 CPU steps (batch 2) of the shipped stage-1 config (``group`` overrides
    ``model.group_cfg``) from a k-means start; per step the detection loss (baseline +
    branches), L_rep and the group weights."""
    from mmdet3d.registry import DATASETS, MODELS
    from mmdet3d.utils import register_all_modules

    from groupexp_da.data.synth import write_domain
    from groupexp_da.engine.hooks import collect_descriptors

    register_all_modules(init_default_scope=True)
    if not (root / "source").exists():
        write_domain(root / "source", "source", 10, seed=0)
        write_domain(root / "target", "target", 3, seed=1)
    cfg = load_config(
        "pointpillars_synth_groupexp_src_cpu",
        source=str(root / "source"),
        target=str(root / "target"),
    )
    cfg.model.group_cfg.update(group)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    ds = DATASETS.build(cfg.train_dataloader.dataset)
    batches = [
        pseudo_collate([ds[(2 * i) % len(ds)], ds[(2 * i + 1) % len(ds)]])
        for i in range(len(ds) // 2)
    ]
    model.groups.fit_init(collect_descriptors(model, batches))
    optim = OptimWrapper(torch.optim.AdamW(model.parameters(), lr=1e-3))
    model.train()
    det, rep, weights = [], [], []
    for step in range(30):
        log = model.train_step(batches[step % len(batches)], optim)
        det.append(
            sum(
                float(v)
                for k, v in log.items()
                if k.startswith(("loss_cls", "loss_bbox", "loss_dir"))
            )
        )
        rep.append(float(log["loss_rep"]))
        weights.append(model.groups.weight.clone())
    return det, rep, torch.stack(weights)


@pytest.fixture(scope="module")
def t15_root(tmp_path_factory):
    return tmp_path_factory.mktemp("t15")


@pytest.fixture(scope="module")
def thirty_steps(t15_root):
    """The shipped defaults: centred frame, var_reg 1, non-empty guard on."""
    return _thirty_steps(t15_root)


@pytest.fixture(scope="module")
def thirty_steps_unguarded(t15_root):
    """The shipped defaults with the non-empty guard off (Eq. 2 alone keeps groups alive)."""
    return _thirty_steps(t15_root, keep_nonempty=False)


@pytest.fixture(scope="module")
def thirty_steps_literal(t15_root):
    """Eq. 1, 6, 7 read literally: raw cosines, no variance regulariser (guard on)."""
    return _thirty_steps(t15_root, center="none", var_reg=0.0)


@pytest.mark.slow
def test_t15_detection_loss_falls(thirty_steps):
    det = thirty_steps[0]
    first, last = sum(det[:5]) / 5, sum(det[-5:]) / 5
    assert last < 0.8 * first, (first, last)


@pytest.mark.slow
def test_t15_every_group_keeps_weight(thirty_steps):
    w = thirty_steps[2]
    assert float(w[5:].min()) > 0.05, w.min(0).values.tolist()  # no group died on the way
    assert float(w[-1].min()) > 0.05, w[-1].tolist()


@pytest.mark.slow
@pytest.mark.xfail(
    strict=True,
    reason=(
        "measured: without the guard the smallest k-means group (weight 0.048) decays to "
        "0.0002 in these 30 steps while the other two keep 0.27 / 0.73; strict, so a change "
        "shows up"
    ),
)
def test_t15_unguarded_every_group_keeps_weight(thirty_steps_unguarded):
    w = thirty_steps_unguarded[2]
    assert float(w[5:].min()) > 0.05, w.min(0).values.tolist()


@pytest.mark.slow
def test_t15_repulsion_stays_far_below_its_ceiling(thirty_steps):
    rep = thirty_steps[1]
    ceiling = 0.5 * 3  # lambda_rep * 3 pairs * cos 1: all prototypes parallel
    assert sum(rep[-5:]) / 5 < 0.5 * ceiling, rep[-5:]


@pytest.mark.slow
@pytest.mark.xfail(
    strict=True,
    reason=(
        "measured: read literally (raw cosines), L_rep rises 1.446 -> 1.494 (ceiling 1.5, all "
        "prototypes parallel) in these 30 steps - the descriptor collapse; strict, so a change "
        "shows up"
    ),
)
def test_t15_literal_repulsion_does_not_rise(thirty_steps_literal):
    rep = thirty_steps_literal[1]
    assert sum(rep[-5:]) / 5 <= sum(rep[:5]) / 5 + 1e-3, (rep[:5], rep[-5:])
