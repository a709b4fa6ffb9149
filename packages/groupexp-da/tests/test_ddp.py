"""``torchrun --nproc_per_node 2`` + ``launcher='pytorch'`` + gloo on CPU through the ``groupexp-da`` CLI.

The same file is the per-rank script: torchrun runs it, it records what the rank writes and which
samples its training loop gets, then calls ``groupexp_da.cli.main`` for each command. The test
compares the ranks with each other and with one process (``main`` in the test process).
"""

from __future__ import annotations

import collections
import json
import os
import pickle
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

PKG = Path(__file__).resolve().parents[1]
SHIPPED = PKG / "src" / "groupexp_da" / "configs"
WORLD = 2
EPOCHS = 1
DDP = ["launcher=pytorch", "env_cfg.dist_cfg.backend=gloo"]

# Training pipeline without random augmentation: rank r and the single process draw different
# random numbers for the same frame, so only a deterministic pipeline can give equal weights.
CONFIG = """
_base_ = ['@BASE@']
train_pipeline = [
    dict(type='LoadPointsXYZ'),
    dict(type='LoadAnnotations3D', with_bbox_3d=True, with_label_3d=True),
    dict(type='ShiftZ'),
    dict(type='UnifyCarClass', keep_ignore=True),
    dict(type='UnifyPointRange', point_cloud_range={{_base_.point_cloud_range}}),
    dict(type='Pack3DDetInputs', keys=['points', 'gt_bboxes_3d', 'gt_labels_3d'],
         meta_keys={{_base_.meta_keys}}),
]
train_dataloader = dict(batch_size=1, sampler=dict(type='DefaultSampler', shuffle=True, seed=0),
                        dataset=dict(pipeline=train_pipeline))
param_scheduler = []
train_cfg = dict(by_epoch=True, max_epochs=@EPOCHS@, val_interval=1000)
default_hooks = dict(logger=dict(type='LoggerHook', interval=1))
st3d = dict(rounds=1, epochs_per_round=1, score_thresh=0.05, neg_thresh=0.0)
model = dict(test_cfg=dict(score_thr=0.0))  # a 2-step model scores low: keep its boxes as labels
optim_wrapper = dict(accumulative_counts=@ACCUMULATE@)
"""


# ----------------------------------------------------------------------------- per-rank script
def record_runs(samples: dict, losses: dict, at_end=None):
    """Until the returned function is called, every ``Runner.train`` records, per work dir, the
    (epoch, sample ids) of each iteration and its loss, and calls ``at_end(runner)``."""
    from mmengine.hooks import Hook
    from mmengine.runner import Runner

    class Record(Hook):
        def before_train_iter(self, runner, batch_idx, data_batch=None):
            ids = [int(s.metainfo["sample_idx"]) for s in data_batch["data_samples"]]
            samples.setdefault(runner.work_dir, []).append([runner.epoch, ids])

        def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
            losses.setdefault(runner.work_dir, []).append(float(outputs["loss"]))

        def after_train(self, runner):
            if at_end is not None:
                at_end(runner)

    train = Runner.train

    def recorded_train(self):
        self.register_hook(Record(), priority="LOWEST")
        return train(self)

    Runner.train = recorded_train
    return lambda: setattr(Runner, "train", train)


def _rank_script() -> int:
    """Run the CLI commands in $DDP_COMMANDS, recording writes under $DDP_WATCH and the training
    samples of every Runner; dump them to $DDP_DUMP/rank<RANK>.json."""
    from groupexp_da.cli import main

    rank, watch = int(os.environ["RANK"]), os.environ["DDP_WATCH"]
    dump = Path(os.environ["DDP_DUMP"])
    writes: list[str] = []
    samples: dict[str, list] = {}
    losses: dict[str, list] = {}

    def audit(event, args):  # files opened for writing, and rename targets (atomic writers)
        if event not in ("open", "os.rename"):
            return
        path = os.fsdecode(args[0]) if isinstance(args[0], str | bytes) else ""  # tb: bytes
        if event == "open" and path.startswith(watch):
            mode, flags = args[1], args[2]
            w = any(c in mode for c in "wax+") if isinstance(mode, str) else bool(flags & 0o3103)
            if w:
                writes.append(path)
        elif event == "os.rename" and str(args[1]).startswith(watch):
            writes.append(str(args[1]))

    sys.addaudithook(audit)

    def save_weights(runner):
        model = runner.model.module if hasattr(runner.model, "module") else runner.model
        state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        tag = Path(runner.work_dir).relative_to(watch).as_posix().replace("/", "_")
        torch.save(state, dump / f"rank{rank}_{tag}.pt")

    record_runs(samples, losses, save_weights)
    for cmd in json.loads(os.environ["DDP_COMMANDS"]):
        rc = main(cmd)
        if rc:
            return rc
    record = {"writes": writes, "samples": samples, "losses": losses}
    (dump / f"rank{rank}.json").write_text(json.dumps(record))
    return 0


if __name__ == "__main__":
    sys.exit(_rank_script())


# ----------------------------------------------------------------------------- the test
pytestmark = pytest.mark.ddp


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Path:
    from groupexp_da.data.synth import write_domain

    root = tmp_path_factory.mktemp("synth")
    write_domain(root / "source", "source", 5, seed=0, val_fraction=0.2)
    write_domain(root / "target", "target", 5, seed=1, val_fraction=0.2)
    return root


def _config(path: Path, base: str, accumulate: int) -> str:
    text = CONFIG.replace("@BASE@", str(SHIPPED / f"{base}.py")).replace("@EPOCHS@", str(EPOCHS))
    path.write_text(text.replace("@ACCUMULATE@", str(accumulate)))
    return str(path)


def _params(state: dict) -> dict:
    """Trainable tensors only: BN running statistics are per rank (mmengine's DDP wrapper does not
    broadcast buffers), so they are not part of the comparison."""
    return {k: v for k, v in state.items() if "running_" not in k and "num_batches" not in k}


def test_torchrun_two_ranks_train_and_label_like_one_process(synth, tmp_path):
    """2 gloo ranks x batch 1 == 1 process x batch 1 with gradient accumulation 2.

    One torchrun launch runs ``groupexp-da train`` (PointPillars, 4 source frames, 1 epoch = 2
    steps) and one ``groupexp-da adapt`` ST3D round (pseudo labels on rank 0, one epoch of
    self-training, source and round evaluation). Checked: both ranks finish; rank 1 writes
    nothing, rank 0 writes checkpoints and label files once and leaves no temp file; per epoch
    the ranks get disjoint frames that together are all 4 (mmengine's ``DefaultSampler``); the
    1-process run sees the same frame at iteration 2s+r as rank r at step s, its losses equal the
    ranks' (rtol 1e-6) and its weights the DDP checkpoint (atol 1e-6, measured 0.0); the pseudo
    labels equal 1-process ``label_round`` from the same checkpoint exactly.

    Why batch 1 + accumulation: PointPillars' BatchNorm normalises over each rank's batch (SyncBN
    has no CPU kernel), so only per-rank batches of one frame have the same statistics in both
    runs. Why one thread in the 1-process run: with 2 threads CPU convolutions sum in another
    order and AdamW's sign-like first steps turn those last-bit differences into weight
    differences up to 7.6e-3 (3.8 lr) after 4 steps (measured); with equal thread counts the
    runs are bitwise equal.
    """
    from groupexp_da.cli import main
    from groupexp_da.engine.checkpoint import load_state_dict

    src, tgt = str(synth / "source"), str(synth / "target")
    ddp, ref, dump = tmp_path / "ddp", tmp_path / "ref", tmp_path / "dump"
    dump.mkdir()
    cfg2 = _config(tmp_path / "ddp_cfg.py", "pointpillars_synth_st3d_cpu", accumulate=1)
    cfg1 = _config(tmp_path / "ref_cfg.py", "pointpillars_synth_st3d_cpu", accumulate=WORLD)
    data = ["--source", src, "--target", tgt, "--device", "cpu"]
    ckpt = str(ddp / "train" / f"epoch_{EPOCHS}.pth")
    commands = [
        ["train", cfg2, *data, "--work-dir", str(ddp / "train"), "--cfg-options", *DDP],
        [
            "adapt",
            cfg2,
            *data,
            "--work-dir",
            str(ddp / "adapt"),
            "--source-ckpt",
            ckpt,
            "--cfg-options",
            *DDP,
        ],
    ]
    env = dict(
        os.environ,
        DDP_WATCH=str(ddp),
        DDP_DUMP=str(dump),
        DDP_COMMANDS=json.dumps(commands),
        OMP_NUM_THREADS="1",
        CUDA_VISIBLE_DEVICES="",
    )
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            str(WORLD),
            "--master_addr",
            "127.0.0.1",
            "--master_port",
            str(_free_port()),
            __file__,
        ],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [json.loads((dump / f"rank{r}.json").read_text()) for r in range(WORLD)]

    # only rank 0 writes; checkpoints and label files once; nothing half-written is left
    assert ranks[1]["writes"] == []
    written = collections.Counter(ranks[0]["writes"])
    on_disk = {str(p) for p in ddp.rglob("*") if p.is_file()}
    assert on_disk and on_disk <= set(written)
    assert not [p for p in on_disk if ".tmp" in Path(p).name]
    once = [p for p in written if p.endswith((".pth", "pseudo_labels.pkl", "label_stats.json"))]
    assert {Path(p).name for p in once} >= {
        f"epoch_{EPOCHS}.pth",
        "pseudo_labels.pkl",
        "label_stats.json",
        "final.pth",
    }
    assert all(written[p] == 1 for p in once), {p: written[p] for p in once}
    names = {Path(p).name for p in written}
    assert {"last_checkpoint", "scalars.json", "history.json", "done"} <= names
    assert any(n.endswith(".log") for n in names)

    # the global batch is split: per epoch disjoint frames, together all train frames once
    train_dir = str(ddp / "train")
    n_train = len(pickle.load(open(synth / "source" / "train_infos.pkl", "rb"))["data_list"])
    for epoch in range(EPOCHS):
        seen = [[i for e, ids in r["samples"][train_dir] if e == epoch for i in ids] for r in ranks]
        assert len(seen[0]) == len(seen[1]) == n_train // WORLD
        assert not set(seen[0]) & set(seen[1])
        assert sorted(seen[0] + seen[1]) == list(range(n_train))

    # ranks bitwise equal; the 1-process run (same thread count) agrees step by step
    w = [_params(torch.load(dump / f"rank{r}_train.pt", weights_only=True)) for r in range(WORLD)]
    for k in w[0]:
        assert torch.equal(w[0][k], w[1][k]), k
    ref_samples, ref_losses = {}, {}
    stop, threads = record_runs(ref_samples, ref_losses), torch.get_num_threads()
    torch.set_num_threads(1)  # as the ranks (OMP_NUM_THREADS=1)
    try:
        assert main(["train", cfg1, *data, "--work-dir", str(ref / "train")]) == 0
    finally:
        stop()
        torch.set_num_threads(threads)
    ref_train = str(ref / "train")
    # iteration i of the 1-process run is step i // 2 of rank i % 2: same frame, same weights
    assert [ids for _, ids in ref_samples[ref_train]] == [
        ranks[i % WORLD]["samples"][train_dir][i // WORLD][1]
        for i in range(len(ref_samples[ref_train]))
    ]
    ddp_losses = [
        ranks[i % WORLD]["losses"][train_dir][i // WORLD] for i in range(len(ref_losses[ref_train]))
    ]
    assert ref_losses[ref_train][:WORLD] == ddp_losses[:WORLD]  # before the first update: exact
    np.testing.assert_allclose(ref_losses[ref_train], ddp_losses, rtol=1e-6)
    one = _params(load_state_dict(ref / "train" / f"epoch_{EPOCHS}.pth"))
    saved = _params(load_state_dict(ckpt))
    assert set(one) == set(saved) == set(w[0])
    for k in saved:
        assert torch.equal(saved[k], w[0][k])  # the checkpoint holds the ranks' weights
    worst = max(float((one[k].float() - saved[k].float()).abs().max()) for k in one)
    assert worst <= 1e-6, worst  # measured: 0.0

    # ST3D round: rank 0 labels; the labels equal 1-process labelling from the same checkpoint
    from groupexp_da.engine.config import load_config
    from groupexp_da.engine.pseudo import PseudoCfg
    from groupexp_da.engine.st3d import label_round

    cfg = load_config(cfg1, source=src, target=tgt)
    keys = ("score_thresh", "neg_thresh", "ensemble_iou", "ignore_after", "remove_after")
    torch.set_num_threads(1)  # as rank 0 (scores differ in the 8th digit with 2 threads)
    try:
        label_round(
            cfg, ckpt, None, ref / "labels.pkl", PseudoCfg(**{k: cfg.st3d[k] for k in keys})
        )
    finally:
        torch.set_num_threads(threads)
    a = pickle.load(open(ddp / "adapt" / "round_0" / "pseudo_labels.pkl", "rb"))["data_list"]
    b = pickle.load(open(ref / "labels.pkl", "rb"))["data_list"]
    assert [x["sample_idx"] for x in a] == [x["sample_idx"] for x in b]
    assert sum(len(x["instances"]) for x in a) > 0
    for x, y in zip(a, b):
        assert x["instances"] == y["instances"]
    assert all(len(r["samples"][str(ddp / "adapt" / "round_0" / "train")]) > 0 for r in ranks)
    hist = json.loads((ddp / "adapt" / "history.json").read_text())
    assert [h["round"] for h in hist] == [-1, 0]


GROUP_CONFIG = """
_base_ = ['@BASE@']
train_dataloader = dict(batch_size=2)
train_cfg = dict(by_epoch=True, max_epochs=1, val_interval=1000)
default_hooks = dict(logger=dict(type='LoggerHook', interval=1))
"""


@pytest.mark.slow
def test_torchrun_group_statistics_identical_across_ranks(synth, tmp_path):
    """GroupEXP stage 1 under torchrun (2 gloo ranks, batch 2 each, 1 epoch): the Gaussian groups'
    buffers (mu, var, weight, initialized) end bitwise equal on both ranks although each rank saw
    other frames (k-means on rank 0 is broadcast, every EMA step uses statistics summed over the
    ranks), and only rank 0 writes ``groups.json``."""
    from groupexp_da.engine.checkpoint import load_state_dict

    src, tgt = str(synth / "source"), str(synth / "target")
    ddp, dump = tmp_path / "ddp", tmp_path / "dump"
    dump.mkdir()
    cfg = tmp_path / "group_cfg.py"
    cfg.write_text(
        GROUP_CONFIG.replace("@BASE@", str(SHIPPED / "pointpillars_synth_groupexp_src_cpu.py"))
    )
    data = ["--source", src, "--target", tgt, "--device", "cpu"]
    commands = [["train", str(cfg), *data, "--work-dir", str(ddp / "train"), "--cfg-options", *DDP]]
    env = dict(
        os.environ,
        DDP_WATCH=str(ddp),
        DDP_DUMP=str(dump),
        DDP_COMMANDS=json.dumps(commands),
        OMP_NUM_THREADS="1",
        CUDA_VISIBLE_DEVICES="",
    )
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(WORLD),
         "--master_addr", "127.0.0.1", "--master_port", str(_free_port()), __file__],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [json.loads((dump / f"rank{r}.json").read_text()) for r in range(WORLD)]
    assert ranks[1]["writes"] == []
    assert str(ddp / "train" / "groups.json") in ranks[0]["writes"]
    seen = [{i for _, ids in r["samples"][str(ddp / "train")] for i in ids} for r in ranks]
    assert not seen[0] & seen[1]
    states = [torch.load(dump / f"rank{r}_train.pt", weights_only=True) for r in range(WORLD)]
    keys = [k for k in states[0] if ".groups." in f".{k}"]
    assert {k.rsplit(".", 1)[1] for k in keys} >= {"mu", "var", "weight", "initialized"}
    for k in keys:
        assert torch.equal(states[0][k], states[1][k]), k
    saved = load_state_dict(ddp / "train" / "epoch_1.pth")
    for k in keys:
        assert torch.equal(saved[k], states[0][k]), k
