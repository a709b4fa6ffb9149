# SECOND (sparse 3D conv, GPU only) on the synthetic benchmark; xyz-only voxels.
_base_ = ["./second_synth_net.py"]
voxel_size = [0.05, 0.05, 0.15]
point_cloud_range = [0, -19.2, -2.0, 38.4, 19.2, 4.0]
model = dict(  # the shared SECOND model (./models/second.py) on the synthetic grid
    data_preprocessor=dict(voxel_layer=dict(point_cloud_range=point_cloud_range)),
    middle_encoder=dict(sparse_shape=[41, 768, 768]),
    bbox_head=dict(anchor_generator=dict(ranges=[[0, -19.2, -0.1, 38.4, 19.2, -0.1]])),
)
train_dataloader = dict(batch_size=8, num_workers=4, persistent_workers=True)
val_dataloader = dict(batch_size=8, num_workers=2, persistent_workers=True)
test_dataloader = val_dataloader
