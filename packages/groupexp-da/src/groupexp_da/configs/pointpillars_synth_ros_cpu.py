# ST3D stage 1: source training with random object scaling (ROS), which keeps the detector from
# learning the source domain's car sizes. Same as the source-only config plus one transform.
_base_ = ["./_base_/pointpillars_synth_cpu.py"]

train_pipeline = {{_base_.ros_train_pipeline}}
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
