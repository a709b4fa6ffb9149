"""The training-only lesion-mask loss (``seg_aux``): joint image/mask transforms, masks in the
dataset, :class:`LesionHead`'s loss, the classifier's training step and a short training run."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import tv_tensors

import bus_classify.models  # noqa: F401  (registers bus_cnn_small)
from bus_classify.data.dataset import BusDataset
from bus_classify.data.io import BusClassifyError
from bus_classify.data.sources import read_mask
from bus_classify.data.split import read_csv
from bus_classify.data.transforms import Letterbox, build_transform
from bus_classify.engine.checkpoint import load_classifier
from bus_classify.engine.config import load_config
from bus_classify.engine.datamodule import BusDataModule
from bus_classify.engine.module import BusClassifier, LesionHead
from bus_classify.engine.train import train
from bus_classify.models import create_model

RAW = {"mean": (0.0, 0.0, 0.0), "std": (1.0, 1.0, 1.0)}  # no z-score: thresholdable at 0.5


def _rect_pair(w: int = 96, h: int = 80, box=(12, 16, 52, 48)):
    """A black RGB image with a bright off-centre rectangle and the matching Mask."""
    x0, y0, x1, y1 = box
    arr = np.zeros((h, w), np.uint8)
    arr[y0:y1, x0:x1] = 1
    img = Image.fromarray(np.dstack([arr * 230] * 3), "RGB")
    return img, tv_tensors.Mask(torch.from_numpy(arr)[None])


def _module(seg_aux: float = 1.0, **kw) -> BusClassifier:
    kw = {"model": "bus_cnn_small", "img_size": 32, "loss": "ce", **kw}
    return BusClassifier(seg_aux=seg_aux, **kw)


def _batch(n: int = 4, size: int = 32, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, size, size, generator=g)
    y = torch.arange(n) % 2
    mask = (torch.rand(n, 1, size, size, generator=g) > 0.7).float()
    mask[:, :, : size // 2, : size // 2] = 1.0
    has = torch.tensor([1.0, 1.0, 0.0, 1.0][:n], dtype=torch.float64)  # collate gives float64
    return x, y, mask, has


# --- transforms -----------------------------------------------------------------------------


@pytest.mark.parametrize("augment", ["light", "report"])
@pytest.mark.parametrize("resize", ["letterbox", "stretch"])
def test_joint_transform_keeps_mask_on_the_lesion(augment, resize):
    img, mask = _rect_pair()
    tf = build_transform(48, train=True, augment=augment, resize=resize, crop_scale=0.7, **RAW)
    ref = build_transform(48, train=False, resize=resize, **RAW)(img, mask)[1]
    moved = 0
    torch.manual_seed(0)
    for _ in range(12):
        x, m = tf(img, mask)
        assert x.shape == (3, 48, 48) and x.dtype == torch.float32
        assert isinstance(m, tv_tensors.Mask) and m.shape == (1, 48, 48)
        assert m.dtype == torch.uint8 and set(m.unique().tolist()) <= {0, 1}
        lesion, on = x[0] > 0.45, m[0].bool()
        assert (lesion == on).float().mean() > 0.95
        assert (lesion & on).sum() / (lesion | on).sum() > 0.8  # IoU
        assert 100 < int(m.sum()) < 48 * 48 // 2  # the lesion is still there, not everything
        # control: a mask that missed the flip would not match (the test can fail)
        assert (lesion & on.flip(-1)).sum() / (lesion | on.flip(-1)).sum() < 0.6
        moved += not torch.equal(m, ref)
    assert moved >= 10  # the geometry really moved the mask (crop / flip / affine)


def test_letterbox_places_mask_at_hand_computed_rows():
    # 40 wide x 20 high -> 20 px: scale 0.5, 20x10 content, 5 rows of padding above and below
    arr = np.zeros((20, 40), np.uint8)
    arr[4:12, 8:24] = 1
    img = Image.fromarray(np.dstack([arr * 255] * 3), "RGB")
    m = tv_tensors.Mask(torch.from_numpy(arr)[None])
    canvas, boxed = Letterbox(20)(img, m)
    assert canvas.size == (20, 20) and boxed.shape == (1, 20, 20)
    expected = torch.zeros(1, 20, 20, dtype=torch.uint8)
    expected[0, 7:11, 4:12] = 1  # rows 4..11 -> 2..5 (+5 pad), cols 8..23 -> 4..11
    assert torch.equal(boxed.as_subclass(torch.Tensor), expected)
    pix = np.asarray(canvas)[..., 0]
    assert pix[:5].max() == 0 and pix[15:].max() == 0  # black padding rows
    assert ((pix > 127) == expected[0].numpy().astype(bool)).mean() > 0.95

    # tall, odd padding: 22 wide x 40 high -> 11x20 content, left 4, right 5; two masks
    arr = np.zeros((40, 22), np.uint8)
    arr[:, :2] = 1  # first two columns
    img = Image.fromarray(np.dstack([arr * 255] * 3), "RGB")
    a = tv_tensors.Mask(torch.from_numpy(arr)[None])
    b = tv_tensors.Mask(torch.from_numpy(1 - arr)[None])
    canvas, ma, mb = Letterbox(20)(img, a, b)
    assert ma.shape == mb.shape == (1, 20, 20)
    cols = ma[0].any(dim=0).nonzero().flatten().tolist()
    assert cols == [4]  # column 0 of the 11-wide content, after 4 columns of padding
    assert mb[0, :, 5:15].all() and not mb[0, :, :4].any() and not mb[0, :, 15:].any()
    assert isinstance(Letterbox(20)(img), Image.Image)  # one input: just the image, as before


@pytest.mark.parametrize(
    "kw",
    [
        {"train": False, "resize": "letterbox"},
        {"train": True, "augment": "light", "resize": "stretch"},
        {"train": True, "augment": "report", "resize": "letterbox", "crop_scale": 0.7},
        {"train": True, "augment": "report", "intensity": 0.2, "parula": True},
    ],
)
def test_image_output_does_not_depend_on_a_mask(kw):
    """The baseline path (no mask) draws the same random numbers and gives the same tensor."""
    img, mask = _rect_pair()
    noisy = Image.fromarray(
        (np.random.default_rng(0).random((40, 48, 3)) * 255).astype(np.uint8), "RGB"
    )
    tf = build_transform(32, **kw)
    for seed in range(4):
        for im in (img, noisy):
            torch.manual_seed(seed)
            alone = tf(im)
            after_alone = torch.get_rng_state()
            torch.manual_seed(seed)
            joint, _ = tf(im, mask)
            assert isinstance(alone, torch.Tensor) and alone.shape == (3, 32, 32)
            assert torch.equal(alone, joint)
            assert torch.equal(after_alone, torch.get_rng_state())


# --- LesionHead -----------------------------------------------------------------------------


def test_lesion_head_loss_by_hand():
    model = create_model("bus_cnn_small", 2, img_size=32)
    head = LesionHead(model, 32)
    assert head.conv.in_channels == 128 and head.conv.out_channels == 1 and not head.nhwc
    feats = torch.randn(3, 128, 2, 2)  # bus_cnn_small at 32 px: 15 -> 6 -> 2
    mask = torch.zeros(3, 1, 32, 32)
    mask[0, 0, :16, :16] = 1  # cell (0, 0) full
    mask[1, 0, :16, :8] = 1  # cell (0, 0) half
    mask[1, 0, 16:, 16:20] = 1  # cell (1, 1) a quarter
    mask[2] = 1  # ignored below (has_mask 0)
    b = 0.7
    with torch.no_grad():
        head.conv.weight.zero_()
        head.conv.bias.fill_(b)
    p = 1 / (1 + math.exp(-b))

    def bce(t: float) -> float:
        return -(t * math.log(p) + (1 - t) * math.log(1 - p))

    img0 = (bce(1.0) + 3 * bce(0.0)) / 4
    img1 = (bce(0.5) + bce(0.25) + 2 * bce(0.0)) / 4
    has = torch.tensor([1.0, 1.0, 0.0])
    assert head.loss(feats, mask, has).item() == pytest.approx((img0 + img1) / 2, rel=1e-5)
    mask[2] = 0  # an image without a mask does not count, whatever its mask holds
    assert head.loss(feats, mask, has).item() == pytest.approx((img0 + img1) / 2, rel=1e-5)
    only0 = torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64)
    assert head.loss(feats, mask, only0).item() == pytest.approx(img0, rel=1e-5)
    none = head.loss(feats, mask, torch.zeros(3))
    assert none.item() == 0.0 and torch.isfinite(none)

    # real weights: the logits are the 1x1 conv of the features
    torch.nn.init.normal_(head.conv.weight)
    logits = torch.einsum("nchw,c->nhw", feats, head.conv.weight.flatten()) + head.conv.bias
    target = torch.nn.functional.avg_pool2d(mask, 16)[:, 0]
    ref = torch.nn.functional.binary_cross_entropy_with_logits(logits, target, reduction="none")
    want = ref.mean(dim=(1, 2))[:2].mean()
    got = head.loss(feats, mask, has)
    assert got.item() == pytest.approx(want.item(), rel=1e-5)
    got.backward()
    assert head.conv.weight.grad is not None and head.conv.weight.grad.abs().sum() > 0


def test_lesion_head_on_nhwc_swin_and_rejects_token_backbones():
    swin = create_model(
        "swin_tiny_patch4_window7_224",
        2,
        img_size=32,
        model_kwargs={"window_size": 4, "embed_dim": 16, "depths": (1, 1), "num_heads": (1, 2)},
    )
    swin.train()
    head = LesionHead(swin, 32)
    assert head.nhwc and head.conv.in_channels == 32 and swin.training  # mode restored
    feats = swin.forward_features(torch.randn(2, 3, 32, 32))  # (N, H, W, C)
    assert head(feats).shape == (2, 1, *feats.shape[1:3])
    loss = head.loss(feats, torch.ones(2, 1, 32, 32), torch.ones(2))
    assert torch.isfinite(loss) and loss > 0
    vit = create_model(
        "vit_tiny_patch16_224",
        2,
        img_size=32,
        model_kwargs={"embed_dim": 16, "depth": 1, "num_heads": 1},
    )
    with pytest.raises(BusClassifyError, match="2-D feature map"):
        LesionHead(vit, 32)


# --- dataset / datamodule -------------------------------------------------------------------


def test_busdataset_masks_on_synthetic_busi(split_csv):
    rows = read_csv(split_csv)
    tf = build_transform(32, train=False, resize="letterbox")
    plain = BusDataset(rows, tf)
    ds = BusDataset(rows, tf, cache=True, masks=True)
    dups = [i for i, r in enumerate(rows) if "(dup" in r["path"]]
    assert len(dups) == 3 and ds.count_masks() == len(rows) - 3
    for i, r in enumerate(rows):
        x, label, m, has = ds[i]
        assert label == r["label"] and m.dtype == torch.float32 and m.shape == (1, 32, 32)
        assert torch.equal(x, plain[i][0])  # the image is unchanged by loading its mask
        assert has == (0.0 if i in dups else 1.0) and isinstance(has, float)
        assert set(m.unique().tolist()) <= {0.0, 1.0}
        if i in dups or "normal" in r["path"]:
            assert m.sum() == 0  # no file / BUSI's empty masks of normal images
        else:
            assert m.sum() > 0
    benign = next(i for i, r in enumerate(rows) if "benign (" in r["path"] and i not in dups)
    path = rows[benign]["path"]
    raw = np.asarray(Image.open(path[: -len(".png")] + "_mask.png").convert("L")) > 127
    want = Letterbox(32)(Image.new("RGB", raw.shape[::-1]), tv_tensors.Mask(raw[None]))[1]
    assert torch.equal(ds[benign][2].bool(), want.as_subclass(torch.Tensor))
    assert len(plain[benign]) == 2  # masks=False: the (image, label) of before


def test_busdataset_mask_union_missing_and_wrong_size(tmp_path):
    folder = tmp_path / "benign"
    folder.mkdir()
    img = Image.fromarray(np.full((40, 40), 90, np.uint8), "L")
    left, right = np.zeros((40, 40), np.uint8), np.zeros((40, 40), np.uint8)
    left[10:20, 2:10], right[25:30, 30:38] = 255, 255
    img.save(folder / "benign (1).png")
    Image.fromarray(left, "L").save(folder / "benign (1)_mask.png")
    Image.fromarray(right, "L").save(folder / "benign (1)_mask_1.png")
    img.save(folder / "benign (10).png")  # its name starts like "benign (1)": no mask of its own
    img.save(folder / "benign (2).png")
    Image.fromarray(np.zeros((20, 20), np.uint8), "L").save(folder / "benign (2)_mask.png")
    rows = [{"path": str(folder / f"benign ({k}).png"), "label": 1} for k in (1, 10, 2)]
    tf = build_transform(40, resize="letterbox", **RAW)
    ds = BusDataset(rows[:2], tf, masks=True)
    _, _, m, has = ds[0]
    assert has == 1.0 and int(m.sum()) == 80 + 40  # union of both lesions
    assert m[0, 10:20, 2:10].all() and m[0, 25:30, 30:38].all()
    _, _, m, has = ds[1]
    assert has == 0.0 and m.sum() == 0
    assert ds.count_masks() == 1 and BusDataset(rows, tf).count_masks() == 2
    # a mask of the wrong size stops the dataset when it is built (headers only), before training
    with pytest.raises(BusClassifyError, match=r"benign \(2\)_mask\.png: mask is 20x20 px"):
        BusDataset(rows, tf, masks=True)
    with pytest.raises(BusClassifyError, match=r"benign \(2\)_mask\.png: mask is 20x20 px"):
        read_mask(rows[2]["path"], (40, 40))  # the loader's own check says the same


def test_datamodule_gives_train_masks_only(split_csv, caplog):
    kw = {"split_csv": str(split_csv), "img_size": 32, "batch_size": 4, "num_workers": 0}
    with caplog.at_level(logging.INFO, logger="bus_classify.engine.datamodule"):
        dm = BusDataModule(**kw, seg_aux=0.5)
    n = len(dm.datasets["train"])
    k = dm.datasets["train"].count_masks()
    assert f"lesion-mask loss: {k} of {n} training images have a mask file" in caplog.text
    assert dm.datasets["train"].masks and not dm.datasets["val"].masks
    assert not dm.datasets["test"].masks
    assert not BusDataModule(**kw).datasets["train"].masks
    x, y, m, has = dm.datasets["train"][0]
    assert x.shape == (3, 32, 32) and m.shape == (1, 32, 32)
    assert len(dm.datasets["val"][0]) == 2


# --- BusClassifier --------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:.*self.log.*:UserWarning")
@pytest.mark.parametrize("seg_aux", [1.0, 2.5])
def test_training_step_is_ce_plus_weighted_seg_loss(seg_aux):
    torch.manual_seed(0)
    mod = _module(seg_aux).eval()  # eval: no dropout, so the two passes see the same network
    x, y, mask, has = _batch()
    got = mod.training_step((x, y, mask, has), 0)
    feats = mod.model.forward_features(x)
    ce = torch.nn.functional.cross_entropy(mod.model(x), y)
    seg = mod.seg_head.loss(feats, mask, has)
    assert seg.item() > 0.1
    assert got.item() == pytest.approx(ce.item() + seg_aux * seg.item(), rel=1e-5)
    # gradients reach the head and the backbone
    got.backward()
    assert mod.seg_head.conv.weight.grad.abs().sum() > 0
    assert mod.model.features[0].weight.grad.abs().sum() > 0
    # the head is trained too
    opt = mod.configure_optimizers()
    ids = {id(p) for g in opt.param_groups for p in g["params"]}
    assert {id(p) for p in mod.seg_head.parameters()} <= ids
    assert {id(p) for p in mod.model.parameters()} <= ids


@pytest.mark.filterwarnings("ignore:.*self.log.*:UserWarning")
def test_training_step_with_mixup_mixes_masks():
    torch.manual_seed(0)
    mod = _module(1.0, mixup=0.4).eval()
    x, y, mask, has = _batch()
    torch.manual_seed(5)
    got = mod.training_step((x, y, mask, has), 0)
    torch.manual_seed(5)
    lam = float(torch.distributions.Beta(0.4, 0.4).sample())
    perm = torch.randperm(4)
    xm = lam * x + (1 - lam) * x[perm]
    logits = mod.model(xm)
    ce = lam * torch.nn.functional.cross_entropy(logits, y) + (
        1 - lam
    ) * torch.nn.functional.cross_entropy(logits, y[perm])
    seg = mod.seg_head.loss(
        mod.model.forward_features(xm), lam * mask + (1 - lam) * mask[perm], has * has[perm]
    )
    assert got.item() == pytest.approx(ce.item() + seg.item(), rel=1e-5)


@pytest.mark.filterwarnings("ignore:.*self.log.*:UserWarning")
def test_seg_aux_off_negative_and_rng_untouched():
    x, y, mask, has = _batch()
    torch.manual_seed(0)
    off = _module(0.0).eval()
    after_off = torch.get_rng_state()
    assert off.seg_head is None and not any(k.startswith("seg_head") for k in off.state_dict())
    # the 4-tuple batch of a masked dataset is accepted; the loss is the classification loss
    ce = torch.nn.functional.cross_entropy(off.model(x), y)
    assert off.training_step((x, y, mask, has), 0).item() == pytest.approx(ce.item(), rel=1e-6)
    assert off.training_step((x, y), 0).item() == pytest.approx(ce.item(), rel=1e-6)
    with pytest.raises(BusClassifyError, match="seg_aux must be >= 0"):
        _module(-0.1)
    torch.manual_seed(0)
    on = _module(1.0)
    assert torch.equal(after_off, torch.get_rng_state())  # the head drew nothing from the stream
    a, b = off.model.state_dict(), on.model.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert {k for k in on.state_dict() if k.startswith("seg_head")} == {
        "seg_head.conv.weight",
        "seg_head.conv.bias",
    }
    assert on.model.training  # building the head left the backbone in training mode
    torch.manual_seed(0)
    again = _module(1.0)  # the head itself is reproducible under a seed
    assert torch.equal(again.seg_head.conv.weight, on.seg_head.conv.weight)


def test_lesion_head_learns_on_a_fixed_batch():
    torch.manual_seed(0)
    mod = _module(1.0, model_kwargs={"drop_rate": 0.0})
    x, y, mask, has = _batch(seed=1)
    mask.zero_()
    mask[:, :, :16, :16] = 1.0  # one lesion cell of the 2x2 map (targets 1, 0, 0, 0)
    x[:, :, :16, :16] += 2.0  # where the images are bright
    params = list(mod.model.parameters()) + list(mod.seg_head.parameters())
    opt = torch.optim.AdamW(params, lr=3e-3)
    losses = []
    for _ in range(40):
        loss = mod.seg_head.loss(mod.model.forward_features(x), mask, has)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.25 * losses[0] and losses[-1] < min(losses[:10])


# --- a short run ----------------------------------------------------------------------------


def test_train_with_seg_aux_logs_and_checkpoint_loads(split_csv, tmp_path):
    fast = {
        "img_size": 32,
        "epochs": 3,
        "batch_size": 8,
        "num_workers": 0,
        "cache_images": True,
        "patience": 10,
        "scheduler": "none",
        "seg_aux": 1.0,
        "lr": 3e-3,
    }
    cfg = load_config("cnn", fast)
    assert load_config("cnn")["seg_aux"] == 0.0  # off by default
    best = train(cfg, str(split_csv), tmp_path / "seg", device="cpu", progress=False)
    ckpt = torch.load(best, map_location="cpu", weights_only=True)
    assert ckpt["hyper_parameters"]["seg_aux"] == 1.0
    assert {"seg_head.conv.weight", "seg_head.conv.bias"} <= set(ckpt["state_dict"])
    model, hp = load_classifier(best, expected_classes=2)
    state = model.state_dict()
    assert not any("seg_head" in k for k in state)
    assert all(torch.equal(v, ckpt["state_dict"][f"model.{k}"]) for k, v in state.items())
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    ev = EventAccumulator(str(tmp_path / "seg" / "tb"))
    ev.Reload()
    seg = [s.value for s in ev.Scalars("train_seg_loss")]
    total = [s.value for s in ev.Scalars("train_loss")]
    assert len(seg) == len(total) == 3
    assert all(0 < s < 1.5 for s in seg) and all(t > s for t, s in zip(total, seg))
    assert seg[-1] < seg[0]
    assert load_config("resnet18")["seg_aux"] == 10.0  # on for the ResNet-18 config (README)
    # resuming with the lesion head switched off: one clear error, not a state-dict traceback
    off = load_config("cnn", {**fast, "seg_aux": 0.0, "epochs": 4})
    with pytest.raises(BusClassifyError, match=r"last\.ckpt: trained with seg_aux=1\.0"):
        train(off, str(split_csv), tmp_path / "seg", device="cpu", progress=False, resume=True)


def test_seg_aux_without_mask_files_trains_like_seg_aux_zero(busi_dir, tmp_path):
    """No mask files at all: the mask loss is 0, so the network ends bit-identical to a run
    without the head (same seed, same random stream)."""
    import shutil

    from bus_classify.data.io import write_csv
    from bus_classify.data.sources import discover
    from bus_classify.data.split import make_split

    root = tmp_path / "nomasks"
    shutil.copytree(busi_dir, root, ignore=shutil.ignore_patterns("*_mask*"))
    rows, _ = make_split(discover(root), seed=0)
    csv = write_csv(tmp_path / "split.csv", rows)
    fast = {"img_size": 32, "epochs": 2, "batch_size": 8, "num_workers": 0, "scheduler": "none"}
    states = []
    for seg_aux in (0.0, 10.0):
        cfg = load_config("cnn", {**fast, "seg_aux": seg_aux})
        best = train(cfg, str(csv), tmp_path / f"s{seg_aux}", device="cpu", progress=False)
        states.append(torch.load(best, map_location="cpu", weights_only=True)["state_dict"])
    model_keys = [k for k in states[0] if k.startswith("model.")]
    assert model_keys and all(torch.equal(states[0][k], states[1][k]) for k in model_keys)
    assert "seg_head.conv.weight" in states[1] and "seg_head.conv.weight" not in states[0]


def test_mask_index_matches_mask_paths(split_csv, monkeypatch):
    """The dataset's mask lookup lists each folder once and finds what ``mask_paths`` finds."""
    from pathlib import Path

    from bus_classify.data import sources

    refs = [r["path"] for r in read_csv(split_csv)]
    want = {ref: sources.mask_paths(ref) for ref in refs}
    listed: list[Path] = []
    real = Path.iterdir
    monkeypatch.setattr(Path, "iterdir", lambda self: listed.append(self) or real(self))
    index = sources.mask_index([*refs, "some/hf/root::train::3"])
    assert {k: index[k] for k in refs} == want and any(want.values())
    assert index["some/hf/root::train::3"] == []
    assert sorted(map(str, listed)) == sorted({str(Path(r).parent) for r in refs})
