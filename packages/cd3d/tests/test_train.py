"""Lightning training from YAML configs: the loss goes down, checkpoints load, runs resume."""

import json

import pytest
import torch

from cd3d.data.io import CD3DError
from cd3d.engine.checkpoint import load_detector
from cd3d.engine.config import load_config
from cd3d.engine.train import train

# a per-pixel network keeps this Lightning test fast; smp models are trained in test_models.py
TINY = [
    "model.name=pixel_mlp",
    "model.kwargs={hidden: 16}",
    "data.batch_size=3",
    "trainer.accelerator=cpu",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "optim.lr=0.03",
    "trainer.log_every_n_steps=1",
]


def _cfg(root, out, epochs, extra=()):
    return load_config(
        "siam_unet.yaml",
        [f"data.root={root}", f"out={out}", f"trainer.max_epochs={epochs}", *TINY, *extra],
    )


def test_config_layers(tmp_path):
    user = tmp_path / "c.yaml"
    user.write_text("model: {name: mtbit}\nloss: {lambda_3d: 1.5}\n")
    cfg = load_config(user, ["trainer.max_epochs=7", "optim.lr=0.01"])
    assert cfg["model"]["name"] == "mtbit" and cfg["loss"]["lambda_3d"] == 1.5
    assert cfg["loss"]["class_weights"] == [0.05, 0.95]  # default kept
    assert cfg["trainer"]["max_epochs"] == 7 and cfg["optim"]["lr"] == 0.01
    with pytest.raises(CD3DError, match="nope.yaml"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ValueError, match="key.sub=value"):
        load_config(None, ["oops"])


def test_tiny_training_lowers_loss_and_resumes(synth_root, tmp_path):
    torch.set_num_threads(2)
    out = tmp_path / "run"
    res = train(_cfg(synth_root, out, 3), resume="auto")
    assert res["resumed_from"] is None and res["epochs"] == 3
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    ev = EventAccumulator(str(next((out / "tb").glob("version_*")))).Reload()
    losses = [e.value for e in ev.Scalars("train/loss")]
    assert len(losses) >= 3 and min(losses[-2:]) < losses[0]
    for name in ("best-f1.ckpt", "best-crmse.ckpt", "last.ckpt"):
        assert (out / "checkpoints" / name).is_file()
    assert json.loads((out / "stats.json").read_text())["tiles"] == 6
    det = load_detector(out / "checkpoints" / "best-f1.ckpt")  # weights_only=True inside
    with torch.no_grad():
        logits, h = det(torch.rand(1, 3, 64, 64), torch.rand(1, 3, 64, 64))
    assert logits.shape == (1, 2, 64, 64) and h.shape == (1, 1, 32, 32)
    assert det.model_name == "pixel_mlp" and det.height_scale == 40.0
    # resuming continues from last.ckpt up to the new max_epochs
    res2 = train(_cfg(synth_root, out, 4), resume="auto")
    assert res2["resumed_from"].endswith("last.ckpt") and res2["epochs"] == 4
    ck = torch.load(out / "checkpoints" / "last.ckpt", weights_only=True)
    assert ck["epoch"] == 4 and ck["hyper_parameters"]["detector"]["model"] == "pixel_mlp"


def test_missing_root_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="data.root"):
        train(load_config("siam_unet.yaml", [f"out={tmp_path}"]))
    with pytest.raises(CD3DError, match="nothing.ckpt"):
        load_detector(tmp_path / "nothing.ckpt")
