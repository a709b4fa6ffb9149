import inspect

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


def small_backbone(method: str) -> str:
    """The method's own default when it needs a ViT, else the small registered CNN."""
    default = inspect.signature(METHODS[method]).parameters["backbone"].default
    return default if default.startswith(("vit", "deit")) else "spheroid_cnn_small"


@pytest.mark.parametrize("method", sorted(METHODS))
def test_methods_train_and_embed(method):
    backbone = small_backbone(method)
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
    assert (
        m.method_name == method
        and build_method(method, backbone=backbone, in_chans=1, img_size=32).dim == m.dim
    )


def test_lightning_training_resumes_and_exports(synth_dir, tmp_path):
    from spheroid_rank.data.metadata import load_experiment
    from spheroid_rank.engine.checkpoint import load_model
    from spheroid_rank.engine.embed import extract
    from spheroid_rank.engine.train import SSLConfig, train_ssl

    t = load_experiment(synth_dir).iloc[:48]
    cfg = SSLConfig(
        backbone="spheroid_cnn_small", img_size=32, load_size=36, epochs=1, batch_size=16
    )
    path = train_ssl(t, tmp_path, cfg, progress=False)
    assert (tmp_path / "checkpoints" / "last.ckpt").exists()
    assert any((tmp_path / "tensorboard").rglob("events.*"))
    cfg2 = SSLConfig(**{**cfg.__dict__, "epochs": 2})
    train_ssl(t, tmp_path, cfg2, progress=False)  # resumes from epoch 1
    ck = torch.load(tmp_path / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert ck["global_step"] == 2 * (48 // 16)  # second call continued, not restarted
    model, c = load_model(path)
    emb = extract(model, t, c)
    assert emb.shape == (48, model.dim) and torch.isfinite(torch.from_numpy(emb)).all()


def test_checkpoint_round_trip_and_bad_files(tmp_path):
    from spheroid_rank.data.io import SpheroidRankError
    from spheroid_rank.engine.checkpoint import load_model, save_backbone
    from spheroid_rank.engine.config import SSLConfig

    cfg = SSLConfig(backbone="spheroid_cnn_small", img_size=32)
    assert cfg.load_size == 36  # derived from img_size, not stored twice
    m = build_method("simclr", backbone="spheroid_cnn_small", in_chans=1, img_size=32).eval()
    save_backbone(m, cfg, tmp_path / "b.pt")
    m2, cfg2 = load_model(tmp_path / "b.pt")
    assert cfg2 == cfg
    x = torch.rand(4, 1, 32, 32)
    torch.testing.assert_close(m2.embed(x), m.embed(x))
    assert [p.name for p in tmp_path.iterdir()] == ["b.pt"]  # no temp file left behind
    (tmp_path / "text.pt").write_text("hello")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    for name, what in (("text.pt", "not a torch file"), ("other.pt", "no 'config' key")):
        with pytest.raises(SpheroidRankError) as err:
            load_model(tmp_path / name)
        msg = str(err.value)
        assert msg.startswith(f"{tmp_path / name}: not a spheroid-rank checkpoint (")
        assert what in msg and "weights_only" not in msg
