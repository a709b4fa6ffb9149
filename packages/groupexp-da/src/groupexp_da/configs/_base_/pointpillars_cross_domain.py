# PointPillars for cross-dataset car detection (KITTI / nuScenes / Waymo info files made by
# mmdet3d's converters). xyz-only points, per-dataset z-shift (road at z ~ 0), car only,
# KITTI front-view range shared by every domain.
_base_ = ["./models/pointpillars.py"]
custom_imports = dict(imports=["groupexp_da.register"], allow_failed_imports=False)
default_scope = "mmdet3d"

kitti_root = "data/kitti/"
nus_root = "data/nuscenes/"
waymo_root = "data/waymo/kitti_format/"
point_cloud_range = [0, -39.68, -2, 69.12, 39.68, 4]
voxel_size = [0.16, 0.16, 6]
meta_keys = (
    "sample_idx",
    "lidar_path",
    "num_pts_feats",
    "box_mode_3d",
    "box_type_3d",
    "z_shift",
    "pcd_horizontal_flip",
    "pcd_vertical_flip",
    "pcd_trans",
    "pcd_scale_factor",
    "pcd_rotation",
    "pcd_rotation_angle",
    "transformation_3d_flow",
    "domain",
)
lidar = dict(use_lidar=True, use_camera=False)


def _train_pipeline(shift):
    return [
        dict(type="LoadPointsXYZ"),
        dict(type="LoadAnnotations3D", with_bbox_3d=True, with_label_3d=True),
        dict(type="ShiftZ", shift=shift),
        dict(type="UnifyCarClass", keep_ignore=True),
        dict(type="RandomObjectScaling", scale_range=[0.95, 1.05]),
        dict(type="RandomFlip3D", flip_ratio_bev_horizontal=0.5),
        dict(
            type="GlobalRotScaleTrans",
            rot_range=[-0.78539816, 0.78539816],
            scale_ratio_range=[0.95, 1.05],
        ),
        dict(type="UnifyPointRange", point_cloud_range=point_cloud_range),
        dict(type="PointShuffle"),
        dict(
            type="Pack3DDetInputs",
            keys=["points", "gt_bboxes_3d", "gt_labels_3d"],
            meta_keys=meta_keys,
        ),
    ]


def _test_pipeline(shift):
    return [
        dict(type="LoadPointsXYZ"),
        dict(type="ShiftZ", shift=shift),
        dict(type="UnifyPointRange", point_cloud_range=point_cloud_range),
        dict(type="Pack3DDetInputs", keys=["points"], meta_keys=meta_keys),
    ]


kitti_train_pipeline = _train_pipeline(1.6)
kitti_test_pipeline = _test_pipeline(1.6)
nus_train_pipeline = _train_pipeline(1.8)
nus_test_pipeline = _test_pipeline(1.8)
waymo_train_pipeline = _train_pipeline(0.0)
waymo_test_pipeline = _test_pipeline(0.0)
del _train_pipeline, _test_pipeline

kitti_train = dict(
    type="KittiDataset",
    data_root=kitti_root,
    ann_file="kitti_infos_train.pkl",
    data_prefix=dict(pts="training/velodyne_reduced"),
    pipeline=kitti_train_pipeline,
    metainfo=dict(classes=["Car"]),
    modality=lidar,
    test_mode=False,
    box_type_3d="LiDAR",
)
kitti_val = dict(
    type="KittiDataset",
    data_root=kitti_root,
    ann_file="kitti_infos_val.pkl",
    data_prefix=dict(pts="training/velodyne_reduced"),
    pipeline=kitti_test_pipeline,
    metainfo=dict(classes=["Car"]),
    modality=lidar,
    test_mode=True,
    box_type_3d="LiDAR",
)
nus_train = dict(
    type="NuScenesDataset",
    data_root=nus_root,
    ann_file="nuscenes_infos_train.pkl",
    data_prefix=dict(pts="samples/LIDAR_TOP", sweeps="sweeps/LIDAR_TOP"),
    pipeline=nus_train_pipeline,
    metainfo=dict(classes=["car"]),
    modality=lidar,
    test_mode=False,
    box_type_3d="LiDAR",
)
nus_val = dict(
    type="NuScenesDataset",
    data_root=nus_root,
    ann_file="nuscenes_infos_val.pkl",
    data_prefix=dict(pts="samples/LIDAR_TOP", sweeps="sweeps/LIDAR_TOP"),
    pipeline=nus_test_pipeline,
    metainfo=dict(classes=["car"]),
    modality=lidar,
    test_mode=True,
    box_type_3d="LiDAR",
)
waymo_train = dict(
    type="WaymoDataset",
    data_root=waymo_root,
    ann_file="waymo_infos_train.pkl",
    data_prefix=dict(pts="training/velodyne", sweeps="training/velodyne"),
    pipeline=waymo_train_pipeline,
    metainfo=dict(classes=["Car"]),
    modality=lidar,
    test_mode=False,
    box_type_3d="LiDAR",
    load_interval=5,
)

kitti_metric = dict(
    type="CarAPMetric", ann_file=kitti_root + "kitti_infos_val.pkl", gt_format="kitti"
)
nus_metric = dict(
    type="CarAPMetric",
    ann_file=nus_root + "nuscenes_infos_val.pkl",
    gt_format="nuscenes",
    all_easy=True,
    pcd_limit_range=point_cloud_range,
)

train_dataloader = dict(
    batch_size=6,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type="DefaultSampler", shuffle=True),
    dataset=kitti_train,
)
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type="DefaultSampler", shuffle=False),
    dataset=kitti_val,
)
test_dataloader = val_dataloader
val_evaluator = kitti_metric
test_evaluator = val_evaluator

max_epochs = 80
lr = 1e-3
optim_wrapper = dict(
    type="OptimWrapper",
    optimizer=dict(type="AdamW", lr=lr, betas=(0.95, 0.99), weight_decay=0.01),
    clip_grad=dict(max_norm=35, norm_type=2),
)
param_scheduler = [
    dict(type="LinearLR", start_factor=0.1, by_epoch=False, begin=0, end=500),
    dict(
        type="CosineAnnealingLR",
        T_max=max_epochs,
        eta_min=lr * 1e-2,
        by_epoch=True,
        begin=0,
        end=max_epochs,
        convert_to_iter_based=True,
    ),
]
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=10)
val_cfg = dict()
test_cfg = dict()
default_hooks = dict(
    timer=dict(type="IterTimerHook"),
    logger=dict(type="LoggerHook", interval=50),
    param_scheduler=dict(type="ParamSchedulerHook"),
    checkpoint=dict(type="CheckpointHook", interval=1, max_keep_ckpts=3),
    sampler_seed=dict(type="DistSamplerSeedHook"),
    visualization=dict(type="Det3DVisualizationHook"),
)
env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method="fork", opencv_num_threads=0),
    dist_cfg=dict(backend="nccl"),
)
log_processor = dict(type="LogProcessor", window_size=50, by_epoch=True)
log_level = "INFO"
load_from = None
resume = False
randomness = dict(seed=0)
vis_backends = [dict(type="LocalVisBackend"), dict(type="TensorboardVisBackend")]
visualizer = dict(type="Det3DLocalVisualizer", vis_backends=vis_backends, name="visualizer")
