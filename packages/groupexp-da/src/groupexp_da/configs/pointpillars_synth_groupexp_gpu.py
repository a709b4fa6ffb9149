# GroupEXP-DA self-training, GPU batch (4 source + 4 target frames per step).
_base_ = ["./pointpillars_synth_groupexp_cpu.py"]
st3d = dict(source_mix=dict(source_batch=4, target_batch=4))
st3d_batch_size = 8
train_dataloader = dict(batch_size=8, num_workers=4, persistent_workers=True)
val_dataloader = dict(batch_size=8, num_workers=2, persistent_workers=True)
test_dataloader = val_dataloader
