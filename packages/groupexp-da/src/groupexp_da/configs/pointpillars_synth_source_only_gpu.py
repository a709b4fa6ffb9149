# Source-only PointPillars on the synthetic benchmark, GPU batch/workers (same model as CPU).
_base_ = ["./_base_/pointpillars_synth_cpu.py"]
train_dataloader = dict(batch_size=8, num_workers=4, persistent_workers=True)
val_dataloader = dict(batch_size=8, num_workers=2, persistent_workers=True)
test_dataloader = val_dataloader
max_epochs = 40
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
