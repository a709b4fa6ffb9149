import pytest
import torch


@pytest.mark.gpu
def test_embedding_on_cuda_matches_cpu(synth_dir):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    from spheroid_rank.data.metadata import load_experiment
    from spheroid_rank.engine.config import SSLConfig
    from spheroid_rank.engine.embed import extract
    from spheroid_rank.models.ssl import build_method

    t = load_experiment(synth_dir).iloc[:32]
    cfg = SSLConfig(backbone="resnet18", img_size=64, load_size=72)
    m = build_method("simclr", backbone="resnet18", in_chans=1, img_size=64).eval()
    cpu = extract(m, t, cfg, device="cpu")
    gpu = extract(m, t, cfg, device="cuda")
    assert gpu.shape == cpu.shape
    torch.testing.assert_close(torch.from_numpy(gpu), torch.from_numpy(cpu), atol=2e-3, rtol=2e-3)


@pytest.mark.gpu
def test_ssl_training_amp_on_cuda(synth_dir, tmp_path):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    from spheroid_rank.data.metadata import load_experiment
    from spheroid_rank.engine.train import SSLConfig, train_ssl

    t = load_experiment(synth_dir)
    cfg = SSLConfig(backbone="resnet18", img_size=64, load_size=72, epochs=2, batch_size=64)
    path = train_ssl(t, tmp_path, cfg, progress=False)
    assert path.exists() and (tmp_path / "checkpoints" / "last.ckpt").exists()
