# SECOND (sparse 3D convolution, GPU only) for car detection on xyz-only voxels, KITTI-scale grid
# (0.05 x 0.05 x 0.15 m voxels over 70.4 x 80 m), with the same ignore-band anchor head and
# train/test settings as PointPillars. A variable, not `model`: a config that inherits a
# PointPillars base lists this file too and sets `model = {{_base_.second_model}}` (`_delete_`
# replaces the PointPillars model); the synthetic SECOND base then overrides the grid.
second_model = dict(
    _delete_=True,
    type="VoxelNet",
    data_preprocessor=dict(
        type="Det3DDataPreprocessor",
        voxel=True,
        voxel_layer=dict(
            max_num_points=5,
            point_cloud_range=[0, -40, -2, 70.4, 40, 4],
            voxel_size=[0.05, 0.05, 0.15],
            max_voxels=(16000, 40000),
        ),
    ),
    voxel_encoder=dict(type="HardSimpleVFE", num_features=3),
    middle_encoder=dict(
        type="SparseEncoder",
        in_channels=3,
        sparse_shape=[41, 1600, 1408],
        order=("conv", "norm", "act"),
    ),
    backbone=dict(
        type="SECOND",
        in_channels=256,
        layer_nums=[5, 5],
        layer_strides=[1, 2],
        out_channels=[128, 256],
    ),
    neck=dict(
        type="SECONDFPN", in_channels=[128, 256], upsample_strides=[1, 2], out_channels=[256, 256]
    ),
    bbox_head=dict(
        type="IgnoreAwareAnchor3DHead",
        num_classes=1,
        in_channels=512,
        feat_channels=512,
        use_direction_classifier=True,
        assign_per_class=False,
        anchor_generator=dict(
            type="Anchor3DRangeGenerator",
            ranges=[[0, -40, -0.18, 70.4, 40, -0.18]],
            sizes=[[3.9, 1.6, 1.56]],
            rotations=[0, 1.57],
            reshape_out=True,
        ),
        diff_rad_by_sin=True,
        bbox_coder=dict(type="DeltaXYZWLHRBBoxCoder"),
        loss_cls=dict(
            type="mmdet.FocalLoss", use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=1.0
        ),
        loss_bbox=dict(type="mmdet.SmoothL1Loss", beta=1.0 / 9.0, loss_weight=2.0),
        loss_dir=dict(type="mmdet.CrossEntropyLoss", use_sigmoid=False, loss_weight=0.2),
    ),
    train_cfg=dict(
        assigner=dict(
            type="Max3DIoUAssigner",
            iou_calculator=dict(type="mmdet3d.BboxOverlapsNearest3D"),
            pos_iou_thr=0.6,
            neg_iou_thr=0.45,
            min_pos_iou=0.45,
            ignore_iof_thr=-1,
        ),
        allowed_border=0,
        pos_weight=-1,
        debug=False,
    ),
    test_cfg=dict(
        use_rotate_nms=True,
        nms_across_levels=False,
        nms_thr=0.01,
        score_thr=0.1,
        min_bbox_size=0,
        nms_pre=100,
        max_num=50,
    ),
)
