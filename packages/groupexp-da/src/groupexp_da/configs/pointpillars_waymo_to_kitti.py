# Source-only Waymo -> KITTI (train on Waymo cars, evaluate KITTI val, R40 IoU 0.7).
_base_ = ["./_base_/pointpillars_cross_domain.py"]
train_dataloader = dict(dataset={{_base_.waymo_train}})
