"""The plugin is registered with nerfstudio, and a few CPU iterations train the instance field."""

from __future__ import annotations

import pytest
import torch

from instance_nerf.engine.config import instance_cpu_config, nerfacto_cpu_config
from instance_nerf.models.losses import instance_ce_loss
from instance_nerf.models.offline import latest_checkpoint, load_checkpoint


def test_registered_in_nerfstudio_registries():
    from nerfstudio.configs.dataparser_configs import all_dataparsers
    from nerfstudio.configs.method_configs import all_methods

    from instance_nerf.data.dataparser import InstanceDataParserConfig
    from instance_nerf.models.instance_nerfacto import InstanceNerfModelConfig

    assert "instance-nerf" in all_methods
    cfg = all_methods["instance-nerf"]
    assert isinstance(cfg.pipeline.model, InstanceNerfModelConfig)
    assert "instance_field" in cfg.optimizers
    assert isinstance(all_dataparsers["instance-nerf-data"], InstanceDataParserConfig)


def _trainer(cfg):
    cfg.set_timestamp()
    trainer = cfg.setup(local_rank=0, world_size=1)
    trainer.setup()
    return trainer


def _instance_loss(trainer, batches):
    model = trainer.pipeline.model
    with torch.no_grad():
        return sum(
            float(instance_ce_loss(model(rb)["instance_logits"], b["instance"]))
            for rb, b in batches
        )


def test_joint_iterations_lower_instance_loss(tiny_scene, tmp_path):
    torch.manual_seed(0)
    trainer = _trainer(instance_cpu_config(tiny_scene, tmp_path, max_iters=12, rays_per_batch=128))
    model = trainer.pipeline.model
    assert model.num_instances == 4 and not model.nerf_frozen
    dm = trainer.pipeline.datamanager
    fixed = [dm.next_train(0) for _ in range(2)]
    assert fixed[0][1]["patch_size"] == 8 and fixed[0][1]["instance"].shape == (128, 1)
    model.train()
    before = _instance_loss(trainer, fixed)
    trainer.train()
    model.train()
    after = _instance_loss(trainer, fixed)
    assert after < 0.8 * before
    out = model(fixed[0][0])
    assert out["instance_logits"].shape == (128, 4) and out["instance"].shape == (128, 3)


def test_two_stage_freezes_nerf(tiny_scene, tmp_path):
    torch.manual_seed(0)
    from instance_nerf.data.dataparser import InstanceDataParserConfig

    nerf = _trainer(
        nerfacto_cpu_config(tiny_scene, InstanceDataParserConfig(), tmp_path / "a", max_iters=2)
    )
    nerf.train()
    ckpt = latest_checkpoint(nerf.config.get_checkpoint_dir())
    trainer = _trainer(
        instance_cpu_config(
            tiny_scene, tmp_path / "b", max_iters=4, rays_per_batch=128, nerfacto_checkpoint=ckpt
        )
    )
    model = trainer.pipeline.model
    assert model.nerf_frozen
    assert set(trainer.optimizers.parameters) == {"instance_field"}
    ref = nerf.pipeline.model.field.mlp_base.state_dict()
    for k, v in model.field.mlp_base.state_dict().items():
        assert torch.equal(v, ref[k])  # loaded from the nerfacto checkpoint
    inst_before = [p.detach().clone() for p in model.field.instance_parameters()]
    trainer.train()
    for k, v in model.field.mlp_base.state_dict().items():
        assert torch.equal(v, ref[k])  # frozen
    moved = [not torch.equal(a, b) for a, b in zip(inst_before, model.field.instance_parameters())]
    assert any(moved)

    # A nerfacto checkpoint from multi-GPU training keeps DDP's "module." prefix; it loads too.
    blob = load_checkpoint(ckpt)
    blob["pipeline"] = {
        k.replace("_model.", "_model.module.", 1): v for k, v in blob["pipeline"].items()
    }
    ddp_ckpt = tmp_path / "ddp" / "step-000000002.ckpt"
    ddp_ckpt.parent.mkdir()
    torch.save(blob, ddp_ckpt)
    with torch.no_grad():
        for v in model.field.mlp_base.parameters():
            v.zero_()
    model.load_nerfacto(ddp_ckpt)
    for k, v in model.field.mlp_base.state_dict().items():
        assert torch.equal(v, ref[k])


@pytest.mark.gpu
def test_joint_iterations_on_cuda(tiny_scene, tmp_path):
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    torch.manual_seed(0)
    trainer = _trainer(
        instance_cpu_config(tiny_scene, tmp_path, max_iters=20, rays_per_batch=256, device="cuda")
    )
    dm = trainer.pipeline.datamanager
    fixed = [dm.next_train(0) for _ in range(2)]
    trainer.pipeline.model.train()
    before = _instance_loss(trainer, fixed)
    trainer.train()
    trainer.pipeline.model.train()
    assert _instance_loss(trainer, fixed) < before
