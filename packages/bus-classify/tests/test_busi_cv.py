"""The CV benchmark's per-epoch curve recorder: it records every validation and test margin
and leaves the training itself unchanged."""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

import torch
from sklearn.metrics import roc_auc_score

from bus_classify.engine.config import load_config
from bus_classify.engine.train import train


def _busi_cv():
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "busi_cv.py"
    spec = importlib.util.spec_from_file_location("busi_cv", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _weights(ckpt: Path) -> dict:
    return torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]


def test_epoch_curve_records_margins_without_changing_training(tmp_path, split_csv):
    cfg = load_config(
        "cnn", {"img_size": 32, "epochs": 2, "batch_size": 8, "num_workers": 0, "amp": False}
    )
    kw = dict(device="cpu", progress=False, save_last=False)
    plain = train(cfg, str(split_csv), tmp_path / "plain", **kw)
    curve = _busi_cv().epoch_curve_callback()
    recorded = train(cfg, str(split_csv), tmp_path / "curve", extra_callbacks=[curve], **kw)
    a, b = _weights(plain), _weights(recorded)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    rows = list(csv.DictReader(open(split_csv)))
    n = {s: sum(r["split"] == s for r in rows) for s in ("val", "test")}
    assert [e["epoch"] for e in curve.epochs] == [1, 2]
    for e in curve.epochs:
        assert len(e["val"]) == n["val"] and len(e["test"]) == n["test"]
        assert {"train_loss", "val_auc"} <= e.keys()
        y = curve.labels["val"]  # binary task: 1 = lump
        assert abs(roc_auc_score(y, e["val"]) - e["val_auc"]) < 0.02  # margins rounded to 3 dp
