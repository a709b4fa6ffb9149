# ST3D stage 1 with SECOND (GPU): source training with random object scaling (ROS), the
# source-only SECOND config plus one transform (as pointpillars_synth_ros_cpu).
_base_ = ["./second_synth_source_only_gpu.py"]
train_pipeline = {{_base_.ros_train_pipeline}}
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
