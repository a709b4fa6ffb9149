# SECOND (sparse 3D convolution, GPU only) for car detection on xyz-only voxels, KITTI-scale grid
# (0.05 x 0.05 x 0.15 m voxels over 70.4 x 80 m). A variable, not `model`: a config lists this
# file next to a PointPillars base and sets `model = {{_base_.second_model}}`, which replaces
# the PointPillars voxel encoder, middle encoder, backbone and neck (`_delete_`) and keeps its
# anchor head (./anchor_head.py) with SECOND's channels and anchor generator; the synthetic
# SECOND base then overrides the grid.
second_model = dict(
    data_preprocessor=dict(
        voxel_layer=dict(
            max_num_points=5,
            point_cloud_range=[0, -40, -2, 70.4, 40, 4],
            voxel_size=[0.05, 0.05, 0.15],
            max_voxels=(16000, 40000),
        ),
    ),
    voxel_encoder=dict(_delete_=True, type="HardSimpleVFE", num_features=3),
    middle_encoder=dict(
        _delete_=True,
        type="SparseEncoder",
        in_channels=3,
        sparse_shape=[41, 1600, 1408],
        order=("conv", "norm", "act"),
    ),
    backbone=dict(
        _delete_=True,
        type="SECOND",
        in_channels=256,
        layer_nums=[5, 5],
        layer_strides=[1, 2],
        out_channels=[128, 256],
    ),
    neck=dict(
        _delete_=True,
        type="SECONDFPN",
        in_channels=[128, 256],
        upsample_strides=[1, 2],
        out_channels=[256, 256],
    ),
    bbox_head=dict(
        in_channels=512,
        feat_channels=512,
        anchor_generator=dict(
            type="Anchor3DRangeGenerator", ranges=[[0, -40, -0.18, 70.4, 40, -0.18]]
        ),
    ),
)
