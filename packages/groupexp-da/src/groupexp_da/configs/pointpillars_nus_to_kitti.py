# Source-only nuScenes -> KITTI.
_base_ = ["./_base_/pointpillars_cross_domain.py"]
train_dataloader = dict(dataset={{_base_.nus_train}})
