# ST3D Waymo -> KITTI from a source-only checkpoint (pointpillars_waymo_to_kitti).
_base_ = ["./_base_/pointpillars_cross_domain.py"]
st3d = dict(
    rounds=6,
    epochs_per_round=5,
    score_thresh=0.6,
    neg_thresh=0.2,
    ensemble_iou=0.1,
    ignore_after=2,
    remove_after=3,
    lr=1.5e-3,
    progressive_aug=dict(ros=(0.05, 0.025), rot=(0.3, 0.1)),
)
st3d_batch_size = 4
# pseudo labels are stored in the LiDAR frame, so the target is read as a LiDAR dataset
st3d_target_dataset = dict(
    type="LidarCarDataset",
    data_root={{_base_.kitti_root}},
    ann_file="kitti_infos_train.pkl",
    data_prefix=dict(pts="training/velodyne_reduced"),
    modality={{_base_.lidar}},
    test_mode=False,
)
st3d_train_pipeline = {{_base_.kitti_train_pipeline}}
test_pipeline = {{_base_.kitti_test_pipeline}}
