"""Lightning DDP on CPU (gloo, 2 processes) through the package's `train()`, compared with a
1-process run of the same global batch.

Equality of the weights holds because the test removes every per-rank source of randomness
(no augmentation, no dropout, plain CE: the class-weighted mean of each rank would not average
to the global weighted mean) and because Lightning's DistributedSampler draws one permutation
for all ranks, so the two ranks' batches of 4 together are the 1-process batch of 8.
Temperature scaling is fitted after training, in one process, on the whole validation set
(`eval`), so it has no per-rank state; the test checks that it agrees between the two runs.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.ddp
DRIVER = Path(__file__).with_name("ddp_driver.py")


@pytest.fixture(scope="module")
def ddp_split(busi_dir, tmp_path_factory) -> Path:
    """16 train and 8 validation/test images (even, so no rank is padded)."""
    from bus_classify.data.sources import discover

    samples = sorted(discover(busi_dir), key=lambda s: s.ref)
    lumps = [s for s in samples if s.label == 1][:16]
    normals = [s for s in samples if s.label == 0][:8]
    rows = [
        {"path": s.ref, "label": s.label, "source_class": s.source_class, "split": "train"}
        for s in lumps[:10] + normals[:6]
    ]
    for split, part in (
        ("val", lumps[10:13] + normals[6:7]),
        ("test", lumps[13:16] + normals[7:8]),
    ):
        rows += [
            {"path": s.ref, "label": s.label, "source_class": s.source_class, "split": split}
            for s in part
        ]
    path = tmp_path_factory.mktemp("ddp") / "split.csv"
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path


def _launch(split: Path, out: Path, record: Path, devices: int, batch: int) -> dict[int, dict]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    env.pop("LOCAL_RANK", None)
    res = subprocess.run(
        [
            sys.executable,
            str(DRIVER),
            "--split",
            str(split),
            "--out",
            str(out),
            "--record",
            str(record),
            "--devices",
            str(devices),
            "--batch-size",
            str(batch),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    return {int(p.stem[4:]): json.loads(p.read_text()) for p in record.glob("rank*.json")}


@pytest.fixture(scope="module")
def runs(ddp_split, tmp_path_factory):
    base = tmp_path_factory.mktemp("runs")
    two = _launch(ddp_split, base / "ddp2", base / "rec2", devices=2, batch=4)
    one = _launch(ddp_split, base / "ddp1", base / "rec1", devices=1, batch=8)
    return base, two, one


def test_both_ranks_finish_and_split_the_epoch(runs):
    _, two, _ = runs
    assert sorted(two) == [0, 1]  # both ranks ran to the end of train()
    for r in (0, 1):
        assert two[r]["sampler"] == "DistributedSampler"
    for epoch in range(2):
        a, b = set(two[0]["epochs"][epoch]), set(two[1]["epochs"][epoch])
        assert not a & b  # different samples on each rank
        assert sorted(a | b) == list(range(16))  # together every training sample once
        assert len(two[0]["epochs"][epoch]) == len(two[1]["epochs"][epoch]) == 8


def test_only_rank_zero_writes(runs):
    base, two, _ = runs
    assert two[1]["writes"] == []  # rank 1 wrote nothing: no checkpoint, log or config
    out = base / "ddp2"
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert files.count("config.yaml") == 1
    assert sorted(f for f in files if f.startswith("checkpoints")) == [
        "checkpoints/best.ckpt",
        "checkpoints/last.ckpt",
    ]
    assert len([f for f in files if "tfevents" in f]) == 1
    assert not [f for f in files if ".tmp" in f]  # nothing half-written left behind
    written = [w for w in two[0]["writes"] if w.endswith("config.yaml")]
    assert written == ["replace " + str((out / "config.yaml").resolve())]  # one atomic write


def test_weights_match_one_process_with_same_global_batch(runs):
    base, _, _ = runs
    a = torch.load(base / "ddp2" / "checkpoints" / "last.ckpt", weights_only=True)
    b = torch.load(base / "ddp1" / "checkpoints" / "last.ckpt", weights_only=True)
    assert a["global_step"] == b["global_step"] == 4  # 2 epochs x 2 global batches of 8
    for k, v in a["state_dict"].items():
        torch.testing.assert_close(v, b["state_dict"][k], rtol=1e-4, atol=1e-5, msg=k)


def test_metrics_synced_across_ranks_equal_one_rank(runs, ddp_split):
    """val F1/AUC logged by the 2-rank run (each rank saw half of the validation set) equal
    the values one process computes with the same weights on the whole set."""
    import lightning as L

    from bus_classify.engine.datamodule import BusDataModule
    from bus_classify.engine.module import BusClassifier

    base, two, _ = runs
    ckpt = base / "ddp2" / "checkpoints" / "last.ckpt"
    module = BusClassifier.load_from_checkpoint(ckpt, weights_only=True)
    dm = BusDataModule(
        split_csv=str(ddp_split), img_size=32, batch_size=8, augment="none", num_workers=0
    )
    trainer = L.Trainer(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    (one_rank,) = trainer.validate(module, datamodule=dm, verbose=False)
    for key in ("val_f1", "val_auc", "val_acc"):
        assert two[0]["metrics"][key] == pytest.approx(one_rank[key], abs=0), key


def test_temperature_agrees_between_runs(runs, ddp_split, tmp_path):
    from bus_classify.eval.evaluate import evaluate

    base, _, _ = runs
    t = [
        evaluate(base / r / "checkpoints" / "last.ckpt", ddp_split, tmp_path / r, localize=False)[
            "details"
        ]["temperature"]
        for r in ("ddp2", "ddp1")
    ]
    assert t[0] == pytest.approx(t[1], rel=1e-3)
