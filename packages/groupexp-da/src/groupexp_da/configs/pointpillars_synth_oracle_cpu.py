# Oracle: train on labelled synthetic target data, evaluate on the target validation split.
_base_ = ["./_base_/pointpillars_synth_cpu.py"]
train_domain = "target"
train_dataloader = dict(dataset=dict(data_root={{_base_.target_root}}))
