import pytest
import torch

from spheroid_rank.data.transforms import eval_transform, ssl_transform, weak_transform
from spheroid_rank.models.ssl import METHODS, build_method


def test_grayscale_transforms_keep_one_channel():
    x = torch.rand(1, 72, 72)
    views = ssl_transform(64, channels=1)(x)
    assert len(views) == 2 and all(v.shape == (1, 64, 64) for v in views)
    assert weak_transform(64)(x).shape == (1, 64, 64)
    e = eval_transform(64)(x)
    assert e.shape == (1, 64, 64)
    torch.testing.assert_close(e, eval_transform(64)(x))  # deterministic
    x3 = torch.rand(3, 72, 72)
    assert ssl_transform(64, channels=3)(x3)[0].shape == (3, 64, 64)
    # normalisation is per channel: mean 0.5, std 0.25
    assert float(eval_transform(8)(torch.full((1, 8, 8), 0.75)).mean()) == pytest.approx(1.0)


@pytest.mark.parametrize("method,backbone", [("simclr", "spheroid_cnn_small"),
                                             ("byol", "spheroid_cnn_small"),
                                             ("dino", "spheroid_cnn_small"),
                                             ("mae", "vit_tiny_patch16_224")])
def test_methods_train_and_embed(method, backbone):
    torch.manual_seed(0)
    m = build_method(method, backbone=backbone, in_chans=1, img_size=32)
    params = [p for p in m.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-3)
    views = [torch.randn(8, 1, 32, 32), torch.randn(8, 1, 32, 32)]
    before = [p.detach().clone() for p in params]
    loss = m.loss(views, 0, 1)
    opt.zero_grad()
    loss.backward()
    opt.step()
    m.after_step(0, 10)
    assert torch.isfinite(loss)
    assert any(not torch.equal(a, p) for a, p in zip(before, params))
    m.eval()
    assert m.embed(views[0]).shape == (8, m.dim)
    assert set(METHODS) == {"simclr", "byol", "dino", "mae"}


def test_lightning_training_resumes_and_exports(synth_dir, tmp_path):
    from spheroid_rank.data.metadata import load_experiment
    from spheroid_rank.engine.embed import extract, load_model
    from spheroid_rank.engine.train import SSLConfig, train_ssl

    t = load_experiment(synth_dir).iloc[:48]
    cfg = SSLConfig(backbone="spheroid_cnn_small", img_size=32, load_size=36, epochs=1,
                    batch_size=16)
    path = train_ssl(t, tmp_path, cfg, progress=False)
    assert (tmp_path / "checkpoints" / "last.ckpt").exists()
    assert any((tmp_path / "tensorboard").rglob("events.*"))
    cfg2 = SSLConfig(**{**cfg.__dict__, "epochs": 2})
    train_ssl(t, tmp_path, cfg2, progress=False)  # resumes from epoch 1
    ck = torch.load(tmp_path / "checkpoints" / "last.ckpt", map_location="cpu",
                    weights_only=False)
    assert ck["global_step"] == 2 * (48 // 16)  # second call continued, not restarted
    model, c = load_model(path)
    emb = extract(model, t, c)
    assert emb.shape == (48, model.dim) and torch.isfinite(torch.from_numpy(emb)).all()
