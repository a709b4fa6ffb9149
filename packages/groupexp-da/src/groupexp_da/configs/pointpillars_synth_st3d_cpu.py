# ST3D self-training from a source-only checkpoint on the synthetic target domain
# (`groupexp-da adapt pointpillars_synth_st3d_cpu --source-ckpt CKPT`).
_base_ = ["./_base_/pointpillars_synth_cpu.py"]

st3d = dict(
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
st3d_batch_size = 4
st3d_target_dataset = dict(
    type="LidarCarDataset",
    data_root={{_base_.target_root}},
    ann_file="train_infos.pkl",
    data_prefix=dict(pts="points"),
    modality=dict(use_lidar=True, use_camera=False),
    test_mode=False,
)
# st3d_train_pipeline: the synthetic base's (ROS 0.95-1.05, rotation 0.2 rad)
