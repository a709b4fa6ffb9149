"""Pretrained weights are the documented path for Swin: an ImageNet-shaped state dict (random
values, 1000 classes) saved as .safetensors and .pth loads through `train --weights` for two
classes (head re-initialised, every other tensor equal) and trains one step through the
package's Lightning `train()` (fp32 on CPU; bf16 on GPU, gpu-marked)."""

from __future__ import annotations

import pytest
import timm
import torch

from bus_classify.cli import main
from bus_classify.engine.checkpoint import read_checkpoint
from bus_classify.models import create_model

MICRO = {"window_size": 4, "embed_dim": 16, "depths": [1, 1], "num_heads": [1, 2]}
FULL: dict = {}


def _imagenet_state(tmp_path, suffix: str, kwargs: dict, img_size: int):
    torch.manual_seed(0)
    net = timm.create_model(
        "swin_tiny_patch4_window7_224", num_classes=1000, img_size=img_size, **kwargs
    )
    state = {k: v.clone() for k, v in net.state_dict().items()}
    path = tmp_path / f"swin_imagenet{suffix}"
    if suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(state, str(path))
    else:
        torch.save(state, path)
    return path, state


def _check_loaded(path, state, kwargs: dict, img_size: int) -> None:
    net = create_model("swin_tiny_patch4_window7_224", 2, img_size, str(path), kwargs)
    got = net.state_dict()
    head = net.pretrained_cfg["classifier"]  # "head.fc"
    assert got[f"{head}.weight"].shape == (2, state[f"{head}.weight"].shape[1])
    others = [k for k in got if not k.startswith(head + ".")]
    assert set(others) == {k for k in state if not k.startswith(head + ".")}
    for k in others:
        assert torch.equal(got[k], state[k]), k


def _train_one_step(
    tmp_path, split_csv, path, kwargs: dict, img_size: int, device: str, capsys
) -> dict:
    out = tmp_path / f"run_{device}_{path.suffix[1:]}"
    argv = [
        "train",
        "--split",
        str(split_csv),
        "--out",
        str(out),
        "--config",
        "swin",
        "--weights",
        str(path),
        "--img-size",
        str(img_size),
        "--epochs",
        "1",
        "--batch-size",
        "64",
        "--num-workers",
        "0",
        "--device",
        device,
        "--no-progress",
        "--set",
        f"model_kwargs={kwargs}",
    ]
    assert main(argv) == 0
    assert "best checkpoint" in capsys.readouterr().out
    ckpt = read_checkpoint(out / "checkpoints" / "last.ckpt")
    assert ckpt["global_step"] == 1  # one epoch of one batch: exactly one optimiser step
    return ckpt


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_swin_weights_load_and_train_cpu(tmp_path, split_csv, suffix, capsys):
    path, state = _imagenet_state(tmp_path, suffix, MICRO, 32)
    _check_loaded(path, state, MICRO, 32)
    ckpt = _train_one_step(tmp_path, split_csv, path, MICRO, 32, "cpu", capsys)
    trained = ckpt["state_dict"]
    moved = [
        k
        for k in state
        if not k.startswith("head.") and not torch.equal(trained["model." + k].float(), state[k])
    ]
    assert moved  # the step updated the pretrained body
    assert ckpt["hyper_parameters"]["weights"] == str(path)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_swin_weights_full_size_bf16_gpu(tmp_path, split_csv, suffix, capsys):
    path, state = _imagenet_state(tmp_path, suffix, FULL, 224)
    _check_loaded(path, state, FULL, 224)
    ckpt = _train_one_step(tmp_path, split_csv, path, FULL, 224, "cuda", capsys)
    assert ckpt["hyper_parameters"]["channels_last"] is True
    assert all(torch.isfinite(v.float()).all() for v in ckpt["state_dict"].values())
