"""The experiment's bookkeeping: row selection, mean ± sd over seeds and the spec's per-seed checks."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from instance_nerf.engine.experiment import ExperimentConfig, markdown, summarize


def _result(seed: int, b0: dict, m3: dict) -> dict:
    return {"seed": seed, "rows": {"B0": b0, "M3": m3, "O": m3}, "mechanism": {}}


def test_rows_always_hold_the_pipeline_rows_in_table_order():
    cfg = ExperimentConfig(out=Path("x"), rows=("M1", "B0"))
    assert cfg.rows == ("B0", "M1", "M3", "O")
    with pytest.raises(ValueError, match="unknown experiment rows"):
        ExperimentConfig(out=Path("x"), rows=("M4",))


def test_summarize_mean_sd_and_checks_for_a_sweep_without_b1_m1_m2():
    results = [
        _result(
            100,
            {"miou": 0.5, "pq": 0.2, "pq_mv": 0.0, "consistency": 0.0},
            {"miou": 0.6, "pq": 0.3, "pq_mv": 0.4, "consistency": 0.9},
        ),
        _result(
            101,
            {"miou": 0.5, "pq": 0.4, "pq_mv": 0.0, "consistency": 0.0},
            {"miou": 0.52, "pq": 0.42, "pq_mv": 0.2, "consistency": 0.5},
        ),
    ]
    s = summarize(results)
    assert s["table"]["B0"]["pq"]["mean"] == pytest.approx(0.3)
    assert s["table"]["B0"]["pq"]["sd"] == pytest.approx(math.sqrt(0.02))  # ddof 1: 0.1414
    assert s["table"]["B1"] == {} and s["table"]["M2"] == {}
    c = s["checks"]
    assert c["pq_m3_minus_b0"] == pytest.approx([0.1, 0.02])
    assert c["seeds_pq_gain_ge_0.05"] == 1
    assert c["seeds_miou_gain_ge_0.03"] == 1  # +0.1 and +0.02
    assert c["seeds_pq_mv_gain_ge_0.3"] == 1  # +0.4 and +0.2
    assert c["seeds_consistency_ge_0.8"] == 1
    md = markdown(s, ExperimentConfig(out=Path("x"), rows=("B0", "M3"), regularizer=0.1), 2)
    assert "1024 rays, lambda_reg 0.1," in md
    assert "| B0 | 0.500 ± 0.000 | 0.300 ± 0.141 |" in md
    assert "| B1 |" not in md and "| M3 |" in md


def test_train_resumable_is_seeded(tiny_scene, tmp_path):
    """Two uninterrupted runs of one config in one process end with the same weights, on 2 CPU threads.

    nerfstudio's pixel sampler draws from Python's, numpy's and torch's global RNGs (seeded like ns-train),
    and with more than one thread the hash grids' backward (index_put_ accumulate) adds in varying order
    unless torch's deterministic kernels are on (at 256 rays this test failed without them)."""
    import torch

    from instance_nerf.engine.config import instance_cpu_config
    from instance_nerf.engine.pipeline import train_resumable
    from instance_nerf.models.offline import latest_checkpoint, load_checkpoint

    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    states = []
    try:
        for name in ("a", "b"):
            torch.manual_seed(len(name) + len(states))  # a different global state before each run
            cfg = instance_cpu_config(tiny_scene, tmp_path / name, max_iters=3, rays_per_batch=256)
            run = train_resumable(cfg).parent
            states.append(load_checkpoint(latest_checkpoint(run / "nerfstudio_models"))["pipeline"])
    finally:
        torch.set_num_threads(threads)
    assert not torch.are_deterministic_algorithms_enabled()  # restored after training
    assert states[0].keys() == states[1].keys()
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])


def test_hash_grid_backward_is_deterministic_on_threads():
    """The hash table's gradient is bit-identical across calls inside deterministic_torch (2 threads)."""
    import torch
    from nerfstudio.field_components.encodings import HashEncoding

    from instance_nerf.engine.pipeline import deterministic_torch

    enc = HashEncoding(num_levels=8, log2_hashmap_size=15, implementation="torch")
    x = torch.rand(20000, 3, generator=torch.Generator().manual_seed(0))
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    grads = []
    try:
        with deterministic_torch():
            for _ in range(3):
                enc.zero_grad()
                (enc(x) ** 2).sum().backward()
                grads.append(enc.hash_table.grad.clone())
    finally:
        torch.set_num_threads(threads)
    assert grads[0].abs().sum() > 0
    assert all(torch.equal(grads[0], g) for g in grads[1:])
