# GroupEXP-DA self-training on the synthetic target (`groupexp-da adapt
# pointpillars_synth_groupexp_cpu --source-ckpt STAGE1.pth`): union pseudo labels with group
# ids, source + target batches, groups following the target's pseudo-labelled cars.
_base_ = ["./pointpillars_synth_st3d_cpu.py", "./_base_/groupexp_model.py"]
model = {{_base_.groupexp_model}}
custom_hooks = {{_base_.groupexp_hooks}}
st3d = {{_base_.groupexp_st3d}}
