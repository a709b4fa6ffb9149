# PointPillars (small, CPU-friendly) on the synthetic LiDAR domain-shift benchmark.
# Points are xyz only and z-shifted per domain (info `z_shift`) so the road is near z = 0.
_base_ = ["./models/pointpillars.py"]
custom_imports = dict(imports=["groupexp_da.register"], allow_failed_imports=False)
default_scope = "mmdet3d"

source_root = "data/synth/source/"
target_root = "data/synth/target/"
point_cloud_range = [0, -19.2, -2.0, 38.4, 19.2, 4.0]
voxel_size = [0.24, 0.24, 6.0]
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

# the shared PointPillars model (./models/pointpillars.py) on this smaller grid and narrower net
model = dict(
    data_preprocessor=dict(
        voxel_layer=dict(
            point_cloud_range=point_cloud_range,
            voxel_size=voxel_size,
            max_voxels=(12000, 20000),
        ),
    ),
    voxel_encoder=dict(
        feat_channels=[32], voxel_size=voxel_size, point_cloud_range=point_cloud_range
    ),
    middle_encoder=dict(in_channels=32, output_shape=[160, 160]),
    backbone=dict(in_channels=32, layer_nums=[2, 3, 3], out_channels=[32, 64, 128]),
    neck=dict(in_channels=[32, 64, 128], out_channels=[64, 64, 64]),
    bbox_head=dict(
        in_channels=192,
        feat_channels=192,
        anchor_generator=dict(ranges=[[0, -19.2, -0.1, 38.4, 19.2, -0.1]]),
    ),
)


def _train_pipeline(ros=None, rot=0.3927):
    """The synthetic training pipeline; ``ros`` (a scale range) adds random object scaling."""
    scaling = [dict(type="RandomObjectScaling", scale_range=ros)] if ros else []
    return [
        dict(type="LoadPointsXYZ"),
        dict(type="LoadAnnotations3D", with_bbox_3d=True, with_label_3d=True),
        dict(type="ShiftZ"),
        dict(type="UnifyCarClass", keep_ignore=True),
        *scaling,
        dict(type="RandomFlip3D", flip_ratio_bev_horizontal=0.5),
        dict(type="GlobalRotScaleTrans", rot_range=[-rot, rot], scale_ratio_range=[0.95, 1.05]),
        dict(type="UnifyPointRange", point_cloud_range=point_cloud_range),
        dict(type="PointShuffle"),
        dict(
            type="Pack3DDetInputs",
            keys=["points", "gt_bboxes_3d", "gt_labels_3d"],
            meta_keys=meta_keys,
        ),
    ]


# defined once here (one grid for PointPillars and SECOND); the configs pick theirs:
# plain (source only, oracle), ROS stage 1 (`{{_base_.ros_train_pipeline}}`), and the ST3D /
# GroupEXP self-training rounds (widened per round by `st3d.progressive_aug`)
train_pipeline = _train_pipeline()
ros_train_pipeline = _train_pipeline(ros=[0.9, 1.2])
st3d_train_pipeline = _train_pipeline(ros=[0.95, 1.05], rot=0.2)
del _train_pipeline
test_pipeline = [
    dict(type="LoadPointsXYZ"),
    dict(type="ShiftZ"),
    dict(type="UnifyPointRange", point_cloud_range=point_cloud_range),
    dict(type="Pack3DDetInputs", keys=["points"], meta_keys=meta_keys),
]

train_dataloader = dict(
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
    sampler=dict(type="DefaultSampler", shuffle=True),
    dataset=dict(
        type="LidarCarDataset",
        data_root=source_root,
        ann_file="train_infos.pkl",
        data_prefix=dict(pts="points"),
        pipeline=train_pipeline,
        modality=dict(use_lidar=True, use_camera=False),
        test_mode=False,
    ),
)
val_dataloader = dict(
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
    drop_last=False,
    sampler=dict(type="DefaultSampler", shuffle=False),
    dataset=dict(
        type="LidarCarDataset",
        data_root=target_root,
        ann_file="val_infos.pkl",
        data_prefix=dict(pts="points"),
        pipeline=test_pipeline,
        modality=dict(use_lidar=True, use_camera=False),
        test_mode=True,
    ),
)
test_dataloader = val_dataloader
val_evaluator = dict(
    type="CarAPMetric",
    ann_file=target_root + "val_infos.pkl",
    gt_format="lidar",
    pcd_limit_range=[0, -19.2, -3, 38.4, 19.2, 3],
)
test_evaluator = val_evaluator

max_epochs = 12
lr = 2e-3
optim_wrapper = dict(
    type="OptimWrapper",
    optimizer=dict(type="AdamW", lr=lr, betas=(0.95, 0.99), weight_decay=0.01),
    clip_grad=dict(max_norm=35, norm_type=2),
)
param_scheduler = [
    dict(type="LinearLR", start_factor=0.1, by_epoch=False, begin=0, end=20),
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
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=max_epochs)
val_cfg = dict()
test_cfg = dict()

default_hooks = dict(
    timer=dict(type="IterTimerHook"),
    logger=dict(type="LoggerHook", interval=10),
    param_scheduler=dict(type="ParamSchedulerHook"),
    checkpoint=dict(type="CheckpointHook", interval=1, max_keep_ckpts=2),
    sampler_seed=dict(type="DistSamplerSeedHook"),
    visualization=dict(type="Det3DVisualizationHook"),
)
env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method="fork", opencv_num_threads=0),
    dist_cfg=dict(backend="nccl"),
)
log_processor = dict(type="LogProcessor", window_size=10, by_epoch=True)
log_level = "INFO"
load_from = None
resume = False
randomness = dict(seed=0)
vis_backends = [dict(type="LocalVisBackend"), dict(type="TensorboardVisBackend")]
visualizer = dict(type="Det3DLocalVisualizer", vis_backends=vis_backends, name="visualizer")

# ST3D self-training on the synthetic target, shared by the PointPillars and SECOND ST3D configs
# (`st3d = {{_base_.synth_st3d}}`, `st3d_target_dataset = {{_base_.synth_st3d_target_dataset}}`)
synth_st3d = dict(
    rounds=2,
    epochs_per_round=2,
    score_thresh=0.6,  # W->K 0.6, N->K / W->N 0.5 in the paper
    neg_thresh=0.2,
    ensemble_iou=0.1,
    ignore_after=2,
    remove_after=3,
    lr=2e-4,
    schedule="cosine",  # per round: decay to 1 % of lr ('constant' keeps it)
    progressive_aug=dict(ros=(0.05, 0.025), rot=(0.2, 0.1)),
)
synth_st3d_target_dataset = dict(
    type="LidarCarDataset",
    data_root=target_root,
    ann_file="train_infos.pkl",
    data_prefix=dict(pts="points"),
    modality=dict(use_lidar=True, use_camera=False),
    test_mode=False,
)
