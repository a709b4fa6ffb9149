# Oracle SECOND on the synthetic target domain (GPU).
_base_ = ["./_base_/second_synth.py"]
train_domain = "target"
train_dataloader = dict(dataset=dict(data_root={{_base_.target_root}}))
max_epochs = 40
train_cfg = dict(max_epochs=max_epochs, val_interval=max_epochs)
