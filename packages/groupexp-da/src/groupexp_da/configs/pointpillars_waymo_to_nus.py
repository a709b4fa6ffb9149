# Source-only Waymo -> nuScenes; nuScenes is scored KITTI-style with every car "easy".
_base_ = ["./_base_/pointpillars_cross_domain.py"]
train_dataloader = dict(dataset={{_base_.waymo_train}})
val_dataloader = dict(dataset={{_base_.nus_val}})
test_dataloader = val_dataloader
val_evaluator = {{_base_.nus_metric}}
test_evaluator = val_evaluator
