# GroupEXP-DA Waymo -> nuScenes; nuScenes scored KITTI-style with every car "easy".
_base_ = ["./pointpillars_groupexp_waymo_to_kitti.py"]
val_dataloader = dict(dataset={{_base_.nus_val}})
test_dataloader = val_dataloader
val_evaluator = {{_base_.nus_metric}}
test_evaluator = val_evaluator
st3d_target_dataset = dict(
    type="LidarCarDataset",
    data_root={{_base_.nus_root}},
    ann_file="nuscenes_infos_train.pkl",
    data_prefix=dict(pts="samples/LIDAR_TOP"),
    modality={{_base_.lidar}},
    test_mode=False,
)
st3d_train_pipeline = {{_base_.nus_train_pipeline}}
test_pipeline = {{_base_.nus_test_pipeline}}
