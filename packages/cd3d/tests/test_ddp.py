"""Data-parallel training through ``cd3d train`` as 2 CPU processes (Lightning ``strategy=ddp``, gloo)."""

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import torch

from cd3d.data.synth import synth_dataset

pytestmark = pytest.mark.ddp
TESTS = Path(__file__).parent

# The per-pixel model: no BatchNorm, because torch's SyncBatchNorm refuses CPU modules ("SyncBatchNorm
# layers only work with GPU modules"), and without it per-rank BN statistics differ from 1 process.
# No augmentation, file order and class weights 1:1, so the 1-process run sees the same global batches.
COMMON = [
    "model.name=pixel_mlp", "model.kwargs={hidden: 8}",
    "data.augment=false", "data.shuffle=false", "loss.class_weights=[1, 1]", "optim.lr=0.01",
    "trainer.max_epochs=2", "trainer.accelerator=cpu", "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false", "trainer.num_sanity_val_steps=0", "trainer.log_every_n_steps=1",
]  # fmt: skip


def _train(root: Path, out: Path, devices: int, batch: int) -> str:
    sets = COMMON + [f"trainer.devices={devices}", f"data.batch_size={batch}"]
    if devices > 1:
        sets.append("trainer.strategy=ddp")
    sets.append(f"callbacks=[{{class_path: ddp_probe.SeenSamples, init_args: {{out: '{out}'}}}}]")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
               OMP_NUM_THREADS="1", PL_DISABLE_FORK="1")  # fmt: skip
    argv = [
        sys.executable,
        "-m",
        "cd3d.cli",
        "train",
        "--data",
        str(root),
        "--out",
        str(out),
        "--no-resume",
    ]
    r = subprocess.run(argv + [x for s in sets for x in ("--set", s)], env=env, capture_output=True, text=True,
                       timeout=400)  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    return r.stdout


def _state(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]


def test_two_process_ddp_matches_one_process(tmp_path):
    """2 ranks × batch 2 == 1 rank × batch 4: same weights (atol 1e-5), F1 synced exactly,
    each rank its own half of every epoch, and only rank 0 writes files and the report."""
    root = synth_dataset(tmp_path / "d", seed=5, n_train=8, n_val=4, n_test=1, tile=32)
    ddp, one = tmp_path / "ddp", tmp_path / "one"
    stdout = _train(root, ddp, devices=2, batch=2)
    _train(root, one, devices=1, batch=4)

    # one report, one set of files: checkpoints, one TensorBoard run, config and stats once
    reports = [line for line in stdout.splitlines() if line.startswith("{")]
    assert len(reports) == 1 and json.loads(stdout[stdout.index("{") :])["world_size"] == 2
    assert sorted(p.name for p in (ddp / "checkpoints").iterdir()) == [
        "best-crmse.ckpt",
        "best-f1.ckpt",
        "last.ckpt",
    ]
    assert [p.name for p in (ddp / "tb").iterdir()] == ["version_0"]
    assert len(list((ddp / "tb" / "version_0").glob("events.out.tfevents.*"))) == 1
    assert not [p for p in ddp.rglob("*") if ".tmp" in p.name]
    assert {"config.json", "stats.json"} <= {p.name for p in ddp.iterdir()}

    # the global batch is split: disjoint halves, together every train tile once per epoch
    seen = [json.loads((ddp / f"seen_rank{r}.json").read_text()) for r in (0, 1)]
    assert [s["world"] for s in seen] == [2, 2]
    names = {t.name for t in (root / "train" / "2010").iterdir()}
    for epoch in (0, 1):
        per_rank = [Counter(n for e, b in s["batches"] if e == epoch for n in b) for s in seen]
        assert not set(per_rank[0]) & set(per_rank[1])
        assert sum(per_rank, Counter()) == Counter({Path(n).stem: 1 for n in names})
    # 1 process, batch 4: the same batches, the same updates
    a, b = _state(ddp / "checkpoints" / "last.ckpt"), _state(one / "checkpoints" / "last.ckpt")
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k].float(), b[k].float(), atol=1e-5, rtol=1e-4, msg=k)

    # metrics are synced: the 2-rank val F1 equals the value of the same weights on 1 process
    from cd3d.data import ChangeDataset
    from cd3d.engine.checkpoint import load_detector
    from cd3d.eval.metrics import ChangeMetrics

    det = load_detector(ddp / "checkpoints" / "last.ckpt")
    m = ChangeMetrics()
    ds = ChangeDataset(root, "val")
    with torch.no_grad():
        for i in range(0, len(ds), 2):
            items = [ds[j] for j in range(i, i + 2)]
            logits, _ = det.forward_scaled(
                torch.stack([x["before"] for x in items]), torch.stack([x["after"] for x in items])
            )
            m.update(logits.argmax(1), torch.stack([x["mask"] for x in items]))
    assert (
        seen[0]["val"]["val/f1"]
        == seen[1]["val"]["val/f1"]
        == pytest.approx(m.compute()["f1"], abs=1e-7)
    )
