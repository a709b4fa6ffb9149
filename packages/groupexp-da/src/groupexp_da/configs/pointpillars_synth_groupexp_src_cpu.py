# GroupEXP-DA stage 1 on the synthetic benchmark: source training with ROS and the group head
# (groups initialised by k-means over the source cars, updated from source cars).
_base_ = ["./pointpillars_synth_ros_cpu.py", "./_base_/groupexp_model.py"]
model = {{_base_.groupexp_model}}
custom_hooks = {{_base_.groupexp_hooks}}
