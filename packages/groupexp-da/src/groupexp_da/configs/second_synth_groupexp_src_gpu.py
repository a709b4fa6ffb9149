# GroupEXP-DA stage 1 with SECOND (sparse conv, GPU): ROS + group head on 512-channel BEV maps.
_base_ = ["./second_synth_ros_gpu.py", "./_base_/groupexp_model.py"]
model = {{_base_.groupexp_model}}
custom_hooks = {{_base_.groupexp_hooks}}
