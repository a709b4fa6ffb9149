# GroupEXP-DA self-training with SECOND on the synthetic target (GPU): the SECOND ST3D config
# plus the group model, union labels with group ids and source + target batches (4 + 4). As in
# pointpillars_synth_groupexp_cpu (and the authors' recipe) the source frames are not
# object-scaled in self-training.
_base_ = ["./second_synth_st3d_gpu.py", "./_base_/groupexp_model.py"]
model = {{_base_.groupexp_model}}
custom_hooks = {{_base_.groupexp_hooks}}
st3d = dict(
    group_labels=True,
    group_score_thresh=0.3,
    replace="swap",
    source_mix=dict(source_batch=4, target_batch=4),
)
