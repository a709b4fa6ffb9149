# GroupEXP-DA parts merged into a VoxelNet config: descriptor, 3 Gaussian groups, group head.
# update_domains='auto': the EMA follows target cars when a batch holds any (self-training,
# the explorative update) and source cars otherwise (stage 1).
# A config lists it in `_base_` and sets `model = {{_base_.groupexp_model}}`: mmengine merges
# that dict key by key into the base detector.
n_groups = 3
groupexp_model = dict(
    type="GroupExpVoxelNet",
    obj_descriptor=dict(in_channels=3, out_channels=512),
    group_cfg=dict(
        n_groups=n_groups,
        alpha=0.8,
        assign="gmm",
        # Kept apart (README "descriptor collapse"): Eq. 1 with var + 1 (the authors' reg_covar)
        # and assignment, L_rep/L_att and the branch queries in the frame centred on the
        # descriptors' mean. center='none', var_reg=0.0 is the paper read literally.
        var_reg=1.0,
        center="mixture",
        lambda_rep=0.5,
        lambda_att=0.5,
        lambda_det=1.0,
        loss_form="paper",
        update_domains="auto",
        max_points=50,
    ),
    bbox_head=dict(
        type="GroupExpAnchor3DHead",
        n_groups=n_groups,
        query_dim=512,
        group_attn=dict(d_attn=512, num_layers=2, dropout=0.1, norm="group"),
    ),
)
groupexp_hooks = [dict(type="GroupInitHook", max_objects=20000), dict(type="GroupStatsHook")]
# GroupEXP labels: union of baseline + group branches, groups positive at 0.3, 'swap' budget;
# each round trains on source + target batches (b_s = b_t).
groupexp_st3d = dict(
    group_labels=True,
    group_score_thresh=0.3,
    replace="swap",
    source_mix=dict(source_batch=2, target_batch=2),
)
