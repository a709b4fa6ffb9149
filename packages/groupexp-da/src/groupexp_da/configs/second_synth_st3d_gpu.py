# ST3D self-training with SECOND on the synthetic target (GPU; `groupexp-da adapt
# second_synth_st3d_gpu --source-ckpt STAGE1.pth` from a second_synth_ros_gpu checkpoint).
# Same rounds and labelling rule as pointpillars_synth_st3d_cpu, GPU batch 8.
_base_ = ["./second_synth_source_only_gpu.py"]
st3d = dict(
    rounds=2,
    epochs_per_round=2,
    score_thresh=0.6,
    neg_thresh=0.2,
    ensemble_iou=0.1,
    ignore_after=2,
    remove_after=3,
    lr=2e-4,
    schedule="cosine",
    progressive_aug=dict(ros=(0.05, 0.025), rot=(0.2, 0.1)),
)
st3d_batch_size = 8
st3d_target_dataset = dict(
    type="LidarCarDataset",
    data_root={{_base_.target_root}},
    ann_file="train_infos.pkl",
    data_prefix=dict(pts="points"),
    modality=dict(use_lidar=True, use_camera=False),
    test_mode=False,
)
# st3d_train_pipeline: the synthetic base's (ROS 0.95-1.05, rotation 0.2 rad)
