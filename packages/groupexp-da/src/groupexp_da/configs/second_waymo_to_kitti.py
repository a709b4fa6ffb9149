# Source-only SECOND Waymo -> KITTI (GPU; sparse convolution).
_base_ = ["./_base_/pointpillars_cross_domain.py", "./_base_/models/second.py"]
voxel_size = [0.05, 0.05, 0.15]
model = {{_base_.second_model}}
train_dataloader = dict(dataset={{_base_.waymo_train}})
