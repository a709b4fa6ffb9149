# PointPillars for car detection (KITTI-scale grid: 0.16 m pillars over the front 69.1 x 79.4 m)
# with the shared ignore-band anchor head (./anchor_head.py). Shared by every PointPillars
# config: the synthetic base overrides only the grid and the channel widths. Values are literals
# because mmengine evaluates a base file's variables when it loads the base, so a child that
# changes `point_cloud_range` must also set the model keys that use it.
_base_ = ["./anchor_head.py"]
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
        in_channels=384,
        feat_channels=384,
        anchor_generator=dict(
            type="AlignedAnchor3DRangeGenerator",
            ranges=[[0, -39.68, -0.18, 69.12, 39.68, -0.18]],
        ),
    ),
)
