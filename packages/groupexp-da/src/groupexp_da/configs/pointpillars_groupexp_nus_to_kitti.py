# GroupEXP-DA nuScenes -> KITTI (stage 1: `train` on nuScenes; then `adapt`).
_base_ = ["./pointpillars_groupexp_waymo_to_kitti.py"]
train_dataloader = dict(dataset={{_base_.nus_train}})
