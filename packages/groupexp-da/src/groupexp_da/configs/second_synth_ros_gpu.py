# ST3D stage 1 with SECOND (GPU): source training with random object scaling (ROS), the
# source-only SECOND config plus one transform (as pointpillars_synth_ros_cpu).
_base_ = ["./second_synth_source_only_gpu.py"]
train_pipeline = [
    dict(type="LoadPointsXYZ"),
    dict(type="LoadAnnotations3D", with_bbox_3d=True, with_label_3d=True),
    dict(type="ShiftZ"),
    dict(type="UnifyCarClass", keep_ignore=True),
    dict(type="RandomObjectScaling", scale_range=[0.9, 1.2]),
    dict(type="RandomFlip3D", flip_ratio_bev_horizontal=0.5),
    dict(type="GlobalRotScaleTrans", rot_range=[-0.3927, 0.3927], scale_ratio_range=[0.95, 1.05]),
    dict(type="UnifyPointRange", point_cloud_range={{_base_.point_cloud_range}}),
    dict(type="PointShuffle"),
    dict(
        type="Pack3DDetInputs",
        keys=["points", "gt_bboxes_3d", "gt_labels_3d"],
        meta_keys={{_base_.meta_keys}},
    ),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
