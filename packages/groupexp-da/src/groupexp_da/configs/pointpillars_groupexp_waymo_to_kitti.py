# GroupEXP-DA Waymo -> KITTI on mmdet3d info files: stage 1 is this config trained on Waymo
# (`train`), self-training `adapt` from its checkpoint (groups follow the KITTI pseudo labels).
_base_ = ["./pointpillars_st3d_waymo_to_kitti.py", "./_base_/groupexp_model.py"]
train_dataloader = dict(dataset={{_base_.waymo_train}})
model = {{_base_.groupexp_model}}
custom_hooks = {{_base_.groupexp_hooks}}
st3d = dict(
    group_labels=True,
    group_score_thresh=0.3,
    replace="swap",
    score_thresh=0.5,
    lr=1.5e-4,
    source_mix=dict(source_batch=3, target_batch=3),
)
