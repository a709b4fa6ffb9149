# PointPillars for car detection (KITTI-scale grid: 0.16 m pillars over the front 69.1 x 79.4 m),
# the ignore-band anchor head and its train/test settings. Shared by every PointPillars config:
# the synthetic base overrides only the grid and the channel widths. Values are literals because
# mmengine evaluates a base file's variables when it loads the base, so a child that changes
# `point_cloud_range` must also set the model keys that use it.
model = dict(
    type="VoxelNet",
    data_preprocessor=dict(
        type="Det3DDataPreprocessor",
        voxel=True,
        voxel_layer=dict(
            max_num_points=32,
            point_cloud_range=[0, -39.68, -2, 69.12, 39.68, 4],
            voxel_size=[0.16, 0.16, 6],
            max_voxels=(16000, 40000),
        ),
    ),
    voxel_encoder=dict(
        type="PillarFeatureNet",
        in_channels=3,
        feat_channels=[64],
        with_distance=False,
        voxel_size=[0.16, 0.16, 6],
        point_cloud_range=[0, -39.68, -2, 69.12, 39.68, 4],
    ),
    middle_encoder=dict(type="PointPillarsScatter", in_channels=64, output_shape=[496, 432]),
    backbone=dict(
        type="SECOND",
        in_channels=64,
        layer_nums=[3, 5, 5],
        layer_strides=[2, 2, 2],
        out_channels=[64, 128, 256],
    ),
    neck=dict(
        type="SECONDFPN",
        in_channels=[64, 128, 256],
        upsample_strides=[1, 2, 4],
        out_channels=[128, 128, 128],
    ),
    bbox_head=dict(
        type="IgnoreAwareAnchor3DHead",
        num_classes=1,
        in_channels=384,
        feat_channels=384,
        use_direction_classifier=True,
        assign_per_class=False,
        anchor_generator=dict(
            type="AlignedAnchor3DRangeGenerator",
            ranges=[[0, -39.68, -0.18, 69.12, 39.68, -0.18]],
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
