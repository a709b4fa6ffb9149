"""Training (Lightning) -> resume -> eval -> predict -> Grad-CAM on tiny synthetic data."""

from __future__ import annotations

import csv
import json

import pytest
import torch

from bus_classify.engine.checkpoint import load_classifier
from bus_classify.engine.config import load_config
from bus_classify.engine.train import train
from bus_classify.eval.evaluate import evaluate
from bus_classify.eval.gradcam import gradcam_overlays
from bus_classify.eval.predict import predict_folder

FAST = {
    "img_size": 32,
    "epochs": 2,
    "batch_size": 8,
    "num_workers": 0,
    "cache_images": True,
    "patience": 10,
    "scheduler": "none",  # the resume test extends the run, which a one-cycle schedule cannot
}


@pytest.fixture(scope="module")
def trained(split_csv, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    cfg = load_config("cnn", {**FAST, "loss": "focal", "sampler": "balanced"})
    best = train(cfg, str(split_csv), out, device="cpu", progress=False)
    return out, best, cfg


def test_training_writes_checkpoints_and_loss_goes_down(trained):
    out, best, _ = trained
    assert best.name == "best.ckpt" and (out / "checkpoints" / "last.ckpt").exists()
    assert (out / "config.yaml").exists()
    ckpt = torch.load(best, weights_only=True)
    assert ckpt["hyper_parameters"]["loss"] == "focal"
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    ev = EventAccumulator(str(out / "tb"))
    ev.Reload()
    losses = [s.value for s in ev.Scalars("train_loss")]
    assert len(losses) == 2 and losses[-1] < losses[0]
    # per-epoch validation F1-macro and ROC-AUC; the best checkpoint is chosen on val_auc
    assert len(ev.Scalars("val_f1")) == len(ev.Scalars("val_auc")) == 2
    # the combined selection score (monitor val_auc_f1) is the mean of the two, per epoch
    for both, auc, f1 in zip(*(ev.Scalars(k) for k in ("val_auc_f1", "val_auc", "val_f1"))):
        assert both.value == pytest.approx((auc.value + f1.value) / 2, abs=1e-5)
    best_auc = max(s.value for s in ev.Scalars("val_auc"))
    state = [
        v
        for k, v in ckpt["callbacks"].items()
        if k.startswith(("ModelCheckpoint", "SelectFromEpochCheckpoint"))
        and v["monitor"] == "val_auc"
    ][0]
    assert state["monitor"] == "val_auc" and float(state["best_model_score"]) == pytest.approx(
        best_auc
    )


def test_resume_continues_from_last(trained, split_csv):
    out, _, cfg = trained
    before = torch.load(out / "checkpoints" / "last.ckpt", weights_only=True)
    cfg = {**cfg, "epochs": 3}
    train(cfg, str(split_csv), out, device="cpu", resume=True, progress=False)
    last = torch.load(out / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["global_step"] == before["global_step"] * 3 // 2  # one more epoch of steps
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    ev = EventAccumulator(str(out / "tb"))
    ev.Reload()
    # a restart from zero would log three more epochs; resuming logs exactly one
    assert len(ev.Scalars("train_loss")) == 3


def test_checkpoint_class_mismatch_is_clear(trained):
    _, best, _ = trained
    model, hp = load_classifier(best, expected_classes=2)
    assert hp["class_names"] == ["no_lump", "lump"]
    with pytest.raises(ValueError, match="checkpoint has 2 classes but the data has 3"):
        load_classifier(best, expected_classes=3)


def test_eval_predict_gradcam(trained, split_csv, busi_dir, tmp_path):
    _, best, _ = trained
    m = evaluate(best, split_csv, tmp_path / "eval", target_sensitivity=0.9, tta=True)
    saved = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert set(
        ["accuracy", "f1_macro", "roc_auc", "pr_auc", "ece", "ece_calibrated", "threshold"]
    ) <= set(saved)
    assert 0.0 <= m["accuracy"] <= 1.0 and m["details"]["temperature"] > 0
    assert m["details"]["nll_val_calibrated"] <= m["details"]["nll_val"] + 1e-9
    for f in ("confusion_matrix.png", "reliability.png", "summary.md", "calibration.json"):
        assert (tmp_path / "eval" / f).exists()
    d = m["details"]  # default decision: the validation share of "no lump", on the test scores
    assert d["decision_rule"] == "prevalence" and m["f1_macro"] == d["decision"]["f1_macro"]
    m2 = evaluate(best, split_csv, tmp_path / "eval2", tta=True, decision="argmax")
    assert m2["f1_macro"] == m2["details"]["argmax"]["f1_macro"] == d["argmax"]["f1_macro"]
    assert "decision" not in m2["details"]
    rows = predict_folder(
        best,
        busi_dir / "normal",
        tmp_path / "preds.csv",
        calibration=tmp_path / "eval" / "calibration.json",
    )
    with open(tmp_path / "preds.csv") as f:
        back = list(csv.DictReader(f))
    assert (
        len(back)
        == len(rows)
        == len([p for p in (busi_dir / "normal").glob("*.png") if "_mask" not in p.name])
    )
    assert set(back[0]) == {"file", "prob_lump", "prob_lump_calibrated", "label"}
    assert all(r["label"] in ("lump", "no_lump") for r in back)
    paths = gradcam_overlays(best, [back[0]["file"]], tmp_path / "cam")
    assert paths[0].exists()


def test_gradcam_swin_maps():
    from bus_classify.eval.gradcam import gradcam_maps
    from bus_classify.models import create_model

    swin = create_model(
        "swin_tiny_patch4_window7_224",
        2,
        img_size=32,
        model_kwargs={"window_size": 4, "embed_dim": 16, "depths": (1, 1), "num_heads": (1, 2)},
    ).eval()
    maps = gradcam_maps(swin, torch.randn(2, 3, 32, 32), 1)
    assert maps.shape == (2, 32, 32) and maps.min() >= 0 and maps.max() <= 1.0 + 1e-6


def test_three_class_training_from_same_split(split_csv, tmp_path):
    cfg = load_config("cnn", {**FAST, "epochs": 1, "task": "3class", "scheduler": "onecycle"})
    best = train(cfg, str(split_csv), tmp_path / "r3", device="cpu", progress=False)
    _, hp = load_classifier(best, expected_classes=3)
    assert hp["class_names"] == ["benign", "malignant", "normal"]
    m = evaluate(best, split_csv, tmp_path / "e3")
    assert len(m["details"]["argmax"]["confusion_matrix"]) == 3
    assert m["roc_auc"] is not None  # lump group (benign + malignant) vs normal


def test_ema_weights_are_validated_and_saved(split_csv, tmp_path):
    """With ``ema_decay`` the checkpoint holds the moving average (Lightning's
    EMAWeightAveraging), which differs from the raw weights it keeps beside it and is what
    ``load_classifier`` rebuilds."""
    cfg = load_config("cnn", {**FAST, "epochs": 1, "ema_decay": 0.5})
    best = train(cfg, str(split_csv), tmp_path / "ema", device="cpu", progress=False)
    ckpt = torch.load(best, map_location="cpu", weights_only=True)
    avg, raw = ckpt["state_dict"], ckpt["current_model_state"]
    key = next(k for k in avg if k.startswith("model.") and k.endswith("weight"))
    assert not torch.equal(avg[key], raw[key])
    model, _ = load_classifier(best)
    assert torch.equal(model.state_dict()[key[len("model.") :]], avg[key])
    with pytest.raises(ValueError, match="ema_decay"):
        train({**cfg, "ema_decay": 1.5}, str(split_csv), tmp_path / "bad", progress=False)
