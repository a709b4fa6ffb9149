"""The registered CNN, PARULA, transforms, losses, configs."""

from __future__ import annotations

import numpy as np
import pytest
import timm
import torch
from PIL import Image

import bus_classify.models  # noqa: F401  (registers bus_cnn_small)
from bus_classify.data.io import BusClassifyError
from bus_classify.data.parula import PARULA_STOPS, apply_parula, parula_lut
from bus_classify.data.transforms import build_transform
from bus_classify.engine.config import available, load_config
from bus_classify.engine.losses import FocalLoss, build_loss, inverse_frequency_weights
from bus_classify.models import create_model


def test_cnn_registered_param_count_and_shapes():
    m = timm.create_model("bus_cnn_small", num_classes=2)
    # conv 3->32, 32->64, 64->128 (3x3) + linear 128*26*26 -> 2
    expected = (
        (3 * 9 * 32 + 32) + (32 * 9 * 64 + 64) + (64 * 9 * 128 + 128) + (128 * 26 * 26 * 2 + 2)
    )
    assert sum(p.numel() for p in m.parameters()) == expected == 266306
    assert m(torch.randn(2, 3, 224, 224)).shape == (2, 2)
    assert m.forward_features(torch.randn(1, 3, 224, 224)).shape == (1, 128, 26, 26)
    m3 = create_model("bus_cnn_small", 3, img_size=64)
    assert m3(torch.randn(4, 3, 64, 64)).shape == (4, 3)
    assert "bus_cnn_small" in timm.list_models("bus_*")


def test_local_weight_file_roundtrip(tmp_path):
    a = create_model("bus_cnn_small", 2, img_size=64)
    torch.save(a.state_dict(), tmp_path / "w.pth")
    b = create_model("bus_cnn_small", 2, img_size=64, weights=str(tmp_path / "w.pth"))
    x = torch.randn(1, 3, 64, 64)
    assert torch.allclose(a.eval()(x), b.eval()(x))
    with pytest.raises(BusClassifyError, match="missing.pth: weight file not found"):
        create_model("bus_cnn_small", 2, weights=str(tmp_path / "missing.pth"))


def test_parula_end_colours():
    lut = parula_lut()
    assert lut.shape == (256, 3)
    assert tuple(lut[0]) == tuple(np.round(PARULA_STOPS[0] * 255).astype(int))  # dark blue
    assert tuple(lut[-1]) == tuple(np.round(PARULA_STOPS[-1] * 255).astype(int))  # yellow
    gray = Image.fromarray(np.array([[0, 255] * 20] * 40, np.uint8), "L")
    rgb = np.asarray(apply_parula(gray))
    assert rgb.shape == (40, 40, 3)
    assert tuple(rgb[0, 0]) == (62, 38, 168) and tuple(rgb[0, 1]) == (249, 251, 21)


def test_transforms_shapes_and_normalisation():
    img = Image.fromarray((np.random.default_rng(0).random((80, 100, 3)) * 255).astype(np.uint8))
    ev = build_transform(48)(img)
    assert ev.shape == (3, 48, 48) and ev.dtype == torch.float32
    white = build_transform(32)(Image.new("RGB", (40, 40), (255, 255, 255)))
    assert torch.allclose(white[0], torch.full((32, 32), (1 - 0.485) / 0.229), atol=1e-4)
    tr = build_transform(48, train=True, parula=True)
    torch.manual_seed(0)
    a, b = tr(img), tr(img)
    assert a.shape == (3, 48, 48) and not torch.equal(a, b)  # random augmentation


def test_losses():
    logits = torch.randn(16, 2)
    y = torch.randint(0, 2, (16,))
    ce = torch.nn.functional.cross_entropy(logits, y)
    assert torch.allclose(FocalLoss(gamma=0.0)(logits, y), ce, atol=1e-6)
    assert FocalLoss(gamma=2.0)(logits, y) < ce
    w = inverse_frequency_weights([0, 1, 1, 1], 2)
    assert w == pytest.approx([2.0, 2 / 3])
    wce = build_loss("weighted_ce", w)(logits, y)
    ref = torch.nn.functional.cross_entropy(logits, y, weight=torch.tensor(w))
    assert torch.allclose(wce, ref)
    with pytest.raises(ValueError):
        build_loss("hinge", None)
    # label smoothing eps: target (1 - eps) on the class, eps / k spread over all k classes
    eps, logp = 0.1, torch.log_softmax(logits, dim=1)
    by_hand = -((1 - eps) * logp.gather(1, y[:, None]).squeeze(1) + eps / 2 * logp.sum(1)).mean()
    assert torch.allclose(build_loss("ce", None, label_smoothing=eps)(logits, y), by_hand)
    with pytest.raises(ValueError, match="label_smoothing"):
        build_loss("ce", None, label_smoothing=1.0)


def test_mixup_loss_is_the_mixed_pair_of_losses():
    from bus_classify.engine.module import BusClassifier

    torch.manual_seed(0)
    m = BusClassifier(model="bus_cnn_small", img_size=32, loss="ce", mixup=0.4)
    m.log = lambda *a, **k: None  # no trainer attached
    x, y = torch.randn(6, 3, 32, 32), torch.tensor([0, 1, 1, 0, 1, 1])
    torch.manual_seed(1)
    loss = m.training_step((x, y), 0)
    torch.manual_seed(1)  # the same draws: lambda, then the pairing
    lam = float(torch.distributions.Beta(0.4, 0.4).sample())
    perm = torch.randperm(6)
    logits = m(lam * x + (1 - lam) * x[perm])
    ce = torch.nn.functional.cross_entropy
    assert torch.allclose(loss, lam * ce(logits, y) + (1 - lam) * ce(logits, y[perm]))
    assert not torch.allclose(loss, ce(m(x), y))
    with pytest.raises(ValueError, match="mixup"):
        BusClassifier(model="bus_cnn_small", img_size=32, mixup=-1.0)


def test_configs():
    assert {"cnn", "swin", "cnn_demo", "swin_demo"} <= set(available())
    swin = load_config("swin")
    assert swin["model"] == "swin_tiny_patch4_window7_224"
    assert (swin["lr"], swin["weight_decay"], swin["batch_size"], swin["epochs"]) == (
        3e-5,
        0.2,
        16,
        15,
    )
    cnn = load_config("cnn", ["epochs=3", "loss=focal"])
    assert (cnn["lr"], cnn["batch_size"], cnn["epochs"], cnn["loss"]) == (1e-3, 32, 3, "focal")
    with pytest.raises(ValueError, match="unknown config key"):
        load_config("cnn", ["bogus=1"])


def test_import_models_registers_cnn():
    """`import bus_classify.models` registers the CNN with timm (the bare package import stays
    free of torch/timm so the CLI starts fast)."""
    import subprocess
    import sys

    code = (
        "import bus_classify.models, timm; "
        "print(timm.create_model('bus_cnn_small', num_classes=2).num_classes)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "2"


@pytest.mark.parametrize("name", timm.list_models("bus_*"))
def test_registered_models_follow_timm_contract(name):
    """Every ``bus_*`` model honours timm's interface: forward/backward, reset_classifier,
    forward_head(pre_logits), and pretrained_cfg names that exist in the state dict."""
    model = timm.create_model(name, num_classes=3, img_size=64)
    x = torch.randn(2, 3, 64, 64)
    out = model(x)
    assert out.shape == (2, 3)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    keys = model.state_dict().keys()
    cfg = model.pretrained_cfg
    for field in ("first_conv", "classifier"):
        assert any(k.startswith(cfg[field] + ".") for k in keys), (field, cfg[field])
    assert model.get_classifier() is dict(model.named_modules())[cfg["classifier"]]
    feats = model.forward_features(x)
    assert model.forward_head(feats, pre_logits=True).shape == (2, model.num_features)
    model.reset_classifier(0)
    assert model(x).shape == (2, model.num_features)
    model.reset_classifier(5)
    assert model(x).shape == (2, 5) and model.num_classes == 5


def test_checkpoint_save_load_pair(tmp_path):
    from bus_classify.engine.checkpoint import load_classifier, save_classifier

    net = create_model("bus_cnn_small", 2, img_size=64).eval()
    hp = {"model": "bus_cnn_small", "num_classes": 2, "img_size": 64, "class_names": ["a", "b"]}
    save_classifier(net, hp, tmp_path / "c.ckpt")
    back, hp2 = load_classifier(tmp_path / "c.ckpt", expected_classes=2)
    x = torch.randn(2, 3, 64, 64)
    assert torch.equal(net(x), back(x)) and hp2["class_names"] == ["a", "b"]
    with pytest.raises(BusClassifyError, match="c.ckpt: checkpoint has 2 classes"):
        load_classifier(tmp_path / "c.ckpt", expected_classes=3)


def test_crop_scale_takes_a_window_and_scales_it_back():
    from torchvision.transforms import v2

    # a 32 px image with a unique value per pixel: the crop must equal some 16 x 16 window of it
    # resized to 32 px (scale 0.25 of the area, aspect 1)
    arr = (np.arange(32 * 32).reshape(32, 32) % 251).astype(np.uint8)
    img = Image.fromarray(np.stack([arr] * 3, -1))
    crop = v2.RandomResizedCrop(32, scale=(0.25, 0.25), ratio=(1.0, 1.0), antialias=True)
    torch.manual_seed(3)
    out = np.asarray(crop(img))
    windows = [
        np.asarray(img.crop((j, i, j + 16, i + 16)).resize((32, 32), Image.Resampling.BILINEAR))
        for i in range(17)
        for j in range(17)
    ]
    assert sum(np.array_equal(out, w) for w in windows) >= 1
    # the package's transform: training-only, output size unchanged
    tr = build_transform(32, train=True, augment="none", crop_scale=0.25)
    ev = build_transform(32, train=False, augment="none", crop_scale=0.25)
    plain = build_transform(32, train=False, augment="none")
    assert tr(img).shape == (3, 32, 32)
    assert torch.equal(ev(img), plain(img))
    torch.manual_seed(0)
    assert not torch.equal(tr(img), plain(img))
    assert torch.equal(
        build_transform(32, train=True, augment="none", crop_scale=1.0)(img), plain(img)
    )
    for bad in (0.0, 1.5):
        with pytest.raises(BusClassifyError, match="crop_scale"):
            build_transform(32, train=True, crop_scale=bad)


def test_intensity_jitter_and_gamma():
    from bus_classify.data.transforms import RandomGamma

    x = torch.tensor([0.0, 0.25, 1.0])
    assert torch.allclose(RandomGamma((2.0, 2.0))(x), torch.tensor([0.0, 0.0625, 1.0]))
    assert torch.allclose(RandomGamma((0.5, 0.5))(x), torch.tensor([0.0, 0.5, 1.0]))
    torch.manual_seed(0)
    g = [RandomGamma((0.7, 1.3))(torch.tensor([0.5])).item() for _ in range(200)]
    assert 0.5**1.3 - 1e-6 <= min(g) < max(g) <= 0.5**0.7 + 1e-6  # gamma drawn in [0.7, 1.3]
    img = Image.new("RGB", (32, 32), (128, 128, 128))
    plain = build_transform(32, augment="none")(img)
    tr = build_transform(32, train=True, augment="none", intensity=0.3)
    torch.manual_seed(0)
    outs = [tr(img) for _ in range(5)]
    assert all(o.shape == (3, 32, 32) for o in outs)
    assert any(not torch.allclose(o, plain) for o in outs)  # brightness / gamma moved the grey
    assert torch.equal(build_transform(32, train=False, intensity=0.3)(img), plain)
    with pytest.raises(BusClassifyError, match="intensity"):
        build_transform(32, train=True, intensity=1.0)
