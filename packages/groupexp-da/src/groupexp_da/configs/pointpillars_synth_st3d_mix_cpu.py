# ST3D + source mixing (b_s = b_t = 2), no groups: the recipe confound of the authors' code.
_base_ = ["./pointpillars_synth_st3d_cpu.py"]
st3d = dict(source_mix=dict(source_batch=2, target_batch=2))
