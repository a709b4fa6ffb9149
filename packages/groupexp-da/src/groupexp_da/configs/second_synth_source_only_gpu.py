# Source-only SECOND on the synthetic benchmark (GPU: sparse convolution).
_base_ = ["./_base_/second_synth.py"]
max_epochs = 40
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
