# ST3D self-training from a source-only checkpoint on the synthetic target domain
# (`groupexp-da adapt pointpillars_synth_st3d_cpu --source-ckpt CKPT`).
_base_ = ["./_base_/pointpillars_synth_cpu.py"]

st3d = {{_base_.synth_st3d}}
st3d_batch_size = 4
st3d_target_dataset = {{_base_.synth_st3d_target_dataset}}
# st3d_train_pipeline: the synthetic base's (ROS 0.95-1.05, rotation 0.2 rad)
