# GroupEXP-DA stage 1, GPU batch/workers (same model as the CPU config).
_base_ = ["./pointpillars_synth_groupexp_src_cpu.py"]
train_dataloader = dict(batch_size=8, num_workers=4, persistent_workers=True)
val_dataloader = dict(batch_size=8, num_workers=2, persistent_workers=True)
test_dataloader = val_dataloader
