# ST3D self-training with SECOND on the synthetic target (GPU; `groupexp-da adapt
# second_synth_st3d_gpu --source-ckpt STAGE1.pth` from a second_synth_ros_gpu checkpoint).
# Same rounds and labelling rule as pointpillars_synth_st3d_cpu, GPU batch 8.
_base_ = ["./second_synth_source_only_gpu.py"]
st3d = {{_base_.synth_st3d}}
st3d_batch_size = 8
st3d_target_dataset = {{_base_.synth_st3d_target_dataset}}
# st3d_train_pipeline: the synthetic base's (ROS 0.95-1.05, rotation 0.2 rad)
